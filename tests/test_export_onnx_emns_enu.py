"""ONNX export of EMNS and ENU models (docs/export-onnx.md): the EMNS integer graph is bit-exact
with ``kernels.emns.forward_int8`` in onnxruntime; the EMNS float graph and the ENU step / sequence
graphs match the NumPy references within the tolerances below."""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import edge_evo  # noqa: E402
from edge_evo.export import build_emns_onnx, build_enu_onnx, export  # noqa: E402
from edge_evo.models.emns import EMNSPopulation, EMNSSpec, forward_float, quantize_inputs, to_int  # noqa: E402
from edge_evo.models.enu import ENUSpec, enu_run, enu_step  # noqa: E402
from edge_evo.strategies.emns import EMNS, fit  # noqa: E402

EMNS_FLOAT_ATOL = 1e-4      # float32 graph vs float64 forward_float (outputs in +-5); measured <= 8.4e-6
ENU_STEP_ATOL = 1e-5        # one step from the same state, float32 both sides; measured <= 5.8e-7
# Whole sequences: the per-step rounding differences (summation order of MatMul vs einsum) go round
# the recurrence and grow where the cell's dynamics are sensitive: typically ~1e-6, up to 3.8e-3 at
# T = 50 for some random genomes (docs/export-onnx.md). The sound check is step accuracy plus the
# Scan graph equal to the chained step graph; enu_run is compared on these genomes at 1e-3.
ENU_SEQ_ATOL = 1e-3

SPEC = EMNSSpec((2, 8, 4, 1), max_dims=(2, 10, 5, 1))


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def rand_genome(g, spread, spec=SPEC):
    """Float genome with the initial structure (agg linear, act tanh, gain 1) plus noise: spread 0.5-1
    keeps every layer's outputs varied (larger spreads saturate the +-5 clips)."""
    v = g.normal(0, 0.3 * spread, spec.n_params)
    for row in spec.layout():
        ni, no, oa, oc, ow, ob, og, _, _ = (int(x) for x in row)
        v[oa:oa + 5 * no:5] += 1
        v[oc:oc + 5 * no:5] += 1
        v[ow:ow + ni * no] = g.normal(0, spread, ni * no)
        v[og:og + ni * no] += 1
    return np.clip(v, -10, 10)


def rand_masks(g, spec=SPEC):
    """A grown neuron in hidden layer 2 (wired in), one hidden neuron switched off, dropped synapses."""
    nm, cm = spec.initial_masks()
    nm, cm = nm.copy(), cm.copy()
    lay = spec.layout()
    ni1, coff1, coff2 = int(lay[1, 0]), int(lay[1, 7]), int(lay[2, 7])
    nm[int(lay[1, 8]) + 4] = 1
    cm[coff1 + 4 * ni1:coff1 + 5 * ni1] = 1
    cm[coff2 + 4] = 1
    nm[2] = 0
    cm[g.random(spec.n_conn) < 0.15] = 0
    return nm, cm


def kernel_int(spec, vq, nm, cm, Xq):
    s = EMNS(spec, "select", mode="int8")
    pop = EMNSPopulation(vq[None], None, nm[None], cm[None], s.luts(vq))
    return np.rint(s.forward(pop, Xq)[0] * 16).astype(np.int8)


# ----------------------------------------------------------------------------- EMNS
@pytest.mark.parametrize("spread", [0.5, 1.0, 3.0])
def test_emns_integer_bit_exact_random(spread):
    g = np.random.default_rng(int(spread * 10))
    v = rand_genome(g, spread)
    vq, _ = to_int(v, np.zeros_like(v))
    nm, cm = rand_masks(g)
    X = g.integers(-128, 128, (400, 2)).astype(np.int8)    # the whole int8 range, -128 included
    m = build_emns_onnx(SPEC, vq, nm, cm)
    y, = session(m).run(None, {"x": X})
    ref = kernel_int(SPEC, vq, nm, cm, X)
    assert y.dtype == np.int8 and y.shape == (400, 1)
    assert np.array_equal(y, ref)
    if spread < 2:
        assert np.unique(ref).size >= 10                    # a real function, not a constant clip


def test_emns_integer_extreme_values():
    """Values at the +-10 clip: synapses saturate at +-20480, the int64 aggregation terms are largest."""
    g = np.random.default_rng(7)
    vq = np.where(g.random(SPEC.n_params) < 0.5, -20480, 20480).astype(np.int16)
    nm, cm = rand_masks(g)
    X = g.integers(-128, 128, (64, 2)).astype(np.int8)
    y, = session(build_emns_onnx(SPEC, vq, nm, cm)).run(None, {"x": X})
    assert np.array_equal(y, kernel_int(SPEC, vq, nm, cm, X))


def test_emns_float_matches_forward_float():
    g = np.random.default_rng(3)
    worst = 0.0
    for spread in (0.5, 1.0):
        v = rand_genome(g, spread).astype(np.float32)
        nm, cm = rand_masks(g)
        X = (2 * g.standard_normal((300, 2))).astype(np.float32)
        y, = session(build_emns_onnx(SPEC, v, nm, cm)).run(None, {"x": X})
        ref = forward_float(SPEC, v, nm, cm, X)[0]
        assert y.dtype == np.float32 and y.shape == ref.shape
        assert np.ptp(ref) > 0.5
        worst = max(worst, float(np.abs(y - ref).max()))
    assert worst <= EMNS_FLOAT_ATOL


def test_emns_float_graph_of_int16_values_dequantizes():
    g = np.random.default_rng(4)
    vq, _ = to_int(rand_genome(g, 0.7), np.zeros(SPEC.n_params))
    X = g.standard_normal((50, 2)).astype(np.float32)
    y, = session(build_emns_onnx(SPEC, vq, integer=False)).run(None, {"x": X})
    nm, cm = SPEC.initial_masks()
    ref = forward_float(SPEC, vq.astype(np.float64) / 2048, nm, cm, X)[0]
    assert np.abs(y - ref).max() <= EMNS_FLOAT_ATOL


def test_emns_from_short_runs(tmp_path):
    """Genomes of real EMNS runs (int8 with growth, float32): export() dispatch, both graphs."""
    spec = EMNSSpec((2, 4, 1), max_dims=(2, 6, 1), max_connections=20)
    g = np.random.default_rng(1)
    X = g.standard_normal((48, 2))
    Y = (X[:, :1] + X[:, 1:] > 0).astype(np.float64)
    s = EMNS(spec, "population", mode="int8", grow_patience=2, mu0=0.1)
    st = fit(s, X, Y, steps=12, seed=0)
    pop = s.parent(st, best=True)
    Xq = quantize_inputs(2 * g.standard_normal((200, 2)))
    path = export((spec, pop), tmp_path / "emns_int")
    assert path.suffix == ".onnx"
    y, = session(onnx.load(path)).run(None, {"x": Xq})
    assert np.array_equal(y.astype(np.float64) / 16, s.forward(pop, Xq)[0])
    sf = EMNS(spec, "population", mode="float32", grow_patience=2, mu0=0.1)
    stf = fit(sf, X, Y, steps=12, seed=0)
    pf = sf.parent(stf, best=True)
    Xf = g.standard_normal((200, 2)).astype(np.float32)
    path = export((spec, pf.values[0], pf.nmask[0], pf.cmask[0]), tmp_path / "emns_f.onnx")
    yf, = session(onnx.load(path)).run(None, {"x": Xf})
    assert np.abs(yf - sf.forward(pf, Xf)[0]).max() <= EMNS_FLOAT_ATOL


def test_emns_metadata_checker_roundtrip(tmp_path):
    g = np.random.default_rng(5)
    vq, _ = to_int(rand_genome(g, 0.7), np.zeros(SPEC.n_params))
    nm, cm = rand_masks(g)
    path = export((SPEC, vq, nm, cm), tmp_path / "m.onnx", metadata={"task": "demo"})
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["numerics_contract"] == edge_evo.NUMERICS_CONTRACT
    assert meta["edge_evo_version"] == edge_evo.__version__
    assert EMNSSpec.from_dict(json.loads(meta["formats"])) == SPEC
    assert meta["graph"] == "integer" and meta["model"] == "emns" and meta["y_frac"] == "4" and meta["task"] == "demo"
    assert json.loads(meta["active_dims"]) == list(SPEC.active_dims(nm))
    assert m.opset_import[0].version == 18
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # the hash covers values and masks
    cm2 = cm.copy()
    cm2[np.flatnonzero(cm)[0]] = 0
    other = build_emns_onnx(SPEC, vq, nm, cm2)
    assert {p.key: p.value for p in other.metadata_props}["model_hash"] != meta["model_hash"]
    X = g.integers(-128, 128, (5, 2)).astype(np.int8)
    assert np.array_equal(session(m).run(None, {"x": X})[0], kernel_int(SPEC, vq, nm, cm, X))


def test_emns_errors():
    vq = np.zeros(SPEC.n_params, np.int16)
    with pytest.raises(ValueError, match="int16 Q11"):
        build_emns_onnx(SPEC, vq.astype(np.float32), integer=True)
    with pytest.raises(ValueError, match="parameters"):
        build_emns_onnx(SPEC, vq[:-1])
    with pytest.raises(TypeError, match="int16"):
        build_emns_onnx(SPEC, vq.astype(np.int32))
    with pytest.raises(ValueError, match="cmask must have shape"):
        build_emns_onnx(SPEC, vq, cmask=np.ones(3, np.uint8))
    with pytest.raises(ValueError, match="'int8'"):
        build_emns_onnx(SPEC, vq, input="uint8")
    with pytest.raises(ValueError, match="opset"):
        build_emns_onnx(SPEC, vq, opset=12)
    with pytest.raises(ValueError, match="reserved"):
        build_emns_onnx(SPEC, vq, metadata={"model_hash": "x"})
    with pytest.raises(ValueError, match="supported: "):
        export((SPEC, vq), "/tmp/never.onnx", graph="step")


# ----------------------------------------------------------------------------- ENU
def enu_case(seed=0, spec=ENUSpec(3, 8, 2)):
    g = np.random.default_rng(seed)
    return spec, (0.5 * g.standard_normal(spec.n_params)).astype(np.float32), g


@pytest.mark.parametrize("seed", [0, 1])
def test_enu_step_matches(seed):
    spec, gen, g = enu_case(seed)
    prm = spec.unflatten(gen[None])
    s = session(build_enu_onnx(spec, gen, graph="step"))
    for B in (1, 9):                                       # dynamic batch
        x = g.standard_normal((B, spec.n_in)).astype(np.float32)
        h = (0.5 * g.standard_normal((B, spec.n_hidden))).astype(np.float32)
        yp = g.random((B, spec.n_out)).astype(np.float32)
        y, h2 = s.run(None, {"x": x, "h": h, "y_prev": yp})
        ry, rh = enu_step(spec, prm, x[None], yp[None], h[None])
        assert y.shape == (B, spec.n_out) and h2.shape == (B, spec.n_hidden)
        assert np.abs(y - ry[0]).max() <= ENU_STEP_ATOL and np.abs(h2 - rh[0]).max() <= ENU_STEP_ATOL


@pytest.mark.parametrize("seed", [0, 1])
def test_enu_sequence_scan_matches_enu_run(seed, tmp_path):
    spec, gen, g = enu_case(seed)
    path = export((spec, gen), tmp_path / "enu_seq", graph="sequence")
    s = session(onnx.load(path))
    for T, B in ((50, 6), (3, 1)):                         # dynamic time and batch
        xs = g.standard_normal((T, B, spec.n_in)).astype(np.float32)
        ys, hf = s.run(None, {"xs": xs})
        rys, rhf = enu_run(spec, gen[None], xs[:, None])
        assert ys.shape == (T, B, spec.n_out) and hf.shape == (B, spec.n_hidden)
        assert np.abs(ys - rys[:, 0]).max() <= ENU_SEQ_ATOL and np.abs(hf - rhf[0]).max() <= ENU_SEQ_ATOL
        assert T < 50 or ys.std() > 0.05                  # the long run is not clipped flat


def test_enu_step_chain_equals_sequence():
    """Streaming the step graph T times reproduces the sequence graph (same cell)."""
    spec, gen, g = enu_case(2)
    step, seq = session(build_enu_onnx(spec, gen)), session(build_enu_onnx(spec, gen, graph="sequence"))
    xs = g.standard_normal((10, 4, spec.n_in)).astype(np.float32)
    h = np.zeros((4, spec.n_hidden), np.float32)
    y = np.zeros((4, spec.n_out), np.float32)
    out = []
    for t in range(10):
        y, h = step.run(None, {"x": xs[t], "h": h, "y_prev": y})
        out.append(y)
    ys, hf = seq.run(None, {"xs": xs})
    assert np.allclose(np.stack(out), ys, atol=1e-6) and np.allclose(h, hf, atol=1e-6)


def test_enu_metadata_and_errors(tmp_path):
    spec, gen, _ = enu_case()
    m = onnx.load(export((spec, gen), tmp_path / "enu.onnx", metadata={"env": "pole"}))
    onnx.checker.check_model(m, full_check=True)
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["model"] == "enu" and meta["graph"] == "step" and meta["env"] == "pole"
    assert meta["numerics_contract"] == edge_evo.NUMERICS_CONTRACT and len(meta["model_hash"]) == 64
    assert json.loads(meta["formats"])["n_hidden"] == spec.n_hidden
    assert [i.name for i in m.graph.input] == ["x", "h", "y_prev"]
    assert [o.name for o in m.graph.output] == ["y", "h_out"]
    with pytest.raises(ValueError, match="'step', 'sequence'"):
        build_enu_onnx(spec, gen, graph="scan")
    with pytest.raises(TypeError, match="float"):
        build_enu_onnx(spec, gen.astype(np.int8))
    with pytest.raises(ValueError, match="needs"):
        build_enu_onnx(spec, gen[:-1])
    with pytest.raises(ValueError, match="float32 only"):
        export((spec, gen), tmp_path / "x.onnx", integer=True)
    with pytest.raises(ValueError, match="supported: "):
        export((spec, gen), tmp_path / "x.onnx", input="uint8")
    with pytest.raises(TypeError, match="to='onnx' only"):
        export((spec, gen), tmp_path / "x.h", to="c")


def test_docs_example(tmp_path, monkeypatch):
    """The EMNS / ENU Python block of docs/export-onnx.md runs as written (in a temporary folder)."""
    import pathlib
    import re
    doc = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "export-onnx.md").read_text()
    code = re.findall(r"```python\n(.*?)```", doc, re.S)[1]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/export-onnx.md", "exec"), {})
    assert (tmp_path / "emns.onnx").is_file() and (tmp_path / "enu_seq.onnx").is_file()
