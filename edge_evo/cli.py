"""``edge-evo`` command line (also ``python -m edge_evo``): a thin layer over the Python API.

Subcommands live in the ``SUBCOMMANDS`` registry (name -> help, argument setup, handler), so later
ones (export, fit, adapt, targets, report, bench) plug in with :func:`subcommand` and appear in
``--help`` automatically. Bad input ends with ``edge-evo: error: <one line>`` and exit code 2; pass
``--debug`` for the traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PROG = "edge-evo"
EXIT_USAGE = 2

# The quickstart: int8 64-32-10 network on scikit-learn's bundled 8x8 digits (offline), GENREG-style
# batches. Kept identical to examples/quickstart.toml (a test checks it).
QUICKSTART_TOML = """\
# edge-evo quickstart: evolve an int8 64-32-10 network on the 8x8 digits bundled with
# scikit-learn (no download), 15-30 s on 2 cores. Run it with:  edge-evo run examples/quickstart.toml
# OpenES (mirrored, centred ranks, momentum) reaches about 95 % held-out accuracy here, well above a
# truncation GA in the same budget.
[run]
strategy = "openes"
mode = "int8"
seed = 0
generations = 200
engine = "auto"           # all int8 engines give the same bits; auto picks the fastest
checkpoint_every = 50
eval_every = 20

[model]
hidden = [32]
activation = "tanh"

[task]
name = "digits"
batch_size = 512

[strategy]
population = 64
sigma = 0.02
lr = 0.5
momentum = 0.9
shaping = "centered"
"""


@dataclass
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    """Register ``handler(args) -> exit code`` as ``edge-evo <name>``."""
    def deco(handler):
        SUBCOMMANDS[name] = Subcommand(name, help, configure, handler)
        return handler
    return deco


def _out(*a):
    print(*a, file=sys.stdout)


# ----------------------------------------------------------------------------- run / resume
def _add_run_args(p):
    p.add_argument("config", help="run config (TOML)")
    p.add_argument("--out", help="run folder (default: [run] out, else runs/<task>-<strategy>-<time>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set run.generations=50 (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress line")


def _report(res) -> None:
    if res.metric is not None:
        value = f"{res.value:.4f}" if res.value is not None else "n/a"
        _out(f"generation {res.generation}: {res.metric} {value}")
    _out(f"run folder: {res.run_dir}")


@subcommand("run", "evolve a model from a TOML config", _add_run_args)
def cmd_run(args) -> int:
    from .config import load_config
    from .runs import run_experiment
    cfg = load_config(args.config, args.overrides)
    res = run_experiment(cfg, args.out, progress=not args.no_progress, overwrite=args.overwrite)
    _report(res)
    return 0


def _add_resume_args(p):
    p.add_argument("run_dir", help="run folder made by 'edge-evo run'")
    p.add_argument("--generations", type=int, help="total generations to reach (default: the config's)")
    p.add_argument("--checkpoint", help="checkpoint name to resume from, e.g. gen_000050 (default: latest)")
    p.add_argument("--no-progress", action="store_true")


@subcommand("resume", "continue a run from its latest checkpoint (bit-exact)", _add_resume_args)
def cmd_resume(args) -> int:
    from .runs import resume
    _report(resume(args.run_dir, args.generations, progress=not args.no_progress, checkpoint=args.checkpoint))
    return 0


# ----------------------------------------------------------------------------- eval
def _add_eval_args(p):
    p.add_argument("model", help="model (path without suffix, .npz or .json) or run folder")
    p.add_argument("--task", help="task name (default: the task the model was trained on)")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--engine", default="auto", help="int8 engine (auto, numba, blas, ...; bit-identical)")


@subcommand("eval", "accuracy of a saved model on a task, overall and per class", _add_eval_args)
def cmd_eval(args) -> int:
    import numpy as np
    from .io import load_model
    from .tasks import get_task
    model = load_model(args.model)
    name = args.task or model.meta.get("task")
    if not name:
        raise ValueError("the model does not record its task; pass --task NAME (see 'edge-evo tasks')")
    opts = model.meta.get("task_options", {}) if name == model.meta.get("task") else {}
    problem = get_task(name, **opts)
    pop = model.population()
    if hasattr(problem, "accuracy"):
        acc = float(problem.accuracy(pop, args.split, engine=args.engine)[0])
        cm = problem.confusion(pop, args.split, engine=args.engine)
        _out(f"{name} {args.split} accuracy: {acc:.4f} ({int(np.trace(cm))}/{int(cm.sum())}), "
             f"{model.mode} {'-'.join(map(str, model.spec.dims))}")
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.diag(cm) / cm.sum(axis=1)
        _out("class  accuracy  support")
        for c, (a, n) in enumerate(zip(per, cm.sum(axis=1))):
            _out(f"{c:>5}  {a:8.4f}  {int(n):7d}" if n else f"{c:>5}       n/a  {0:7d}")
    else:
        mse = float(problem.mse(pop, args.split, engine=args.engine)[0])
        _out(f"{name} {args.split} mse: {mse:.6g}")
    return 0


# ----------------------------------------------------------------------------- quickstart
def _add_quickstart_args(p):
    p.add_argument("--out", help="run folder (default: runs/quickstart-<time>)")
    p.add_argument("--generations", type=int, help="generations (default: the quickstart's)")
    p.add_argument("--seed", type=int, help="seed (default 0)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")


@subcommand("quickstart", "evolve an int8 network on the offline 8x8 digits in under a minute", _add_quickstart_args)
def cmd_quickstart(args) -> int:
    import time
    from datetime import datetime
    from .config import loads_config
    from .runs import run_experiment
    over = []
    if args.generations is not None:
        over.append(f"run.generations={args.generations}")
    if args.seed is not None:
        over.append(f"run.seed={args.seed}")
    cfg = loads_config(QUICKSTART_TOML, over, source="quickstart")
    out = args.out or Path("runs") / f"quickstart-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    hidden = cfg["model"]["hidden"]
    _out(f"quickstart: {cfg['run']['strategy']} evolving an int8 64-{'-'.join(map(str, hidden))}-10 network "
         f"on 8x8 digits for {cfg['run']['generations']} generations")
    t0 = time.perf_counter()
    res = run_experiment(cfg, out, progress=not args.no_progress, overwrite=args.overwrite)
    dt = time.perf_counter() - t0
    _out(f"held-out digits accuracy: {res.value:.4f} after {res.generation} generations ({dt:.1f} s)")
    _out(f"run folder: {res.run_dir}")
    _out(f"next: edge-evo eval {res.run_dir}    edge-evo resume {res.run_dir} "
         f"--generations {res.generation * 2}")
    return 0


# ----------------------------------------------------------------------------- export
def _add_export_args(p):
    from .export.cli import add_export_arguments
    add_export_arguments(p)


def cmd_export(args) -> int:
    from .export.cli import cli_export
    return cli_export(args)


SUBCOMMANDS["export"] = Subcommand("export", "write a saved model as ONNX (integer or float graph) or C (header + runtime)",
                                   _add_export_args, cmd_export)


# ----------------------------------------------------------------------------- import
def _add_import_args(p):
    from .importers.cli import add_import_arguments
    add_import_arguments(p)


def cmd_import(args) -> int:
    from .importers.cli import cli_import
    return cli_import(args)


SUBCOMMANDS["import"] = Subcommand("import", "import a GENREG genome pickle or a float ONNX MLP and quantize it to int8",
                                   _add_import_args, cmd_import)


# ----------------------------------------------------------------------------- adapt
def _add_adapt_args(p):
    from .online.cli import add_adapt_arguments
    add_adapt_arguments(p)


def cmd_adapt(args) -> int:
    from .online.cli import cli_adapt
    return cli_adapt(args)


SUBCOMMANDS["adapt"] = Subcommand("adapt", "keep adapting a model on a stream of samples (stdin, file, UDP/TCP)",
                                  _add_adapt_args, cmd_adapt)


# ----------------------------------------------------------------------------- fit / targets
def _add_fit_args(p):
    from .fit_cli import add_fit_arguments
    add_fit_arguments(p)


def cmd_fit(args) -> int:
    from .fit_cli import cli_fit
    return cli_fit(args)


SUBCOMMANDS["fit"] = Subcommand("fit", "check that a model (and on-device evolution) fits a device's flash and RAM",
                                _add_fit_args, cmd_fit)


def cmd_targets(args) -> int:
    from .fit_cli import cli_targets
    return cli_targets(args)


SUBCOMMANDS["targets"] = Subcommand("targets", "list device descriptions (memory, word size, FPU/DSP, toolchain, "
                                    "emulator)", lambda p: None, cmd_targets)


# ----------------------------------------------------------------------------- listings
def _fmt(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


@subcommand("strategies", "list strategies with their presets and parameters")
def cmd_strategies(args) -> int:
    from .strategies import STRATEGIES, _load_all
    _load_all()
    if not STRATEGIES:
        _out("no strategies registered")
    for name in sorted(STRATEGIES):
        cls = STRATEGIES[name]
        own = cls.__dict__.get("__doc__") or (sys.modules[cls.__module__].__doc__ or "")
        doc = inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")
        _out(f"{name}: {doc}")
        _out(f"  prediction={cls.prediction} score={cls.score}")
        fields = dataclasses.fields(cls.Params)
        _out("  params: " + ", ".join(f"{f.name}={_fmt(f.default)}" for f in fields))
        for pname, pr in sorted(cls.presets.items()):
            diff = {f.name: getattr(pr, f.name) for f in fields if getattr(pr, f.name) != f.default}
            _out(f"  preset {pname}: " + (", ".join(f"{k}={_fmt(v)}" for k, v in diff.items()) or "(defaults)"))
    return 0


@subcommand("tasks", "list tasks and their options")
def cmd_tasks(args) -> int:
    from .tasks import TASKS
    for name in sorted(TASKS):
        fn = TASKS[name]
        doc = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        _out(f"{name}: {doc}")
        opts = [f"{p.name}={_fmt(p.default)}" for p in inspect.signature(fn).parameters.values()
                if p.default is not inspect.Parameter.empty]
        if opts:
            _out("  options: " + ", ".join(opts))
    return 0


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(prog=PROG, description="Gradient-free, on-device learning of small "
                                     "int8 neural networks: evolve, resume, evaluate.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and results only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for sc in SUBCOMMANDS.values():
        p = sub.add_parser(sc.name, help=sc.help, description=sc.help)
        sc.configure(p)
        p.set_defaults(_handler=sc.handler)
    return parser


def _first_line(e: BaseException) -> str:
    msg = str(e) or type(e).__name__
    if isinstance(e, KeyError) and e.args:
        msg = f"missing key {e.args[0]!r}"
    line = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
    return line


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr)
    try:
        return int(args._handler(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError) as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {_first_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
