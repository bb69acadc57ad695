"""Run configuration: TOML in (stdlib ``tomllib``), resolved TOML out (saved in every run folder).

A config has four sections::

    [run]       strategy, mode ('int8' | 'float32'), seed, generations, engine, checkpoint_every,
                eval_every, eval_split, keep_checkpoints, plots, out
    [model]     hidden = [64], activation, w_frac, b_frac, x_frac, z_frac, h_frac
    [task]      name, then the task's own options (passed to ``edge_evo.tasks.get_task``)
    [strategy]  preset, then overrides of the strategy's ``Params`` fields

Unknown sections or keys are refused with a one-line error naming the key and the valid ones.
``resolve_config`` fills every default and expands the strategy's full parameter set, so the saved
``config.toml`` alone reproduces a run bit for bit.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import tomllib
from pathlib import Path

RUN_DEFAULTS = {
    "strategy": "genreg",
    "mode": "int8",
    "seed": 0,
    "generations": 100,
    "engine": "auto",         # int8 engine; all are bit-identical, auto picks the fastest here
    "checkpoint_every": 10,   # 0: only the final checkpoint
    "eval_every": 10,         # 0: only at the end
    "eval_split": "test",
    "keep_checkpoints": 3,    # newest N periodic checkpoints kept; 0 keeps all
    "plots": True,            # PNG plots at the end (needs matplotlib)
    "out": "",                # run folder; "" -> runs/<task>-<strategy>-<time>
    "init_model": "",         # saved model to start from (its spec replaces [model]); "" = random init
}
MODEL_DEFAULTS = {"hidden": [64], "activation": "tanh", "w_frac": 6, "b_frac": 6, "x_frac": 7, "z_frac": 5,
                  "h_frac": 7}
TASK_DEFAULTS = {"name": "digits"}
STRATEGY_DEFAULTS = {"preset": ""}
SECTIONS = {"run": RUN_DEFAULTS, "model": MODEL_DEFAULTS, "task": TASK_DEFAULTS, "strategy": STRATEGY_DEFAULTS}
# sections whose extra keys are options of a plug-in, checked by that plug-in
OPEN_SECTIONS = ("task", "strategy")
# keys that may change between a run and its resume without changing the computation
VOLATILE_KEYS = {("run", "generations"), ("run", "out")}


# ----------------------------------------------------------------------------- parsing
def _parse_value(text: str):
    """A ``--set`` value: a TOML value if it parses as one, else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides) -> dict:
    """Apply ``section.key=value`` strings (``--set``) to a raw config dict."""
    raw = copy.deepcopy(raw)
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected section.key=value, e.g. run.generations=50")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"--set {item!r}: key must be section.key (sections: {', '.join(SECTIONS)})")
        sec, k = parts
        if sec not in SECTIONS:
            raise ValueError(f"--set {item!r}: unknown section [{sec}]; valid: {', '.join(SECTIONS)}")
        raw.setdefault(sec, {})[k] = _parse_value(value.strip())
    return raw


def validate(raw: dict, source: str = "config") -> dict:
    """Check sections / keys / simple types and fill defaults. Returns a new dict."""
    if not isinstance(raw, dict):
        raise TypeError(f"{source}: a config is a table of sections, got {type(raw).__name__}")
    bad = sorted(set(raw) - set(SECTIONS))
    if bad:
        raise ValueError(f"{source}: unknown section [{bad[0]}]; valid sections: {', '.join(SECTIONS)}")
    cfg = {}
    for sec, defaults in SECTIONS.items():
        given = raw.get(sec, {})
        if not isinstance(given, dict):
            raise ValueError(f"{source}: [{sec}] must be a table, got {type(given).__name__}")
        if sec not in OPEN_SECTIONS:
            unknown = sorted(set(given) - set(defaults))
            if unknown:
                raise ValueError(f"{source}: unknown key {sec}.{unknown[0]}; valid keys in [{sec}]: "
                                 f"{', '.join(defaults)}")
        merged = copy.deepcopy(defaults)
        merged.update(copy.deepcopy(given))
        for k, d in defaults.items():
            v = merged[k]
            if isinstance(d, bool):
                if not isinstance(v, bool):
                    raise TypeError(f"{source}: {sec}.{k} must be true or false, got {v!r}")
                continue
            if d is None:
                continue
            if isinstance(d, int) and not (isinstance(v, int) and not isinstance(v, bool)):
                raise TypeError(f"{source}: {sec}.{k} must be an integer, got {v!r}")
            if isinstance(d, str) and not isinstance(v, str):
                raise TypeError(f"{source}: {sec}.{k} must be a string, got {v!r}")
        cfg[sec] = merged
    run, model = cfg["run"], cfg["model"]
    if run["mode"] not in ("int8", "float32"):
        raise ValueError(f"{source}: run.mode must be 'int8' or 'float32', got {run['mode']!r}")
    for k in ("generations", "checkpoint_every", "eval_every", "keep_checkpoints"):
        if run[k] < 0:
            raise ValueError(f"{source}: run.{k} must be >= 0, got {run[k]}")
    if not 0 <= run["seed"] <= 0xFFFFFFFF:
        raise ValueError(f"{source}: run.seed must be an unsigned 32-bit integer, got {run['seed']}")
    hidden = model["hidden"]
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    if not isinstance(hidden, list) or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                                               for h in hidden):
        raise ValueError(f"{source}: model.hidden must be a list of positive integers, e.g. [64], got {hidden!r}")
    model["hidden"] = list(hidden)
    if not isinstance(cfg["task"]["name"], str) or not cfg["task"]["name"]:
        raise ValueError(f"{source}: task.name is required, e.g. name = \"digits\"")
    return cfg


def load_config(path, overrides=()) -> dict:
    """Read a TOML run config, apply ``--set`` overrides, validate and fill defaults."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: invalid TOML ({e})") from None
    return validate(apply_overrides(raw, overrides), str(path))


def loads_config(text: str, overrides=(), source: str = "config") -> dict:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{source}: invalid TOML ({e})") from None
    return validate(apply_overrides(raw, overrides), source)


# ----------------------------------------------------------------------------- building
def task_options(cfg: dict) -> dict:
    return {k: v for k, v in cfg["task"].items() if k != "name"}


def strategy_overrides(cfg: dict) -> dict:
    return {k: v for k, v in cfg["strategy"].items() if k != "preset"}


def _tupled(v):
    # frozen Params must stay hashable; TOML gives lists
    return tuple(_tupled(x) for x in v) if isinstance(v, list) else v


def build_problem(cfg: dict):
    from .tasks import get_task
    return get_task(cfg["task"]["name"], **task_options(cfg))


def build_spec(cfg: dict, problem):
    from .models.mlp import MLPSpec
    if cfg["run"].get("init_model"):
        return load_init_model(cfg, problem).spec
    m = cfg["model"]
    dims = tuple(problem.spec_dims(list(m["hidden"])))
    return MLPSpec(dims, activation=m["activation"], w_frac=m["w_frac"], b_frac=m["b_frac"],
                   x_frac=m["x_frac"], z_frac=m["z_frac"], h_frac=m["h_frac"])


def load_init_model(cfg: dict, problem):
    """The model named by ``run.init_model``, checked against the task and the run's mode."""
    from .io import load_model
    model = load_model(cfg["run"]["init_model"])
    want = problem.spec_dims([])
    if (model.spec.dims[0], model.spec.dims[-1]) != (want[0], want[-1]):
        raise ValueError(f"run.init_model {cfg['run']['init_model']} is {'-'.join(map(str, model.spec.dims))} "
                         f"but task {cfg['task']['name']!r} needs {want[0]} inputs and {want[-1]} outputs")
    if model.mode != cfg["run"]["mode"]:
        raise ValueError(f"run.init_model is a {model.mode} model but run.mode is {cfg['run']['mode']!r}: "
                         f"set run.mode = \"{model.mode}\"")
    return model


def build_strategy(cfg: dict, spec):
    from .strategies import get_strategy
    cls = get_strategy(cfg["run"]["strategy"])
    preset = cfg["strategy"].get("preset") or None
    over = {k: _tupled(v) for k, v in strategy_overrides(cfg).items()}
    return cls(spec, params=preset, mode=cfg["run"]["mode"], **over)


def _strategy_batch_default(cfg: dict) -> None:
    """A strategy whose params name the batch it was designed for (GENREG: ``samples_per_class``)
    gets that batch from a task that was given no batch option of its own."""
    import inspect
    from .strategies import get_strategy
    from .tasks import TASKS
    task = cfg["task"]
    if "samples_per_class" in task or "batch_size" in task or task["name"] not in TASKS:
        return
    if "samples_per_class" not in inspect.signature(TASKS[task["name"]]).parameters:
        return
    cls = get_strategy(cfg["run"]["strategy"])
    if not any(f.name == "samples_per_class" for f in dataclasses.fields(cls.Params)):
        return
    preset = cfg["strategy"].get("preset") or None
    params = cls.presets.get(preset, cls.Params()) if preset else cls.Params()
    k = cfg["strategy"].get("samples_per_class", params.samples_per_class)
    if k is not None:
        task["samples_per_class"] = k


def build(cfg: dict):
    """(problem, spec, strategy) of a validated config (``cfg['task']`` may gain the strategy's batch)."""
    _strategy_batch_default(cfg)
    problem = build_problem(cfg)
    spec = build_spec(cfg, problem)
    return problem, spec, build_strategy(cfg, spec)


def resolve_config(cfg: dict, strategy=None) -> dict:
    """The config with the strategy's full parameter set written out (what ``config.toml`` stores)."""
    cfg = copy.deepcopy(cfg)
    if strategy is None:
        _, _, strategy = build(cfg)
    params = dataclasses.asdict(strategy.params)
    cfg["strategy"] = {"preset": cfg["strategy"].get("preset", ""),
                       **{k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items() if v is not None}}
    return cfg


def config_digest(cfg: dict) -> str:
    """SHA-256 of the config without the keys a resume may change (generations, out)."""
    c = copy.deepcopy(cfg)
    for sec, k in VOLATILE_KEYS:
        c.get(sec, {}).pop(k, None)
    return hashlib.sha256(json.dumps(c, sort_keys=True, default=str).encode()).hexdigest()


def config_diff(a: dict, b: dict) -> list[str]:
    """``section.key`` names whose values differ (volatile keys ignored)."""
    out = []
    for sec in sorted(set(a) | set(b)):
        sa, sb = a.get(sec, {}), b.get(sec, {})
        for k in sorted(set(sa) | set(sb)):
            if (sec, k) in VOLATILE_KEYS:
                continue
            if sa.get(k) != sb.get(k):
                out.append(f"{sec}.{k}")
    return out


# ----------------------------------------------------------------------------- TOML writer
def _toml_key(k: str) -> str:
    import re
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    if hasattr(v, "item"):  # numpy scalar
        return _toml_value(v.item())
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(cfg: dict, header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for sec, table in cfg.items():
        if lines:
            lines.append("")
        lines.append(f"[{sec}]")
        for k, v in table.items():
            if v is None:
                continue
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


__all__ = ["SECTIONS", "load_config", "loads_config", "validate", "apply_overrides", "resolve_config", "build",
           "build_problem", "build_spec", "build_strategy", "dumps_toml", "config_digest", "config_diff"]
