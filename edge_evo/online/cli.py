"""``edge-evo adapt MODEL --source SPEC``: continuous adaptation as a service (see docs/online.md)."""
from __future__ import annotations

import dataclasses
import json
import logging
import logging.handlers
import sys
from datetime import datetime
from pathlib import Path

from .adapter import AdaptConfig, OnlineAdapter, TASK_KINDS
from .learners import LEARNERS, TRAINABLE
from .parse import INPUT_SCALES

log = logging.getLogger(__name__)


def add_adapt_arguments(p) -> None:
    p.add_argument("model", help="saved model (path, .npz/.json or run folder) or fresh dims like 784-32-10")
    p.add_argument("--source", required=True,
                   help="records: '-' (stdin), PATH, udp://127.0.0.1:PORT, tcp://HOST:PORT (connect, reconnects), "
                        "tcp-listen://127.0.0.1:PORT; CSV 'f1,...,fn[,label]' or JSON lines")
    p.add_argument("--follow", action="store_true", help="keep reading a file as it grows (tail -f)")
    p.add_argument("--out", help="run folder for checkpoint, metrics.jsonl, adapt.log (default runs/adapt-<time>)")
    p.add_argument("--predictions", default="-",
                   help="where 'index,prediction' lines go: '-' (stdout), PATH, udp://, tcp://, none")
    p.add_argument("--fresh", action="store_true", help="ignore a checkpoint in --out and start from MODEL")
    d = AdaptConfig()
    p.add_argument("--learner", choices=LEARNERS, default=d.learner)
    p.add_argument("--population", type=int, default=d.population)
    p.add_argument("--sigma", type=float, default=None, help="exploration std (weight units)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--rate", type=float, default=d.rate, help="elitist: per-element mutation probability")
    p.add_argument("--trainable", choices=TRAINABLE, default=d.trainable,
                   help="'last': adapt only the output layer (label remaps; much smaller search space)")
    p.add_argument("--adapt", choices=("always", "after_drift"), default=d.adapt,
                   help="'after_drift': predict only (model frozen) until the first drift event")
    p.add_argument("--window", type=int, default=d.window, help="labelled samples the fitness is measured on")
    p.add_argument("--update-every", type=int, default=d.update_every)
    p.add_argument("--drift-window", type=int, default=d.drift_window)
    p.add_argument("--drift-drop", type=float, default=d.drift_drop)
    p.add_argument("--drift-boost", type=float, default=d.drift_boost)
    p.add_argument("--task", choices=TASK_KINDS, default=d.task)
    p.add_argument("--input", dest="input_scale", choices=INPUT_SCALES, default=d.input_scale,
                   help="feature scale: u8 pixels 0..255, float values, or int8 integers")
    p.add_argument("--engine", default=d.engine)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=1, help="Numba threads (1 is fastest for small populations)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="records between checkpoints")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0, help="max seconds between checkpoints")
    p.add_argument("--metrics-every", type=int, default=1000, help="records between metrics.jsonl lines")
    p.add_argument("--max-samples", type=int, default=None, help="stop after this many records")


def _config(args) -> AdaptConfig:
    names = {f.name for f in dataclasses.fields(AdaptConfig)}
    return AdaptConfig(**{k: v for k, v in vars(args).items() if k in names})


def _file_logging(out: Path) -> logging.Handler:
    h = logging.handlers.RotatingFileHandler(out / "adapt.log", maxBytes=1 << 20, backupCount=2)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("edge_evo").addHandler(h)
    return h


def cli_adapt(args) -> int:
    from .runner import AdaptRunner
    if args.threads is not None:
        import numba
        numba.set_num_threads(max(1, min(args.threads, numba.config.NUMBA_NUM_THREADS)))
    out = Path(args.out or Path("runs") / f"adapt-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    handler = _file_logging(out)
    try:
        resumed = None if args.fresh else AdaptRunner.resume_adapter(out)
        if resumed is not None:
            adapter, position = resumed
            log.info("resuming %s at sample %d (source position %d)", out, adapter.counters["seen"], position)
        else:
            adapter, position = OnlineAdapter.from_model(args.model, _config(args)), 0
            (out / "config.json").write_text(json.dumps({"model": str(args.model), "source": args.source,
                                                         "adapt": dataclasses.asdict(adapter.config)}, indent=1))
        runner = AdaptRunner(adapter, out, args.source, args.predictions, args.follow, args.checkpoint_every,
                             args.checkpoint_seconds, args.metrics_every, args.max_samples, start_position=position)
        res = runner.run()
    finally:
        logging.getLogger("edge_evo").removeHandler(handler)
        handler.close()
    fmt = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in res.items()}
    print(" ".join(f"{k}={v}" for k, v in fmt.items()), file=sys.stderr)
    return 0
