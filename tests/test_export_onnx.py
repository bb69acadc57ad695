"""ONNX export: the integer graph is bit-exact with the numba kernels in onnxruntime, the float
graph matches the float32 research mode within a stated tolerance (docs/export-onnx.md)."""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import edge_evo  # noqa: E402
from edge_evo.export import EXPORTERS, build_onnx, export, model_hash  # noqa: E402
from edge_evo.export.cli import add_export_subcommand, cli_export  # noqa: E402
from edge_evo.export.onnx_export import OPSET  # noqa: E402
from edge_evo.fixedpoint import quantize  # noqa: E402
from edge_evo.fixedpoint.ops import quantize_input_u8, requantize  # noqa: E402
from edge_evo.models.forward import forward  # noqa: E402
from edge_evo.models.mlp import MLPSpec, Population  # noqa: E402

# float graph vs float32 kernels: |diff| <= FLOAT_RTOL * max(1, max |logit|)
FLOAT_RTOL = 1e-5


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def kernel(spec, genome, X):
    return forward(Population.from_flat(spec, genome), X, engine="numba")[0]


def run_int(spec, genome, X, **kw):
    logits, label = session(build_onnx(spec, genome, **kw)).run(None, {"x": X})
    return logits, label


def assert_int_exact(spec, genome, X):
    logits, label = run_int(spec, genome, X)
    ref = kernel(spec, genome, X)
    assert logits.dtype == np.int32 and logits.shape == ref.shape
    np.testing.assert_array_equal(logits, ref)
    np.testing.assert_array_equal(label, np.argmax(ref, axis=1))
    return ref


def rand_genome(rng, spec, lo=-127, hi=127):
    return rng.integers(lo, hi + 1, spec.n_params).astype(np.int8)


# ----------------------------------------------------------------------------- integer graph
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "swish", "linear", "square", "sqrt_abs", "sin", "gauss"])
def test_integer_random_exact_every_activation(act):
    rng = np.random.default_rng(1)
    spec = MLPSpec((20, 16, 8, 5), activation=act)
    X = rng.integers(-127, 128, (257, 20)).astype(np.int8)
    for _ in range(2):
        assert_int_exact(spec, rand_genome(rng, spec), X)
    # small weights keep pre-activations inside the LUT's unsaturated range, where rounding matters most
    assert_int_exact(spec, rand_genome(rng, spec, -6, 6), X)


@pytest.mark.parametrize("fmt", [dict(), dict(w_frac=5, b_frac=3, x_frac=7, z_frac=4, h_frac=6),
                                 dict(w_frac=7, x_frac=7, z_frac=7, h_frac=7, b_frac=7),   # shift 7
                                 dict(w_frac=16, x_frac=7, z_frac=1, b_frac=6),          # shift 22 (max)
                                 dict(w_frac=3, x_frac=2, z_frac=5, b_frac=5)])           # shift 0
def test_integer_formats_exact(fmt):
    rng = np.random.default_rng(2)
    spec = MLPSpec((12, 9, 4), **fmt)
    X = rng.integers(-127, 128, (200, 12)).astype(np.int8)
    assert_int_exact(spec, rand_genome(rng, spec), X)
    assert_int_exact(spec, rand_genome(rng, spec, -3, 3), X)


def test_integer_ties_round_half_up():
    """Every product w * x for w, x in [-127, 127] plus odd/even biases: thousands of exact .5 ties,
    positive and negative; an identity LUT (z_frac = h_frac = 7) and W2 = 1.0 expose each hidden value."""
    spec = MLPSpec((1, 255, 255), activation="linear", w_frac=6, b_frac=6, x_frac=7, z_frac=7, h_frac=7)
    assert np.array_equal(spec.lut()[1:], np.arange(-127, 128))          # identity on [-127, 127]
    s = spec.out_shift(0)
    W1 = np.arange(-127, 128, dtype=np.int8)
    b1 = np.tile(np.array([0, 1, -1, 3], np.int8), 64)[:255]
    W2 = (64 * np.eye(255)).astype(np.int8)                              # 1.0 in Q6
    genome = np.concatenate([W1, b1, W2.ravel(), np.zeros(255, np.int8)])
    X = np.arange(-127, 128, dtype=np.int8)[:, None]
    acc = X.astype(np.int64) * W1[None, :] + (b1.astype(np.int64) << spec.bias_shift(0))[None, :]
    ties = acc % (1 << s) == (1 << (s - 1))
    assert (ties & (acc < 0)).sum() > 1000 and (ties & (acc > 0)).sum() > 1000
    ref = assert_int_exact(spec, genome, X)
    np.testing.assert_array_equal(ref, requantize(acc, s).astype(np.int32) * 64)   # the contract itself
    # a tie at -2.5 goes to -2, at +2.5 to 3 (not to even, which QuantizeLinear would do)
    assert requantize(np.array([-5 << (s - 1), 5 << (s - 1)]), s).tolist() == [-2, 3]


@pytest.mark.parametrize("dims", [(784, 10), (784, 64, 10)])
def test_integer_extremes(dims):
    """All-+-127 weights and inputs (largest accumulators, all sign mixes): no saturation anywhere
    (e.g. in 16-bit pair sums of a u8s8 GEMM), one-layer models check MatMulInteger's raw int32."""
    spec = MLPSpec(dims)
    n = spec.n_params
    alt = np.where(np.arange(n) % 2 == 0, 127, -127).astype(np.int8)
    cols = np.arange(784)
    X = np.stack([np.full(784, 127), np.full(784, -127), np.zeros(784), np.where(cols % 2 == 0, 127, -127),
                  np.where(cols % 2 == 0, -127, 127), np.where(cols < 392, 127, -127)]).astype(np.int8)
    for genome in (np.full(n, 127, np.int8), np.full(n, -127, np.int8), alt, -alt):
        ref = assert_int_exact(spec, genome, X)
        if len(dims) == 2:
            assert np.abs(ref).max() == 784 * 127 * 127 + (127 << spec.bias_shift(0))


@pytest.mark.parametrize("opset", [13, 21])
def test_integer_exact_other_opsets(opset):
    rng = np.random.default_rng(8)
    spec = MLPSpec((12, 9, 4))
    X = rng.integers(-127, 128, (64, 12)).astype(np.int8)
    genome = rand_genome(rng, spec)
    np.testing.assert_array_equal(run_int(spec, genome, X, opset=opset)[0], kernel(spec, genome, X))


def test_uint8_pixel_input_exact():
    rng = np.random.default_rng(3)
    spec = MLPSpec((256, 16, 10))
    genome = rand_genome(rng, spec, -20, 20)
    P = np.concatenate([np.arange(256, dtype=np.uint8)[None, :], rng.integers(0, 256, (99, 256))]).astype(np.uint8)
    sess = session(build_onnx(spec, genome, input="uint8"))
    assert [i.name for i in sess.get_inputs()] == ["pixels"]
    logits, label = sess.run(None, {"pixels": P})
    ref = kernel(spec, genome, quantize_input_u8(P))
    np.testing.assert_array_equal(logits, ref)
    np.testing.assert_array_equal(label, ref.argmax(1))


def test_uint8_pixel_input_extremes():
    """All-255 pixels (Q7 127) with all-+-127 weights through the uint8 path's u8 x s8 MatMulInteger."""
    spec = MLPSpec((784, 10))
    P = np.stack([np.full(784, 255), np.zeros(784), np.where(np.arange(784) % 2 == 0, 255, 0)]).astype(np.uint8)
    alt = np.where(np.arange(spec.n_params) % 2 == 0, 127, -127).astype(np.int8)
    for genome in (np.full(spec.n_params, 127, np.int8), np.full(spec.n_params, -127, np.int8), alt):
        logits = session(build_onnx(spec, genome, input="uint8")).run(None, {"pixels": P})[0]
        ref = kernel(spec, genome, quantize_input_u8(P))
        np.testing.assert_array_equal(logits, ref)
        if genome[1] == genome[0]:      # uniform weights reach the largest possible accumulator
            assert np.abs(ref).max() == 784 * 127 * 127 + (127 << spec.bias_shift(0))


def test_argmax_ties_lowest_index():
    spec = MLPSpec((3, 4))
    W = np.array([[1, 0, 0], [5, 5, 5], [0, 0, 1], [5, 5, 5]], np.int8)
    genome = np.concatenate([W.ravel(), np.zeros(4, np.int8)])
    X = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.int8)
    logits, label = run_int(spec, genome, X)
    assert label.tolist() == [1, 0, 0]                  # all-zero row: every logit ties -> index 0
    assert np.array_equal(label, np.argmax(logits, axis=1))


# ----------------------------------------------------------------------------- float graph
@pytest.mark.parametrize("act", ["tanh", "sigmoid", "relu", "swish", "linear", "square", "sqrt_abs", "sin", "gauss"])
def test_float_graph_matches_float32_kernels(act):
    rng = np.random.default_rng(4)
    spec = MLPSpec((20, 16, 8, 5), activation=act)
    X = rng.random((128, 20)).astype(np.float32)
    g = (rng.standard_normal(spec.n_params) * 0.5).astype(np.float32)
    logits, label = session(build_onnx(spec, g)).run(None, {"x": X})
    ref = kernel(spec, g, X)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, ref, rtol=0, atol=FLOAT_RTOL * max(1.0, float(np.abs(ref).max())))
    # int8 genome -> dequantized float graph == float32 kernels on the dequantized genome
    gi = rand_genome(rng, spec, -40, 40)
    deq = np.concatenate([gi[o:o + int(np.prod(s))].astype(np.float32) * np.float32(2.0 ** -spec.tensor_frac(n))
                          for (n, s), o in zip(spec.tensors(), spec.offsets().values())])
    logits = session(build_onnx(spec, gi, integer=False)).run(None, {"x": X})[0]
    ref = kernel(spec, deq, X)
    np.testing.assert_allclose(logits, ref, rtol=0, atol=FLOAT_RTOL * max(1.0, float(np.abs(ref).max())))


def test_float_uint8_input_divides_by_255():
    rng = np.random.default_rng(5)
    spec = MLPSpec((30, 8, 3))
    g = (rng.standard_normal(spec.n_params) * 0.3).astype(np.float32)
    P = rng.integers(0, 256, (50, 30)).astype(np.uint8)
    logits = session(build_onnx(spec, g, input="uint8")).run(None, {"pixels": P})[0]
    ref = kernel(spec, g, P.astype(np.float32) / np.float32(255.0))
    np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- file, metadata, API
def test_file_round_trip_metadata_dynamic_batch(tmp_path):
    rng = np.random.default_rng(6)
    spec = MLPSpec((10, 7, 3), activation="sigmoid")
    genome = rand_genome(rng, spec)
    path = export((spec, genome), tmp_path / "m", to="onnx", integer=True)
    assert path.name == "m.onnx"
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert {o.domain: o.version for o in m.opset_import}[""] == OPSET
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["edge_evo_version"] == edge_evo.__version__
    assert meta["numerics_contract"] == edge_evo.NUMERICS_CONTRACT
    assert MLPSpec.from_dict(json.loads(meta["formats"])) == spec
    assert meta["model_hash"] == model_hash(spec, genome) and len(meta["model_hash"]) == 64
    assert meta["graph"] == "integer" and meta["logit_frac"] == str(spec.logit_frac)
    assert [o.name for o in m.graph.output] == ["logits", "label"]
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in (1, 33):
        X = rng.integers(-127, 128, (b, 10)).astype(np.int8)
        np.testing.assert_array_equal(sess.run(["logits"], {"x": X})[0], kernel(spec, genome, X))
    # another genome, another hash
    g2 = genome.copy()
    g2[0] ^= 1
    assert model_hash(spec, g2) != meta["model_hash"]


def test_saved_model_path_io_model_population_and_cli(tmp_path):
    from edge_evo.io import load_model, save_model
    import argparse
    rng = np.random.default_rng(7)
    spec = MLPSpec((6, 5, 2))
    genome = rand_genome(rng, spec)
    save_model(tmp_path / "model", spec, genome, "int8")
    X = rng.integers(0, 128, (9, 6)).astype(np.int8)
    ref = kernel(spec, genome, X)
    for m in (tmp_path / "model", str(tmp_path), load_model(tmp_path / "model"),
              Population.from_flat(spec, genome)):
        p = export(m, tmp_path / "out.onnx")
        np.testing.assert_array_equal(
            ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0], ref)
    parser = argparse.ArgumentParser()
    add_export_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", str(tmp_path / "model.json"), "--float", "--input", "uint8"])
    assert args._handler(args) == 0 and args._handler is cli_export
    f = tmp_path / "model.onnx"
    meta = {p.key: p.value for p in onnx.load(str(f)).metadata_props}
    assert meta["graph"] == "float" and meta["input"] == "uint8"


def test_bad_input_errors():
    spec = MLPSpec((4, 3, 2))
    g8 = np.zeros(spec.n_params, np.int8)
    g32 = np.zeros(spec.n_params, np.float32)
    assert {"onnx", "c"} <= set(EXPORTERS)
    with pytest.raises(ValueError, match=r"unknown export target 'pdp11'; supported: \['c', ('nir', )?'onnx'"):
        export((spec, g8), "x.c", to="pdp11")
    with pytest.raises(ValueError, match="not supported by the 'onnx' exporter; supported"):
        export((spec, g8), "x.onnx", quantize=True)
    with pytest.raises(TypeError, match="supported models: \\(MLPSpec, genome\\) tuple"):
        export({"dims": [4, 3, 2]}, "x.onnx")
    with pytest.raises(ValueError, match="export one"):
        export(Population.from_flat(spec, np.zeros((2, spec.n_params), np.int8)), "x.onnx")
    with pytest.raises(ValueError, match="integer=True needs an int8 genome"):
        build_onnx(spec, g32, integer=True)
    with pytest.raises(ValueError, match=r"input 'float32' is not supported for the integer graph; choose one of"):
        build_onnx(spec, g8, input="float32")
    with pytest.raises(ValueError, match="uint8 pixel input needs x_frac=7"):
        build_onnx(MLPSpec((4, 3, 2), x_frac=6), g8, input="uint8")
    with pytest.raises(ValueError, match="-128"):
        build_onnx(spec, np.full(spec.n_params, -128, np.int8))
    with pytest.raises(ValueError, match="shift 27 > 22"):
        build_onnx(MLPSpec((4, 3, 2), w_frac=25, x_frac=7, z_frac=5), g8)
    with pytest.raises(ValueError, match="genome has 3 values"):
        build_onnx(spec, g8[:3])
    with pytest.raises(TypeError, match="int8 or float32"):
        build_onnx(spec, g8.astype(np.int16))
    with pytest.raises(ValueError, match="opset 7 is not supported"):
        build_onnx(spec, g8, opset=7)


# ----------------------------------------------------------------------------- MNIST
def _fit_mnist_int8(shared_data, n_train=6000):
    """A quick int8 784-64-10 model: fixed random int8 layer 1 (as the kernels compute it), then
    least squares for layer 2 on the int8 hidden codes, quantized to Q6 (seconds, ~85% accuracy)."""
    from edge_evo.tasks import load_mnist
    Xtr, ytr = load_mnist("mnist", "train", path=shared_data, download=False)
    Xq = quantize_input_u8(Xtr[:n_train])
    spec = MLPSpec((784, 64, 10))
    rng = np.random.default_rng(0)
    W1 = rng.integers(-6, 7, (64, 784)).astype(np.int8)
    b1 = np.zeros(64, np.int8)
    probe = np.concatenate([W1.ravel(), b1, np.zeros(64 * 10 + 10, np.int8)])
    acc = Xq.astype(np.int32) @ W1.T.astype(np.int32)
    h = spec.lut()[requantize(acc, spec.out_shift(0)).astype(np.int16) + 128].astype(np.float64) / 128
    Y = np.eye(10)[ytr[:n_train]] * 2 - 1
    A = np.hstack([h, np.ones((n_train, 1))])
    sol = np.linalg.lstsq(A.T @ A + 1e-2 * np.eye(65), A.T @ Y, rcond=None)[0]
    scale = 100.0 / np.abs(sol).max()               # argmax is scale-invariant: use the int8 range
    W2 = quantize(sol[:64].T * scale * 2.0 ** -spec.w_frac, spec.w_frac)
    b2 = quantize(sol[64] * scale * 2.0 ** -spec.w_frac, spec.b_frac)   # same real scale as W2
    genome = probe.copy()
    off = spec.offsets()
    genome[off["W2"]:off["W2"] + 640] = W2.ravel()
    genome[off["b2"]:off["b2"] + 10] = b2
    return spec, genome


def test_mnist_accuracy_onnx_equals_kernels(shared_data, tmp_path):
    from edge_evo.tasks import load_mnist
    spec, genome = _fit_mnist_int8(shared_data)
    Xte, yte = load_mnist("mnist", "test", path=shared_data, download=False)
    kern = kernel(spec, genome, quantize_input_u8(Xte)).argmax(1)
    acc_kernel = float((kern == yte).mean())
    path = export((spec, genome), tmp_path / "mnist_int8.onnx", input="uint8")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, label = sess.run(None, {"pixels": Xte})
    acc_onnx = float((label == yte).mean())
    assert acc_onnx == acc_kernel and acc_kernel > 0.75
    np.testing.assert_array_equal(label, kern)
    np.testing.assert_array_equal(logits, kernel(spec, genome, quantize_input_u8(Xte)))


def test_docs_example(tmp_path, monkeypatch):
    """The Python block of docs/export-onnx.md runs as written (in a temporary folder)."""
    import pathlib
    import re
    doc = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "export-onnx.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/export-onnx.md", "exec"), {})
    assert (tmp_path / "mlp_int8.onnx").is_file()
