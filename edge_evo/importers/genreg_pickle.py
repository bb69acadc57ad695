"""Read a GENREG genome pickle (A1CST/GENREG_ALPHA_MNIST ``best_genomes/*.pkl``) without running it.

The published files are pickles of builtins only: a dict whose ``"controller"`` entry holds
``w1, b1, w2, b2`` (nested lists) for ``h = tanh(W1 x + b1)``, ``logits = W2 h + b2``, ``x = pixels / 255``.

A pickle is a program: the GLOBAL / STACK_GLOBAL opcodes import any callable and REDUCE calls it.
:class:`SafeUnpickler` refuses every global and every persistent id, so the only objects a file can
build are the ones the opcodes themselves construct (dict, list, tuple, str, bytes, int, float,
bool, None, set); :func:`_check_tree` then admits only dict / list / tuple / str / int / float / bool /
None, without cycles. Nothing in the file is ever called.
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import pickle
from pathlib import Path

import numpy as np

from ..models.mlp import MLPSpec

log = logging.getLogger(__name__)

MAX_PICKLE_BYTES = 256 * 1024 * 1024  # far above any MLP a microcontroller holds; stops memory bombs
MAX_DEPTH = 64
_ALLOWED = (dict, list, tuple, str, int, float, bool, type(None))


class PickleRefused(ValueError):
    """The pickle asked for something a data file never needs (a global, a persistent id)."""


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds builtins only: every global and persistent id is refused."""

    def find_class(self, module, name):
        raise PickleRefused(f"refused: the pickle tries to load the global {module}.{name}; "
                            "only plain data (dicts, lists, numbers) is accepted and nothing was executed")

    def persistent_load(self, pid):
        raise PickleRefused(f"refused: the pickle uses a persistent id ({type(pid).__name__}); "
                            "only plain data is accepted and nothing was executed")


def safe_load_bytes(data: bytes, name: str = "<bytes>"):
    """Unpickle ``data`` with :class:`SafeUnpickler` and check it is a tree of plain builtins."""
    f = io.BytesIO(data)
    try:
        obj = SafeUnpickler(f).load()
    except PickleRefused as e:
        raise PickleRefused(f"{name}: {e}") from None
    except RecursionError:
        raise ValueError(f"{name}: pickle nests too deeply; not a genome file") from None
    except Exception as e:  # truncated / corrupt streams raise many types (EOFError, UnpicklingError, ...)
        raise ValueError(f"{name}: not a readable pickle ({type(e).__name__}: {str(e)[:120]}); "
                         "the file is truncated or corrupt: download it again") from None
    if f.read(1):
        raise ValueError(f"{name}: trailing bytes after the pickle's STOP; the file is corrupt")
    _check_tree(obj, name)
    return obj


def _check_tree(obj, name: str) -> None:
    """Only plain builtins, no cycles, bounded depth (iterative: no recursion limit to trip)."""
    stack = [(obj, 0, "root")]
    seen_containers: set[int] = set()
    while stack:
        x, depth, where = stack.pop()
        if type(x) not in _ALLOWED:
            raise ValueError(f"{name}: {where} is a {type(x).__name__}; only dict/list/tuple/str/int/float/"
                             "bool/None are accepted in a genome pickle")
        if depth > MAX_DEPTH:
            raise ValueError(f"{name}: nesting deeper than {MAX_DEPTH} at {where}; not a genome file")
        if isinstance(x, (dict, list, tuple)):
            if id(x) in seen_containers:
                # a container referenced twice (memo) is harmless only without cycles; refuse both
                raise ValueError(f"{name}: {where} is a shared or self-referencing container; not a genome file")
            seen_containers.add(id(x))
            if isinstance(x, dict):
                for k, v in x.items():
                    if type(k) not in (str, int):
                        raise ValueError(f"{name}: dict key {k!r} at {where} is not a str/int")
                    stack.append((v, depth + 1, f"{where}[{k!r}]"))
            else:
                stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(x))


def _matrix(x, key: str, name: str) -> np.ndarray:
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: controller[{key!r}] is not a rectangular list of numbers") from None
    if a.dtype != np.float64 or a.size == 0:
        raise ValueError(f"{name}: controller[{key!r}] is empty or not numeric")
    if not np.all(np.isfinite(a)):
        bad = int(np.count_nonzero(~np.isfinite(a)))
        raise ValueError(f"{name}: controller[{key!r}] holds {bad} NaN/inf value(s); the genome is "
                         "corrupt: use another checkpoint")
    if np.any(np.abs(a) > np.finfo(np.float32).max):
        raise ValueError(f"{name}: controller[{key!r}] has values beyond float32 range")
    return a


def _layer_count(ctrl: dict) -> int:
    n = 0
    while f"w{n + 1}" in ctrl:
        n += 1
    return n


def genreg_controller_to_mlp(ctrl: dict, name: str = "<genome>", activation: str = "tanh"):
    """Controller dict (w1, b1, w2, b2, ...) -> (MLPSpec, float32 genome, orientation notes)."""
    if not isinstance(ctrl, dict):
        raise ValueError(f"{name}: 'controller' must be a dict with w1, b1, w2, b2, got {type(ctrl).__name__}")
    n_layers = _layer_count(ctrl)
    if n_layers < 1:
        raise ValueError(f"{name}: controller has no 'w1'; keys are {sorted(map(str, ctrl))[:12]}: "
                         "not a GENREG MLP genome")
    sizes_hint = [ctrl.get("input_size")] + [ctrl.get("hidden_size")] * (n_layers - 1) + [ctrl.get("output_size")]
    sizes_hint = [int(s) if isinstance(s, int) and not isinstance(s, bool) else None for s in sizes_hint]
    dims = [None] * (n_layers + 1)
    tensors, notes = [], []
    for l in range(n_layers):
        wk, bk = f"w{l + 1}", f"b{l + 1}"
        if bk not in ctrl:
            raise ValueError(f"{name}: controller has {wk!r} but no {bk!r}")
        W = _matrix(ctrl[wk], wk, name)
        b = _matrix(ctrl[bk], bk, name).reshape(-1)
        if W.ndim != 2:
            raise ValueError(f"{name}: {wk!r} must be 2-D, got shape {W.shape}")
        n_out = b.size
        prev = dims[l] if l > 0 else sizes_hint[0]
        # GENREG stores W[out, in] (h = W x); accept the transpose when the bias / sizes say so
        if W.shape[0] == n_out and (prev is None or W.shape[1] == prev):
            orient = "[out, in]"
        elif W.shape[1] == n_out and (prev is None or W.shape[0] == prev):
            W = W.T
            orient = "[in, out] (transposed)"
        else:
            raise ValueError(f"{name}: {wk!r} has shape {W.shape} but {bk!r} has {n_out} values"
                             + (f" and the layer input has {prev}" if prev is not None else "")
                             + ": inconsistent layer sizes")
        if W.shape[0] == W.shape[1]:
            orient = "[out, in] (square: GENREG convention h = W x assumed)"
        dims[l], dims[l + 1] = W.shape[1], W.shape[0]
        notes.append(f"{wk} {orient}")
        tensors += [W, b]
    for l, hint in enumerate(sizes_hint):
        if hint is not None and hint != dims[l] and (l in (0, n_layers) or n_layers == 2):
            raise ValueError(f"{name}: controller says size {hint} for layer {l} but the weights give "
                             f"{dims[l]}; inconsistent genome")
    spec = MLPSpec(tuple(dims), activation=activation)
    genome = np.concatenate([t.ravel() for t in tensors]).astype(np.float32)
    return spec, genome, notes


def load_genreg_pickle(path, activation: str = "tanh"):
    """Load a GENREG genome pickle -> ``(MLPSpec, float32 genome, info)``; nothing in it is executed.

    The float model is ``h = act(W1 x + b1)``, ``logits = W2 h + b2`` with ``x = pixels / 255``
    (GENREG's MNIST convention; ``info["input"]`` says so). ``info`` carries the file's SHA-256,
    generation, genome id, trust and how each weight matrix was oriented.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ValueError(f"cannot read {p}: {e.strerror or e}") from None
    if size > MAX_PICKLE_BYTES:
        raise ValueError(f"{p}: {size} bytes is larger than any genome pickle ({MAX_PICKLE_BYTES}); refused")
    data = p.read_bytes()
    obj = safe_load_bytes(data, p.name)
    if not isinstance(obj, dict):
        raise ValueError(f"{p.name}: top level is a {type(obj).__name__}, expected a dict with a 'controller'")
    ctrl = obj.get("controller", obj if "w1" in obj else None)
    if ctrl is None:
        raise ValueError(f"{p.name}: no 'controller' entry (keys: {sorted(map(str, obj))[:12]}); "
                         "not a GENREG genome pickle")
    spec, genome, notes = genreg_controller_to_mlp(ctrl, p.name, activation)
    ext = obj.get("extraction_info") if isinstance(obj.get("extraction_info"), dict) else {}
    gen = obj.get("genome") if isinstance(obj.get("genome"), dict) else {}
    info = {
        "format": "genreg-pickle",
        "source": p.name,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "input": "pixels/255",
        "orientation": notes,
        "generation": ext.get("source_generation"),
        "genome_id": gen.get("id"),
        "trust": gen.get("trust") if isinstance(gen.get("trust"), (int, float)) and math.isfinite(gen["trust"]) else None,
    }
    log.info("GENREG genome %s: %s %s, generation %s", p.name, spec.activation, spec.dims, info["generation"])
    return spec, genome, info


__all__ = ["SafeUnpickler", "PickleRefused", "safe_load_bytes", "load_genreg_pickle", "genreg_controller_to_mlp"]
