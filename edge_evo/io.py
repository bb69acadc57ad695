"""Safe persistence of checkpoints and models: ``<path>.npz`` (arrays) + ``<path>.json`` (meta).

Design (DESIGN.md section 5): no pickle ever (object arrays are refused on write, ``allow_pickle=False``
on read); the JSON records a schema version, the SHA-256 of the npz bytes, the package version and
the numerics contract, so a corrupt, foreign or outdated file is refused with a one-line error.

Crash safety. Each file is written to a temporary file in the same folder, flushed, fsynced, renamed
over the target with ``os.replace`` and the folder fsynced. The JSON is the commit record and is
written last. When a pair is overwritten, the old npz is first moved to ``<path>.npz.prev``; the
loader accepts whichever of ``.npz`` / ``.npz.prev`` matches the checksum in the JSON, so a crash at
any instant leaves either the previous pair or the new pair loadable, never a mixture.
"""
from __future__ import annotations

import hashlib
import io as _io
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# keys the loader owns; user meta may not use them
RESERVED_KEYS = ("schema_version", "kind", "sha256", "npz", "arrays", "edge_evo_version", "numerics_contract")


class CheckpointError(ValueError):
    """A checkpoint / model file is missing, corrupt, or from another schema version."""


# ----------------------------------------------------------------------------- paths
def base_path(path) -> Path:
    """``run/ckpt``, ``run/ckpt.npz`` and ``run/ckpt.json`` all name the pair ``run/ckpt``."""
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p


def _npz(p: Path) -> Path:
    return p.with_name(p.name + ".npz")


def _json(p: Path) -> Path:
    return p.with_name(p.name + ".json")


def _prev(p: Path) -> Path:
    return p.with_name(p.name + ".npz.prev")


# ----------------------------------------------------------------------------- atomic files
def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(x):
    """numpy scalars / arrays and non-finite floats -> plain JSON (NaN is not valid JSON)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    if x is None or isinstance(x, (str, int, bool)):
        return x
    raise TypeError(f"cannot store {type(x).__name__} in checkpoint meta; use numbers, strings, lists or dicts")


def dumps_json(obj) -> str:
    return json.dumps(_jsonable(obj), indent=1, sort_keys=True, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------- npz
def _check_arrays(arrays: dict) -> dict[str, np.ndarray]:
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict name -> ndarray, got {type(arrays).__name__}")
    out = {}
    for k, v in arrays.items():
        if not isinstance(k, str) or not k or k.startswith("/") or ".." in k.split("/"):
            raise ValueError(f"array name {k!r} is not a plain relative name")
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise TypeError(f"array {k!r} has object dtype, which would need pickle; store numeric arrays only")
        out[k] = a
    return out


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header(kind: str, sha: str, npz_name: str, arrays: dict[str, np.ndarray]) -> dict:
    import edge_evo
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "sha256": sha,
        "npz": npz_name,
        "arrays": {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in arrays.items()},
        "edge_evo_version": edge_evo.__version__,
        "numerics_contract": edge_evo.NUMERICS_CONTRACT,
    }


def _write_pair(p: Path, arrays: dict, meta: dict, kind: str) -> None:
    meta = dict(meta or {})
    clash = sorted(set(meta) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"meta keys {clash} are reserved for the file header; rename them")
    arrays = _check_arrays(arrays)
    data = _npz_bytes(arrays)
    sha = _sha256(data)
    npz, js, prev = _npz(p), _json(p), _prev(p)
    text = dumps_json({**meta, **_header(kind, sha, npz.name, arrays)})
    # Keep the npz the current JSON names reachable (as .prev) until the new JSON is committed.
    # An npz that does not match the JSON is an orphan of an interrupted write: the committed
    # one is then already in .prev (or nowhere), so it must not be moved over it.
    if npz.exists() and js.exists():
        try:
            committed = json.loads(js.read_text(encoding="utf-8")).get("sha256")
        except (OSError, ValueError, AttributeError):
            committed = None
        if committed is not None and _sha256(npz.read_bytes()) == committed:
            os.replace(npz, prev)
    atomic_write_bytes(npz, data)
    atomic_write_text(js, text)
    try:
        os.unlink(prev)
    except FileNotFoundError:
        pass


def _read_pair(path, kind: str | None) -> tuple[dict[str, np.ndarray], dict]:
    p = base_path(path)
    js = _json(p)
    if not js.exists():
        raise FileNotFoundError(f"no {kind or 'checkpoint'} at {p} (expected {js.name} and {_npz(p).name})")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{js} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}); the file is corrupt") from None
    if not isinstance(meta, dict) or "schema_version" not in meta:
        raise CheckpointError(f"{js} has no schema_version: not an edge_evo file")
    ver = meta["schema_version"]
    if ver != SCHEMA_VERSION:
        hint = ("upgrade edge-evo to read it" if isinstance(ver, int) and ver > SCHEMA_VERSION
                else "re-create it with this version (or load it with the edge-evo version that wrote it)")
        raise CheckpointError(f"{js} has schema version {ver}, this edge-evo reads version {SCHEMA_VERSION}: {hint}")
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{js} holds a {meta.get('kind')!r}, not a {kind!r}")
    data = None
    for cand in (_npz(p), _prev(p)):
        if cand.exists():
            b = cand.read_bytes()
            if _sha256(b) == meta.get("sha256"):
                data = b
                break
    if data is None:
        if not _npz(p).exists():
            raise FileNotFoundError(f"{_npz(p)} is missing (its JSON {js.name} exists)")
        raise CheckpointError(f"{_npz(p)} does not match the SHA-256 recorded in {js.name}: the file is corrupt or "
                              "was changed; restore it or use an earlier checkpoint")
    try:
        with np.load(_io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        raise CheckpointError(f"{_npz(p)} cannot be read without pickle ({e})") from None
    return arrays, meta


def load_header(path) -> dict:
    """The JSON of a pair (no checksum check; cheap)."""
    js = _json(base_path(path))
    return json.loads(js.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, arrays: dict, meta: dict | None = None) -> Path:
    """Write ``<path>.npz`` + ``<path>.json`` atomically; returns the base path."""
    p = base_path(path)
    _write_pair(p, arrays, meta or {}, "checkpoint")
    log.debug("checkpoint written: %s", p)
    return p


def load_checkpoint(path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) of a checkpoint; verifies schema version and checksum."""
    return _read_pair(path, "checkpoint")


# ----------------------------------------------------------------------------- models
@dataclass
class Model:
    """A deployable model: the MLP spec, one flat genome (canonical order) and its mode."""
    spec: object
    genome: np.ndarray
    mode: str
    meta: dict = field(default_factory=dict)

    def population(self):
        from .models.mlp import Population
        return Population.from_flat(self.spec, self.genome[None, :])


def save_model(path, spec, genome, mode: str, extra_meta: dict | None = None, overwrite: bool = False) -> Path:
    """Save a final model. An existing *different* model at ``path`` is kept unless ``overwrite=True``."""
    from .models.mlp import MODES
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    genome = np.ascontiguousarray(np.asarray(genome).ravel())
    want = np.int8 if mode == "int8" else np.float32
    if genome.dtype != want:
        raise TypeError(f"a {mode} model needs a {np.dtype(want).name} genome, got {genome.dtype}")
    if genome.size != spec.n_params:
        raise ValueError(f"genome has {genome.size} values, spec {spec.dims} needs {spec.n_params}")
    p = base_path(path)
    arrays = {"genome": genome}
    if _json(p).exists() and not overwrite:
        try:
            old = load_header(p)
        except (OSError, ValueError):
            old = None
        same = old is not None and old.get("sha256") == _sha256(_npz_bytes(arrays)) \
            and old.get("spec") == spec.to_dict() and old.get("mode") == mode
        if not same:
            raise FileExistsError(f"a different model already exists at {p}; pass overwrite=True "
                                  "(CLI: --overwrite) or choose another path")
    meta = dict(extra_meta or {})
    meta.update(spec=spec.to_dict(), mode=mode)
    _write_pair(p, arrays, meta, "model")
    log.debug("model written: %s.{npz,json}", p)
    return p


def load_model(path) -> Model:
    """Load a model saved by :func:`save_model` (a run folder is accepted: its ``model`` pair)."""
    from .models.mlp import MLPSpec
    p = Path(path)
    if p.is_dir():
        p = p / "model"
    arrays, meta = _read_pair(p, "model")
    spec = MLPSpec.from_dict(meta["spec"])
    return Model(spec, arrays["genome"], meta["mode"], meta)


__all__ = ["SCHEMA_VERSION", "CheckpointError", "Model", "save_checkpoint", "load_checkpoint", "save_model",
           "load_model", "load_header", "atomic_write_bytes", "atomic_write_text", "dumps_json", "base_path"]
