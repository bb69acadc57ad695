"""Importers: GENREG genome pickles (hostile ones refused), ONNX float MLPs, post-training int8."""
import argparse
import os
import pickle
import pickletools

import numpy as np
import pytest

from edge_evo.importers import import_model, load_genreg_pickle, load_onnx_mlp, quantize_model, PickleRefused
from edge_evo.importers.cli import add_import_arguments, cli_import
from edge_evo.importers.genreg_pickle import safe_load_bytes
from edge_evo.io import load_model
from edge_evo.models.forward import forward
from edge_evo.models.mlp import MLPSpec, Population

G600 = "best_genome_mnist_gen00600_20251229_140150.pkl"
G565 = "best_genome_mnist_gen00565_20251229_141001.pkl"


@pytest.fixture(scope="module")
def genreg_dir(shared_data):
    d = shared_data / "genreg"
    if not (d / G600).is_file():
        pytest.skip("GENREG genomes not in the shared data")
    return d


@pytest.fixture(scope="module")
def mnist(shared_data):
    from edge_evo.tasks import load_mnist
    Xtr, ytr = load_mnist("mnist", "train", path=shared_data, download=False)
    Xte, yte = load_mnist("mnist", "test", path=shared_data, download=False)
    return Xtr, ytr, Xte, yte


def _genreg_dict(W1, b1, W2, b2):
    return {"extraction_info": {"source_generation": 7}, "genome": {"id": 1, "trust": 2.0},
            "controller": {"input_size": W1.shape[1], "hidden_size": W1.shape[0], "output_size": W2.shape[0],
                           "w1": W1.tolist(), "b1": b1.tolist(), "w2": W2.tolist(), "b2": b2.tolist()}}


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ----------------------------------------------------------------------------- GENREG pickles
def test_genreg_published_genomes_float_accuracy(genreg_dir, mnist):
    _, _, Xte, yte = mnist
    for fname, hidden, acc in ((G600, 64, 0.8120), (G565, 32, 0.7252)):
        spec, genome, info = load_genreg_pickle(genreg_dir / fname)
        assert spec.dims == (784, hidden, 10) and spec.activation == "tanh" and genome.dtype == np.float32
        assert info["orientation"] == ["w1 [out, in]", "w2 [out, in]"]   # stored W[out, in], h = W1 x
        logits = forward(Population.from_flat(spec, genome), Xte.astype(np.float32) / 255)[0]
        assert np.mean(logits.argmax(1) == yte) == pytest.approx(acc, abs=1e-9)   # the author's published figure


def test_transposed_weights_accepted(tmp_path):
    rng = np.random.default_rng(0)
    W1, b1, W2, b2 = rng.normal(size=(5, 12)), rng.normal(size=5), rng.normal(size=(3, 5)), rng.normal(size=3)
    d = _genreg_dict(W1, b1, W2, b2)
    d["controller"]["w1"] = W1.T.tolist()   # [in, out]
    spec, genome, info = load_genreg_pickle(_write(tmp_path, "t.pkl", pickle.dumps(d)))
    assert spec.dims == (12, 5, 3) and "transposed" in info["orientation"][0]
    assert np.allclose(genome[:60].reshape(5, 12), W1, atol=1e-6)


class _Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_refused_nothing_executed(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"controller": _Hostile(marker)})
    p = _write(tmp_path, "evil.pkl", data)
    out = tmp_path / "model"
    with pytest.raises(PickleRefused, match=r"(posix|os|nt)\.system.*nothing was executed"):
        load_genreg_pickle(p)
    with pytest.raises(ValueError, match="nothing was executed"):
        import_model(p, out)
    assert not marker.exists()
    assert not list(tmp_path.glob("model*"))   # nothing written


def test_every_global_refused_even_harmless(tmp_path):
    data = pickle.dumps({"controller": {"w1": np.zeros((2, 2))}})   # numpy reconstruct is a global too
    with pytest.raises(PickleRefused, match="numpy"):
        safe_load_bytes(data)


def test_persistent_id_refused():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "x" if obj == "secret" else None
    import io
    buf = io.BytesIO()
    P(buf).dump({"a": "secret"})
    with pytest.raises(PickleRefused, match="persistent id"):
        safe_load_bytes(buf.getvalue())


@pytest.mark.parametrize("data, match", [
    (b"", "not a readable pickle"),
    (b"\x80\x04\x95garbage", "not a readable pickle"),
    (pickle.dumps({"controller": {}})[:-5], "not a readable pickle"),     # truncated
    (pickle.dumps([1, 2]) + b"junk", "trailing bytes"),
    (pickle.dumps({"controller": {"w1": {1, 2}}}), "set"),             # builtins beyond plain data
    (pickle.dumps({"controller": {"w1": b"raw"}}), "bytes"),
    (pickle.dumps([1, 2]), "top level is a list"),
    (pickle.dumps({"x": 1}), "no 'controller'"),
])
def test_malformed_pickles_clean_errors(tmp_path, data, match):
    p = _write(tmp_path, "bad.pkl", data)
    with pytest.raises(ValueError, match=match):
        load_genreg_pickle(p)


def test_cyclic_and_shared_containers_refused():
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="self-referencing"):
        safe_load_bytes(pickle.dumps({"controller": a}))


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["controller"]["w1"][0].__setitem__(0, float("nan")), "NaN/inf"),
    (lambda d: d["controller"]["b1"].append(0.0), "inconsistent"),
    (lambda d: d["controller"]["w2"][1].pop(), "rectangular"),
    (lambda d: d["controller"].__setitem__("input_size", 99), "inconsistent"),
    (lambda d: d["controller"].pop("b2"), "no 'b2'"),
])
def test_bad_weights_one_line_errors_nothing_written(tmp_path, mutate, match):
    rng = np.random.default_rng(1)
    d = _genreg_dict(rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(3, 4)), rng.normal(size=3))
    mutate(d)
    p = _write(tmp_path, "g.pkl", pickle.dumps(d))
    with pytest.raises(ValueError, match=match) as e:
        import_model(p, tmp_path / "out")
    assert "\n" not in str(e.value)
    assert not list(tmp_path.glob("out*"))


def test_no_plain_pickle_load_in_importers():
    import edge_evo.importers.genreg_pickle as m
    src = open(m.__file__).read()
    plain = "pickle." + "load"   # spelled apart so the repository's own grep does not flag this test
    assert plain + "(" not in src and plain + "s(" not in src
    ops = {op.name for op, _, _ in pickletools.genops(pickle.dumps({"a": [1.0]}, protocol=4))}
    assert "STACK_GLOBAL" not in ops   # plain data needs no global: refusing all of them costs nothing


# ----------------------------------------------------------------------------- quantization, export, seeding
def test_gen600_int8_accuracy_onnx_and_seed(genreg_dir, mnist, tmp_path):
    import onnxruntime as ort
    from edge_evo.export import export
    from edge_evo.fixedpoint import quantize_input_u8
    Xtr, ytr, Xte, yte = mnist
    out = tmp_path / "g600"
    spec, genome, rep = import_model(genreg_dir / G600, out, calib=(Xtr[:10000], ytr[:10000], Xte, yte))
    assert genome.dtype == np.int8 and spec.dims == (784, 64, 10)
    assert rep["input"] == "uint8" and rep["pixel_fold"] == pytest.approx(128 / 127)
    assert rep["float_accuracy"] == pytest.approx(0.8120)
    assert rep["int8_accuracy"] >= 0.810, rep["int8_accuracy"]
    assert rep["agreement"] >= 0.98
    assert all(w["b_clipped"] == 0 for w in rep["saturation"]["weights"])
    m = load_model(out)
    assert m.mode == "int8" and m.spec == spec and np.array_equal(m.genome, genome)
    assert m.meta["imported_from"]["source_sha256"] == rep["source"]["source_sha256"]

    path = export(out, tmp_path / "g600.onnx", input="uint8")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits, label = sess.run(None, {"pixels": np.ascontiguousarray(Xte[:2000])})
    ref = forward(Population.from_flat(spec, genome), quantize_input_u8(Xte[:2000]), engine="numba")[0]
    assert np.array_equal(logits, ref) and np.array_equal(label, ref.argmax(1))

    # seeds a population: the imported genome plus mutated copies, evaluated like any evolved one
    pop = Population.from_flat(spec, np.stack([genome] * 4))
    assert pop.size == 4 and np.array_equal(pop.genome(3), genome)
    acc = (forward(pop, quantize_input_u8(Xte[:1000]))[:, :, :].argmax(2) == yte[:1000]).mean(1)
    assert np.all(acc == acc[0])


def test_quantize_without_calibration_and_bad_input():
    rng = np.random.default_rng(2)
    spec = MLPSpec((20, 8, 3), "tanh")
    g = (rng.normal(size=spec.n_params) * 0.5).astype(np.float32)
    s, q, rep = quantize_model(spec, g)
    assert q.dtype == np.int8 and rep["calib_n"] == 0 and len(rep["candidates"]) == 1
    assert all(w["W_clipped"] == 0 for w in rep["saturation"]["weights"])
    g[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        quantize_model(spec, g)
    with pytest.raises(ValueError, match="genome has"):
        quantize_model(spec, g[:-1])


# ----------------------------------------------------------------------------- ONNX
def _onnx_mlp(layers, acts, gemm=True, transB=True, softmax=False, extra=None, n_in=None):
    from onnx import helper, TensorProto, numpy_helper
    n_in = n_in or layers[0][0].shape[1]
    nodes, inits, cur = [], [], "x"
    nodes.append(helper.make_node("Flatten", [cur], ["xf"], axis=1))
    cur = "xf"
    for l, (W, b) in enumerate(layers):
        wn, bn, o = f"W{l}", f"b{l}", f"z{l}"
        if gemm:
            inits.append(numpy_helper.from_array((W if transB else W.T).astype(np.float32), wn))
            inits.append(numpy_helper.from_array(b.astype(np.float32), bn))
            nodes.append(helper.make_node("Gemm", [cur, wn, bn], [o], transB=int(transB)))
        else:
            inits.append(numpy_helper.from_array(W.T.astype(np.float32), wn))
            inits.append(numpy_helper.from_array(b.astype(np.float32), bn))
            nodes.append(helper.make_node("MatMul", [cur, wn], [o + "m"]))
            nodes.append(helper.make_node("Add", [o + "m", bn], [o]))
        cur = o
        if l < len(layers) - 1:
            nodes.append(helper.make_node(acts[l], [cur], [f"h{l}"]))
            cur = f"h{l}"
    if extra:
        nodes.append(helper.make_node(extra, [cur], ["e"]))
        cur = "e"
    if softmax:
        nodes.append(helper.make_node("Softmax", [cur], ["p"], axis=1))
        cur = "p"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, ["N", None])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _rand_layers(dims, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(size=o) * 0.1) for i, o in zip(dims[:-1], dims[1:])]


@pytest.mark.parametrize("act, gemm, transB, softmax", [
    ("Relu", True, True, False), ("Tanh", True, False, True), ("Sigmoid", False, True, False),
    ("Relu", False, True, True)])
def test_onnx_import_matches_onnxruntime(tmp_path, act, gemm, transB, softmax):
    import onnx
    import onnxruntime as ort
    dims = (16, 12, 8, 5)
    model = _onnx_mlp(_rand_layers(dims), [act, act], gemm, transB, softmax)
    p = tmp_path / "m.onnx"
    onnx.save(model, p)
    spec, genome, info = load_onnx_mlp(p)
    assert spec.dims == dims and spec.activation == act.lower()
    assert info["dropped_output_ops"] == (["Softmax"] if softmax else [])
    X = np.random.default_rng(5).normal(size=(64, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    got = forward(Population.from_flat(spec, genome), X)[0]
    if softmax:
        assert np.array_equal(got.argmax(1), ref.argmax(1))
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # and it quantizes: int8 labels mostly agree with the float ones
    s, q, rep = quantize_model(spec, genome, X, eval_X=X)
    assert rep["input"] == "float" and rep["agreement"] >= 0.85


@pytest.mark.parametrize("build, match", [
    (lambda: _onnx_mlp(_rand_layers((6, 5, 4, 3)), ["Relu", "Tanh"]), "mix activations"),
    (lambda: _onnx_mlp(_rand_layers((6, 5, 3)), ["Relu"], extra="Exp"), "unsupported operator Exp"),
    (lambda: _onnx_mlp(_rand_layers((6, 5, 3)), ["Relu"], n_in=7), "features"),
    (lambda: _onnx_mlp([(np.full((5, 6), np.nan), np.zeros(5)), (np.ones((3, 5)), np.zeros(3))], ["Relu"]),
     "NaN/inf"),
    (lambda: _onnx_mlp(_rand_layers((6, 5, 3)), ["Relu"], extra="Relu"), "ends with an activation"),
])
def test_onnx_bad_graphs(tmp_path, build, match):
    import onnx
    p = tmp_path / "bad.onnx"
    onnx.save(build(), p)
    with pytest.raises(ValueError, match=match) as e:
        import_model(p, tmp_path / "out")
    assert "\n" not in str(e.value)
    assert not list(tmp_path.glob("out*"))


def test_onnx_shape_mismatch_and_corrupt(tmp_path):
    import onnx
    layers = _rand_layers((6, 5, 3))
    layers[1] = (np.ones((3, 4)), np.zeros(3))   # layer 2 expects 4 inputs, layer 1 gives 5
    p = tmp_path / "m.onnx"
    onnx.save(_onnx_mlp(layers, ["Relu"]), p)
    with pytest.raises(ValueError, match="expects 4 inputs"):
        load_onnx_mlp(p)
    p.write_bytes(b"\x08\x07garbage" * 3)
    with pytest.raises(ValueError, match="(not a readable ONNX|no Gemm|data inputs)"):
        load_onnx_mlp(p)


# ----------------------------------------------------------------------------- CLI hook
def test_cli_import(tmp_path, capsys, shared_data):
    rng = np.random.default_rng(3)
    d = _genreg_dict(rng.normal(size=(8, 784)) * 0.1, rng.normal(size=8) * 0.1, rng.normal(size=(10, 8)),
                     rng.normal(size=10))
    src = _write(tmp_path, "small.pkl", pickle.dumps(d))
    p = argparse.ArgumentParser()
    add_import_arguments(p)
    args = p.parse_args([str(src), "-o", str(tmp_path / "m"), "--calib", "mnist", "--calib-size", "2000",
                         "--data", str(shared_data)])
    assert cli_import(args) == 0
    text = capsys.readouterr().out
    assert "float" in text and "int8" in text and "784-8-10" in text
    m = load_model(tmp_path / "m")
    assert m.mode == "int8" and m.meta["imported_from"]["format"] == "genreg-pickle"
