"""Every int8 forward engine is bit-identical to the ``numba`` reference (kernels/dense.py)."""
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edge_evo.kernels import native
from edge_evo.kernels.engines import INT8_ENGINES, engine_available, forward_float32, resolve_engine
from edge_evo.models.mlp import MLPSpec, Population

REPO = Path(__file__).resolve().parents[1]
ENGINES = [e for e in INT8_ENGINES if e != "numba"]


def _case(dims, P, B, seed, w="random", x="pixels", activation="tanh"):
    spec = MLPSpec(dims, activation=activation)
    rng = np.random.default_rng(seed)
    if w == "random":
        flat = rng.integers(-127, 128, (P, spec.n_params))
    elif w == "max":
        flat = np.full((P, spec.n_params), 127)
    elif w == "min":
        flat = np.full((P, spec.n_params), -127)
    else:  # alternating signs per genome
        flat = np.where(np.arange(P)[:, None] % 2 == 0, 127, -127) * np.ones((1, spec.n_params), int)
    pop = Population.from_flat(spec, flat.astype(np.int8))
    if x == "pixels":
        X = rng.integers(0, 128, (B, dims[0]))
    elif x == "max":
        X = np.full((B, dims[0]), 127)
    else:  # signed Q7 inputs, extremes included
        X = rng.integers(-128, 128, (B, dims[0]))
        X[0, :] = -128
    layers = [pop.layer(l) for l in range(spec.n_layers)]
    shifts = [(spec.bias_shift(l), spec.out_shift(l)) for l in range(spec.n_layers)]
    return layers, np.ascontiguousarray(X.astype(np.int8)), shifts, spec.lut()


def _run(engine, case):
    if not engine_available(engine):
        pytest.skip(f"engine {engine} not available here")
    return INT8_ENGINES[engine](*case)


SHAPES = [
    ((784, 64, 10), 7, 9),      # reference architecture, odd P and B
    ((784, 64, 10), 1, 1),      # P = 1, B = 1
    ((30, 7), 5, 3),            # one layer, fan-in < 32
    ((100, 33, 17, 5), 6, 13),  # three layers, odd sizes
    ((65, 5, 3), 4, 5),         # fan-in just above one 64-byte vector
    ((1040, 8, 2), 3, 4),       # largest fan-in the contract allows
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dims,P,B", SHAPES)
def test_engine_bit_identical_random(engine, dims, P, B):
    case = _case(dims, P, B, seed=P * 31 + B)
    ref = INT8_ENGINES["numba"](*case)
    out = _run(engine, case)
    assert out.dtype == np.int32 and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("w,x", [("max", "max"), ("min", "max"), ("alt", "max"), ("random", "signed"),
                                 ("min", "signed")])
def test_engine_bit_identical_extremes(engine, w, x):
    case = _case((784, 16, 10), 4, 6, seed=3, w=w, x=x)
    ref = INT8_ENGINES["numba"](*case)
    np.testing.assert_array_equal(_run(engine, case), ref)
    # sanity: the extreme case really reaches the int32 range the contract allows
    if w == "max" and x == "max":
        assert ref.max() > 0


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_engine_other_activations(activation):
    case = _case((50, 12, 4), 3, 5, seed=9, activation=activation)
    ref = INT8_ENGINES["numba"](*case)
    for engine in ENGINES:
        if engine_available(engine):
            np.testing.assert_array_equal(INT8_ENGINES[engine](*case), ref)


def test_native_code_paths_agree():
    """Each C path this CPU can run (portable, AVX2, AVX512-VNNI) gives the same integers."""
    if not native.available():
        pytest.skip("no C compiler")
    for dims, P, B in [((784, 64, 10), 3, 7), ((97, 9, 6, 3), 4, 5), ((20, 3), 2, 3)]:
        for x in ("pixels", "signed"):
            case = _case(dims, P, B, seed=11, x=x)
            ref = INT8_ENGINES["numba"](*case)
            for path in native.paths_available():
                for threads in (1, 2):
                    out = native.forward_int8_native(*case, threads=threads, path=path)
                    np.testing.assert_array_equal(out, ref, err_msg=f"path {path}, threads {threads}")


def test_native_forced_path_refuses_negative_inputs():
    if not native.available() or "avx2-u8" not in native.paths_available():
        pytest.skip("no AVX2 native path here")
    W = np.ones((1, 2, 64), np.int8)
    X = -np.ones((1, 3, 64), np.int8)
    with pytest.raises(ValueError, match="avx2-u8"):
        native.dense(W, np.zeros((1, 2), np.int8), X, 0, 0, path="avx2-u8")


def test_resolve_engine():
    assert resolve_engine("numba", 200, 200) == "numba"
    assert resolve_engine("auto", 2, 3) == "numba"
    big = resolve_engine("auto", 200, 200)
    assert big in INT8_ENGINES and big != "numba"
    assert engine_available(big)
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine("cuda", 1, 1)


_TINY = textwrap.dedent("""
    import hashlib, numpy as np
    from edge_evo.kernels.engines import INT8_ENGINES
    from edge_evo.models.mlp import MLPSpec, Population
    spec = MLPSpec((12, 5, 3))
    rng = np.random.default_rng(5)
    pop = Population.from_flat(spec, rng.integers(-127, 128, (3, spec.n_params)).astype(np.int8))
    X = rng.integers(-128, 128, (4, 12)).astype(np.int8)
    layers = [pop.layer(l) for l in range(spec.n_layers)]
    shifts = [(spec.bias_shift(l), spec.out_shift(l)) for l in range(spec.n_layers)]
    out = INT8_ENGINES["numba"](layers, X, shifts, spec.lut())
    print(hashlib.sha256(np.ascontiguousarray(out, dtype='<i4').tobytes()).hexdigest())
""")


def test_numba_disable_jit_identical():
    """The reference loops give the same bits interpreted (NUMBA_DISABLE_JIT=1) as compiled."""
    hashes = []
    for flag in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=flag, PYTHONPATH=str(REPO))
        r = subprocess.run([sys.executable, "-c", _TINY], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        hashes.append(r.stdout.strip())
    assert hashes[0] == hashes[1] and len(hashes[0]) == 64


def test_float32_mode_matches_float64_loop():
    """float32 research mode vs a plain float64 loop: |diff| <= 1e-4 * (1 + |logit|)."""
    rng = np.random.default_rng(2)
    dims = (40, 16, 8, 5)
    P, B = 4, 6
    layers = [(rng.normal(0, 0.3, (P, dims[l + 1], dims[l])).astype(np.float32),
               rng.normal(0, 0.1, (P, dims[l + 1])).astype(np.float32)) for l in range(len(dims) - 1)]
    X = rng.uniform(-1, 1, (B, dims[0])).astype(np.float32)
    out = forward_float32(layers, X, np.tanh)
    ref = np.empty((P, B, dims[-1]))
    for p in range(P):
        for n in range(B):
            h = X[n].astype(np.float64)
            for l, (W, b) in enumerate(layers):
                z = W[p].astype(np.float64) @ h + b[p]
                h = np.tanh(z) if l < len(layers) - 1 else z
            ref[p, n] = h
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_native_unavailable_message(monkeypatch, tmp_path):
    """Without a compiler the native engine says so and names the alternatives."""
    monkeypatch.setattr(native, "_LIB", None)
    monkeypatch.setattr(native, "_ERROR", None)
    monkeypatch.setenv("EDGE_EVO_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(native.NativeUnavailable, match="engine='numba'"):
        native.load()
    assert not native.available()
