"""Experiment runs: the ask / evaluate / tell loop with metrics, checkpoints, resume, model and plots.

Run folder layout (DESIGN.md section 5)::

    config.toml                 resolved config (every default, the strategy's full params)
    metrics.jsonl               one JSON line per generation
    checkpoints/gen_XXXXXX.{npz,json}   strategy state after XXXXXX generations
    checkpoints/latest.json     pointer to the newest checkpoint (written last, atomically)
    model.{npz,json}            the strategy's best genome, spec and mode
    fitness.png, per_class.png, confusion.png

Resume is bit-exact: the state (population, strategy arrays, generation, seed) is all the loop
carries, every random draw is ``f(seed, generation, individual, index)``, so continuing from a
checkpoint at generation G gives the same bytes as never having stopped. Metric lines for
generations >= G are dropped on resume so ``metrics.jsonl`` describes exactly one history.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from . import config as _config
from .io import _jsonable, atomic_write_text, dumps_json, load_checkpoint, save_checkpoint, save_model, CheckpointError
from .progress import Progress

log = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.jsonl"
CKPT_DIR = "checkpoints"
LATEST = "latest.json"
MODEL = "model"


def checkpoint_name(generation: int) -> str:
    return f"gen_{int(generation):06d}"


def read_metrics(run_dir) -> list[dict]:
    """Parsed lines of ``metrics.jsonl``; a torn last line (crash mid-write) is skipped."""
    p = Path(run_dir) / METRICS_FILE
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipped a damaged line", p)
    return out


def _scalar(x) -> float:
    return float(np.asarray(x, dtype=np.float64).ravel()[0])


@dataclass
class RunResult:
    run_dir: Path
    generation: int
    metric: str | None                 # "accuracy" (classification) or "mse" (regression)
    value: float | None                # final evaluation of the best genome on eval_split
    model_path: Path | None
    plots: list[Path] = field(default_factory=list)


class Run:
    """One experiment in one folder. ``Run.create(cfg, out)`` starts, ``Run.open(run_dir)`` resumes."""

    def __init__(self, cfg: dict, run_dir: Path, progress: bool = True):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.problem, self.spec, self.strategy = _config.build(cfg)
        self.resolved = _config.resolve_config(cfg, self.strategy)
        self.digest = _config.config_digest(self.resolved)
        self.state = None

    # ------------------------------------------------------------------ paths
    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / CKPT_DIR

    @property
    def seed(self) -> int:
        return int(self.cfg["run"]["seed"])

    @property
    def target(self) -> int:
        return int(self.cfg["run"]["generations"])

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(cls, cfg: dict, out_dir=None, progress: bool = True, overwrite: bool = False) -> "Run":
        out = out_dir or cfg["run"].get("out") or default_run_dir(cfg)
        run_dir = Path(out)
        if run_dir.exists() and any(run_dir.iterdir()):
            ours = [n for n in (CONFIG_FILE, METRICS_FILE, CKPT_DIR, MODEL + ".json") if (run_dir / n).exists()]
            if not overwrite:
                what = "a run" if ours else "other files"
                raise FileExistsError(f"{run_dir} already holds {what}; resume it (edge-evo resume {run_dir}), "
                                      "pick another --out, or pass --overwrite")
            for n in ours + [MODEL + ".npz"]:
                p = run_dir / n
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        run = cls(cfg, run_dir, progress)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        resolved = dict(run.resolved)
        resolved["run"] = {**resolved["run"], "out": str(run_dir)}
        atomic_write_text(run.run_dir / CONFIG_FILE, _config.dumps_toml(
            resolved, header="edge_evo run config (resolved: every default and strategy parameter)"))
        atomic_write_text(run.run_dir / METRICS_FILE, "")
        if cfg["run"].get("init_model"):
            model = _config.load_init_model(cfg, run.problem)
            run.state = run.strategy.init_from(run.seed, model.genome)
        else:
            run.state = run.strategy.init(run.seed)
        return run

    @classmethod
    def open(cls, run_dir, progress: bool = True, checkpoint: str | None = None) -> "Run":
        run_dir = Path(run_dir)
        cfg_path = run_dir / CONFIG_FILE
        if not cfg_path.exists():
            raise FileNotFoundError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
        cfg = _config.load_config(cfg_path)
        name = checkpoint or _latest_name(run_dir)
        arrays, meta = load_checkpoint(run_dir / CKPT_DIR / name)
        run = cls(cfg, run_dir, progress)
        saved = meta.get("config", {})
        if meta.get("config_sha256") != run.digest:
            diff = _config.config_diff(saved, run.resolved) or ["(strategy or task defaults changed)"]
            raise ValueError(f"{cfg_path} no longer matches the config the run was started with "
                             f"(changed: {', '.join(diff)}); restore it, or start a new run with the new config")
        from .strategies.base import State
        run.state = State.from_arrays(run.spec, arrays, meta["state"])
        run._truncate_metrics(run.state.generation)
        return run

    # ------------------------------------------------------------------ loop
    def step(self) -> dict:
        """One generation: ask, evaluate, tell. Returns its metrics line."""
        st, strat, prob = self.state, self.strategy, self.problem
        g = int(st.generation)
        t0 = time.perf_counter()
        pop = strat.ask(st)
        t1 = time.perf_counter()
        scores = prob.scores(pop, g, self.seed, strat.prediction, strat.score, self.cfg["run"]["engine"])
        t2 = time.perf_counter()
        new = strat.tell(st, pop, scores)
        t3 = time.perf_counter()
        if int(new.generation) <= g:
            raise RuntimeError(f"strategy {strat.name!r} did not advance the generation counter in tell()")
        self.state = new
        fit = np.asarray(scores, dtype=np.float64).mean(axis=1) if np.ndim(scores) == 2 else \
            np.asarray(scores, dtype=np.float64).ravel()
        line = {"generation": g, "best_fitness": float(fit.max()), "mean_fitness": float(fit.mean()),
                "eval_ms": round((t2 - t1) * 1e3, 3), "breed_ms": round((t1 - t0 + t3 - t2) * 1e3, 3)}
        num = {k: v for k, v in new.scalars.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if num:
            line["strategy"] = num
        return line

    def evaluate(self, split: str | None = None) -> tuple[str | None, float | None]:
        """(metric name, value) of the strategy's best genome on ``split``."""
        split = split or self.cfg["run"]["eval_split"]
        genome = self.strategy.best_genome(self.state)
        eng = self.cfg["run"]["engine"]
        if hasattr(self.problem, "accuracy"):
            return "accuracy", _scalar(self.problem.accuracy(genome, split, engine=eng, spec=self.spec))
        if hasattr(self.problem, "mse"):
            return "mse", _scalar(self.problem.mse(genome, split, engine=eng, spec=self.spec))
        return None, None

    def run(self, generations: int | None = None) -> RunResult:
        """Evolve until ``generations`` generations in total are done, then write model and plots."""
        target = self.target if generations is None else int(generations)
        if target < int(self.state.generation):
            raise ValueError(f"the run is already at generation {self.state.generation}; "
                             f"ask for at least that many generations, not {target}")
        if target != self.target:
            self._set_target(target)
        every = int(self.cfg["run"]["checkpoint_every"])
        ev_every = int(self.cfg["run"]["eval_every"])
        split = self.cfg["run"]["eval_split"]
        start = int(self.state.generation)
        mfile = (self.run_dir / METRICS_FILE).open("a", encoding="utf-8")
        try:
            with Progress(target - start, desc=f"{self.strategy.name} on {self.cfg['task']['name']}",
                          enabled=self.progress) as bar:
                while int(self.state.generation) < target:
                    line = self.step()
                    done = int(self.state.generation)
                    if (ev_every and done % ev_every == 0) or done == target:
                        metric, value = self.evaluate(split)
                        if metric is not None:
                            line[metric] = value
                            line["eval_split"] = split
                    mfile.write(json.dumps(_jsonable(line)) + "\n")
                    mfile.flush()
                    if every and done % every == 0 and done != target:
                        self.checkpoint()
                    post = {"best": line["best_fitness"]}
                    if "accuracy" in line:
                        post["acc"] = line["accuracy"]
                    bar.update(1, **post)
        except KeyboardInterrupt:
            mfile.close()
            path = self.checkpoint()
            log.warning("interrupted at generation %d; checkpoint %s written, continue with: edge-evo resume %s",
                        self.state.generation, path.name, self.run_dir)
            raise
        finally:
            if not mfile.closed:
                mfile.close()
        self.checkpoint()
        return self.finish()

    # ------------------------------------------------------------------ persistence
    def checkpoint(self) -> Path:
        arrays, smeta = self.state.to_arrays()
        meta = {"state": smeta, "strategy": self.strategy.name, "config": self.resolved,
                "config_sha256": self.digest, "generation": int(self.state.generation)}
        name = checkpoint_name(self.state.generation)
        p = save_checkpoint(self.ckpt_dir / name, arrays, meta)
        atomic_write_text(self.ckpt_dir / LATEST, dumps_json({"checkpoint": name,
                                                              "generation": int(self.state.generation)}))
        self._prune(keep=name)
        return p

    def _prune(self, keep: str) -> None:
        n = int(self.cfg["run"]["keep_checkpoints"])
        if n <= 0:
            return
        names = sorted(p.name[:-5] for p in self.ckpt_dir.glob("gen_*.json"))
        for old in [x for x in names if x != keep][: max(0, len(names) - n)]:
            for suf in (".json", ".npz", ".npz.prev"):
                # JSON first: a half-pruned checkpoint is then invisible rather than corrupt
                try:
                    (self.ckpt_dir / (old + suf)).unlink()
                except FileNotFoundError:
                    pass

    def _truncate_metrics(self, generation: int) -> None:
        lines = [m for m in read_metrics(self.run_dir) if int(m.get("generation", -1)) < generation]
        atomic_write_text(self.run_dir / METRICS_FILE, "".join(json.dumps(m, allow_nan=False) + "\n" for m in lines))

    def _set_target(self, target: int) -> None:
        self.cfg["run"]["generations"] = target
        self.resolved["run"]["generations"] = target
        path = self.run_dir / CONFIG_FILE
        resolved = dict(self.resolved)
        resolved["run"] = {**resolved["run"], "out": str(self.run_dir)}
        atomic_write_text(path, _config.dumps_toml(
            resolved, header="edge_evo run config (resolved: every default and strategy parameter)"))

    def finish(self) -> RunResult:
        """Final model, evaluation and plots of the current state."""
        genome = np.asarray(self.strategy.best_genome(self.state))
        metric, value = self.evaluate()
        meta = {"task": self.cfg["task"]["name"], "task_options": _config.task_options(self.cfg),
                "strategy": self.strategy.name, "generation": int(self.state.generation), "seed": self.seed,
                "config_sha256": self.digest, "eval_split": self.cfg["run"]["eval_split"]}
        if metric is not None:
            meta[metric] = value
        model = save_model(self.run_dir / MODEL, self.spec, genome, self.strategy.mode, meta, overwrite=True)
        plots = self.plots(genome) if self.cfg["run"].get("plots", True) else []
        log.debug("run %s: generation %d, %s %s", self.run_dir, self.state.generation, metric, value)
        return RunResult(self.run_dir, int(self.state.generation), metric, value, model, plots)

    def plots(self, genome=None) -> list[Path]:
        from .plots import write_run_plots
        genome = np.asarray(self.strategy.best_genome(self.state)) if genome is None else genome
        per_class = confusion = None
        split = self.cfg["run"]["eval_split"]
        if hasattr(self.problem, "confusion"):
            confusion = self.problem.confusion(genome, split, engine=self.cfg["run"]["engine"], spec=self.spec)
            with np.errstate(invalid="ignore", divide="ignore"):
                per_class = np.diag(confusion) / confusion.sum(axis=1)
        return write_run_plots(self.run_dir, read_metrics(self.run_dir), per_class, confusion)


def _latest_name(run_dir: Path) -> str:
    ck = run_dir / CKPT_DIR
    p = ck / LATEST
    if p.exists():
        try:
            return json.loads(p.read_text(encoding="utf-8"))["checkpoint"]
        except (ValueError, KeyError):
            log.warning("%s is damaged; using the newest checkpoint file instead", p)
    names = sorted(q.name[:-5] for q in ck.glob("gen_*.json"))
    if not names:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to resume from (nothing in {ck})")
    return names[-1]


def default_run_dir(cfg: dict) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg['task']['name']}-{cfg['run']['strategy']}-{stamp}"


def run_experiment(config, out_dir=None, progress: bool = True, overwrite: bool = False) -> RunResult:
    """Start a run from a config (a validated dict, or a path to a TOML file) and evolve it to the end."""
    cfg = _config.load_config(config) if isinstance(config, (str, Path)) else _config.validate(config)
    return Run.create(cfg, out_dir, progress, overwrite).run()


def resume(run_dir, generations: int | None = None, progress: bool = True, checkpoint: str | None = None) -> RunResult:
    """Continue a run from its latest checkpoint (or ``checkpoint``, e.g. ``"gen_000050"``) until
    ``generations`` generations in total (default: the config's ``run.generations``)."""
    return Run.open(run_dir, progress, checkpoint).run(generations)


__all__ = ["Run", "RunResult", "run_experiment", "resume", "read_metrics", "checkpoint_name", "CheckpointError"]
