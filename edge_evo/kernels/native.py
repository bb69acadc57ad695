"""The ``native`` engine: the C kernel of kernels/native_src.py, compiled on first use.

The shared library is built with the system C compiler (``$CC``, else ``cc``) into a per-user
cache (``$EDGE_EVO_CACHE`` or ``~/.cache/edge_evo/native``), keyed by a hash of the source, the
flags, the compiler and the CPU flags, and loaded with ctypes. AVX512-VNNI is chosen at run time
inside the library, so one build serves both paths. No compiler -> :class:`NativeUnavailable`
with the reason; callers (engine ``auto``) then fall back to another exact engine.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .native_src import C_SOURCE

log = logging.getLogger(__name__)

_FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC", "-fopenmp"]
_LIB = None
_ERROR: str | None = None


class NativeUnavailable(RuntimeError):
    """The C kernel cannot be built or loaded here (no compiler, no OpenMP, ...)."""


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def cache_dir() -> Path:
    root = os.environ.get("EDGE_EVO_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "edge_evo"
    return base / "native"


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise NativeUnavailable("engine 'native' needs a C compiler: install gcc (or set $CC), "
                                "or use engine='numba'/'blas'/'ort'")
    return cc


def _build() -> Path:
    cc = _compiler()
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise NativeUnavailable(f"C compiler {cc!r} does not run ({e}); set $CC to a working compiler "
                                "or use engine='numba'/'blas'/'ort'") from None
    tag = hashlib.sha256("\0".join([C_SOURCE, " ".join(_FLAGS), version, _cpu_flags(),
                                    platform.machine()]).encode()).hexdigest()[:16]
    out = cache_dir() / f"ee_dense_{tag}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src = Path(tmp) / "ee_dense.c"
        src.write_text(C_SOURCE)
        so = Path(tmp) / out.name
        r = subprocess.run([cc, *_FLAGS, str(src), "-o", str(so)], capture_output=True, text=True)
        if r.returncode != 0:
            raise NativeUnavailable(f"compiling the native kernel with {cc} failed: "
                                    f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}; "
                                    "use engine='numba'/'blas'/'ort'")
        os.replace(so, out)  # atomic: concurrent builders (pytest -n) never see a partial file
    log.info("built native kernel %s", out)
    return out


def load():
    """The ctypes library (built if needed); raises NativeUnavailable with the reason."""
    global _LIB, _ERROR
    if _LIB is not None:
        return _LIB
    if _ERROR is not None:
        raise NativeUnavailable(_ERROR)
    try:
        lib = ctypes.CDLL(str(_build()))
    except NativeUnavailable as e:
        _ERROR = str(e)
        raise
    except OSError as e:
        _ERROR = f"loading the native kernel failed ({e}); use engine='numba'/'blas'/'ort'"
        raise NativeUnavailable(_ERROR) from None
    p = ctypes.c_void_p
    i = ctypes.c_int
    lib.ee_dense.argtypes = [p, p, p, i, i, i, i, i, i, i, p, p, p, p, i, i, i]
    lib.ee_dense.restype = i
    lib.ee_has_vnni.argtypes = []
    lib.ee_has_vnni.restype = i
    _LIB = lib
    return lib


def available() -> bool:
    try:
        load()
        return True
    except NativeUnavailable:
        return False


def has_vnni() -> bool:
    return bool(load().ee_has_vnni())


def _ptr(a):
    return a.ctypes.data if a is not None else None


PATHS = {"auto": -1, "portable": 0, "portable-avx2": 1, "avx2-u8": 2, "avx512-vnni": 3}
PATH_NAMES = {v: k for k, v in PATHS.items()}


def dense(W, b, X, bias_shift, out_shift, lut=None, threads=2, path="auto", out=None, strict=True):
    """One population layer (see native_src). X [1 or P, B, I] int8; lut None -> int32 logits.

    ``path`` forces a code path (tests use it to compare them); if it cannot run (CPU, negative
    inputs for avx2-u8), ``strict`` raises, else the automatic choice runs. Returns (out, path used).
    """
    lib = load()
    P, O, I = W.shape
    B = X.shape[1]
    shared = X.shape[0] == 1
    W = np.ascontiguousarray(W, dtype=np.int8)
    b = np.ascontiguousarray(b, dtype=np.int8)
    X = np.ascontiguousarray(X, dtype=np.int8)
    if out is None:
        out = np.empty((P, B, O), dtype=np.int8 if lut is not None else np.int32)
    scratch = np.empty(X.shape[0] * B * (I + 64), dtype=np.uint8)
    lut_c = np.ascontiguousarray(lut, dtype=np.int8) if lut is not None else None
    x_nonneg = bool(X.size == 0 or X.min() >= 0)
    used = lib.ee_dense(_ptr(W), _ptr(b), _ptr(X), int(shared), P, O, I, B, int(bias_shift), int(out_shift),
                        _ptr(lut_c), _ptr(out) if lut is not None else None, _ptr(out) if lut is None else None,
                        _ptr(scratch), int(threads), PATHS[path], int(x_nonneg))
    if used < 0 and not strict:
        used = lib.ee_dense(_ptr(W), _ptr(b), _ptr(X), int(shared), P, O, I, B, int(bias_shift), int(out_shift),
                            _ptr(lut_c), _ptr(out) if lut is not None else None,
                            _ptr(out) if lut is None else None, _ptr(scratch), int(threads), -1, int(x_nonneg))
    if used < 0:
        raise ValueError(f"native path {path!r} is not usable here (CPU lacks it, or inputs are negative "
                         "for avx2-u8); use path='auto'")
    return out, PATH_NAMES[used]


def paths_available() -> list[str]:
    """Code paths this CPU can run (for tests and benchmarks)."""
    out = ["portable"]
    W = np.ones((1, 1, 64), np.int8)
    X = np.ones((1, 1, 64), np.int8)
    for name in ("portable-avx2", "avx2-u8", "avx512-vnni"):
        try:
            dense(W, np.zeros((1, 1), np.int8), X, 0, 0, path=name)
            out.append(name)
        except ValueError:
            pass
    return out


def forward_int8_native(layers, X, shifts, lut, threads=2, path="auto"):
    """Same contract as engines.forward_int8_numba, every layer in C."""
    h = X[None] if X.ndim == 2 else X
    for l, (W, b) in enumerate(layers):
        last = l == len(layers) - 1
        h, _ = dense(W, b, h, shifts[l][0], shifts[l][1], None if last else lut, threads, path, strict=False)
    return h
