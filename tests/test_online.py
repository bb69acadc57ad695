"""Online adaptation: parsing, determinism, drift, checkpoints, crash safety, sockets, CLI."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_evo import io as eio
from edge_evo.models.mlp import MLPSpec
from edge_evo.online import AdaptConfig, BadSample, OnlineAdapter, SampleParser
from edge_evo.online.runner import AdaptRunner
from edge_evo.strategies.openes import OpenES, OpenESParams

ROOT = Path(__file__).resolve().parents[1]
N_IN, N_OUT = 8, 3


def make_stream(n, seed=0, drift_at=None):
    """Linearly separable 8 -> 3 classes; labels permuted after ``drift_at``."""
    r = np.random.default_rng(seed)       # test data only; the library never uses np.random
    A = r.normal(size=(N_OUT, N_IN))
    X = r.uniform(-0.9, 0.9, size=(n, N_IN)).round(3)
    y = np.argmax(X @ A.T, axis=1)
    if drift_at is not None:
        y[drift_at:] = (y[drift_at:] + 1) % N_OUT
    return X, y


def write_csv(path, X, y):
    with open(path, "w") as f:
        for x, t in zip(X, y):
            f.write(",".join(f"{v:g}" for v in x) + f",{int(t)}\n")


def cfg(**kw):
    base = dict(learner="openes", population=4, window=16, drift_window=60, seed=3)
    base.update(kw)
    return AdaptConfig(**base)


@pytest.fixture(scope="module")
def spec():
    return MLPSpec((N_IN, 8, N_OUT))


# ------------------------------------------------------------------------- parsing
def test_parser_formats_and_bad_records():
    p = SampleParser(3, 2, regression=False, input_scale="float")
    x, y = p.parse("0.5,-0.25,1,1\n")
    assert x.dtype == np.int8 and list(x) == [64, -32, 127] and y == 1
    assert p.parse('{"x": [0, 0, 0]}')[1] is None
    assert p.parse("[0.1, 0.2, 0.3, 0]")[1] == 0
    for bad, why in [("1,2", "fields"), ("1,2,x,0", "non-numeric"), ("nan,1,2,0", "NaN"),
                     ("1,2,3,7", "class index"), ("1,2,3,0.5", "class index"), ('{"y": 1}', '"x"'),
                     ("{bad json", "JSON"), ("1,2,3,inf", "NaN or inf label")]:
        with pytest.raises(BadSample, match=why):
            p.parse(bad)
    with pytest.raises(BadSample, match="0..255"):
        SampleParser(2, 2, False, "u8").parse("256,0,1")


def test_bad_records_are_counted_and_never_reach_the_model(spec, caplog):
    X, y = make_stream(40)
    a = OnlineAdapter(spec, None, cfg())
    b = OnlineAdapter(spec, None, cfg())
    recs = [",".join(map(str, x)) + f",{t}" for x, t in zip(X, y)]
    noisy = []
    for i, r in enumerate(recs):
        noisy.append(r)
        if i % 5 == 0:
            noisy += ["1,2,3", "a,b,c,d,e,f,g,h,0", ",".join(["nan"] * 9), "", "\x00\xff"]
    a.run(recs)
    with caplog.at_level("WARNING"):
        b.run(noisy)
    assert b.counters["bad"] == 8 * 4 and b.counters["seen"] == 40
    assert np.array_equal(a.deployed, b.deployed) and a.state.generation == b.state.generation > 0
    for k, v in a.state.arrays.items():
        assert np.array_equal(v, b.state.arrays[k]), k
    assert "skipped malformed record" in caplog.text


# ------------------------------------------------------------------------- learners
def test_openes_learner_equals_strategy_tell(spec):
    a = OnlineAdapter(spec, None, cfg(sigma=0.05))
    es = OpenES(spec, OpenESParams(population=4, sigma=0.05, lr=0.5, momentum=0.5, shaping="centered"))
    st = a.state
    pop = a.learner.candidates(st, 1 << 16)
    assert np.array_equal(pop.to_flat(), es.ask(st).to_flat())
    scores = np.array([[3, 1], [0, 0], [5, -2], [1, 1]])
    mine, _ = a.learner.update(st, pop, scores)
    ref = es.tell(st, pop, scores)
    for k in ("mean", "momentum", "best"):
        assert np.array_equal(mine.arrays[k], ref.arrays[k]), k


@pytest.mark.parametrize("learner", ["openes", "elitist"])
def test_same_stream_same_seed_same_hash_and_learning(spec, learner):
    X, y = make_stream(600)
    pairs = list(zip(X, y))
    h = []
    for _ in range(2):
        a = OnlineAdapter(spec, None, cfg(learner=learner))
        a.run(pairs)
        h.append(a.state_hash())
    assert h[0] == h[1]
    other = OnlineAdapter(spec, None, cfg(learner=learner, seed=4))
    other.run(pairs)
    assert other.state_hash() != h[0]
    # it learns: the last 200 prequential predictions beat chance (1/3) clearly
    assert a.quality() > 0.5, a.summary()
    assert a.latency_stats()["median_us"] > 0


def test_drift_is_detected_and_recovered(spec):
    X, y = make_stream(1400, drift_at=700)
    a = OnlineAdapter(spec, None, cfg(sigma=0.05))
    preds = []
    a.run(list(zip(X, y)), on_prediction=lambda i, p: preds.append(p))
    ev = [e for e in a.events if e["event"] == "drift"]
    assert ev and 700 < ev[0]["sample"] < 900, list(a.events)
    acc = (np.array(preds) == y)
    assert acc[-200:].mean() > acc[700:760].mean() + 0.2


def test_regression_line(spec):
    r = np.random.default_rng(1)
    x = r.uniform(-1, 1, 800)
    yy = 2 * x + 3
    s = MLPSpec((1, 4, 1), w_frac=4, b_frac=4)
    a = OnlineAdapter(s, None, cfg(drift_window=50, sigma=0.1))
    assert a.regression
    a.run([(np.array([v]), t) for v, t in zip(x, yy)])
    assert -a.quality() < 0.5, a.summary()      # mean |error| over the last 50


@pytest.mark.parametrize("learner", ["openes", "elitist"])
def test_trainable_last_freezes_hidden_and_cache_is_exact(spec, learner, tmp_path):
    """trainable='last': hidden tensors never move; the cached-hidden fast path equals the full
    forward bit for bit (same state hash); a checkpoint resumes identically (cache rebuilt)."""
    X, y = make_stream(500, drift_at=250)
    pairs = list(zip(X, y))
    c = cfg(learner=learner, trainable="last", sigma=0.2, window=32)
    a = OnlineAdapter(spec, None, c)
    start = a.deployed.copy()
    a.run(pairs)
    off = spec.offsets()
    assert np.array_equal(a.deployed[:off["W2"]], start[:off["W2"]])
    assert not np.array_equal(a.deployed[off["W2"]:], start[off["W2"]:])
    slow = OnlineAdapter(spec, None, c)
    slow.frozen_hidden = False              # every candidate through models.forward instead
    slow.run(pairs)
    assert slow.state_hash() == a.state_hash()
    half = OnlineAdapter(spec, None, c)
    half.run(pairs[:230])
    half.save(tmp_path / "ck")
    back, _ = OnlineAdapter.load(tmp_path / "ck")
    back.run(pairs[230:])
    assert back.state_hash() == a.state_hash()
    with pytest.raises(ValueError, match="trainable"):
        AdaptConfig(trainable="first")


def test_adapt_after_drift_keeps_the_model_until_a_drift(spec):
    X, y = make_stream(1600, drift_at=1000)
    pre = OnlineAdapter(spec, None, cfg(sigma=0.05))
    pre.run(list(zip(X[:700], y[:700])))           # a trained model to deploy
    a = OnlineAdapter(spec, pre.deployed, cfg(adapt="after_drift", sigma=0.05))
    a.run(list(zip(X[700:1000], y[700:1000])))
    assert a.counters["updates"] == 0 and np.array_equal(a.deployed, pre.deployed) and not a.counters["drifts"]
    a.run(list(zip(X[1000:], y[1000:])))
    assert a.counters["drifts"] >= 1 and a.counters["updates"] > 0, a.summary()
    with pytest.raises(ValueError, match="adapt"):
        AdaptConfig(adapt="never")


# ------------------------------------------------------------------------- checkpoints
def test_checkpoint_roundtrip_continues_identically(spec, tmp_path):
    X, y = make_stream(300)
    pairs = list(zip(X, y))
    full = OnlineAdapter(spec, None, cfg())
    full.run(pairs)
    half = OnlineAdapter(spec, None, cfg())
    half.run(pairs[:140])
    half.save(tmp_path / "ck")
    back, _ = OnlineAdapter.load(tmp_path / "ck")
    back.run(pairs[140:])
    assert back.state_hash() == full.state_hash()


def test_failed_checkpoint_write_keeps_previous(spec, tmp_path, monkeypatch, caplog):
    X, y = make_stream(100)
    src = tmp_path / "s.csv"
    write_csv(src, X, y)
    a = OnlineAdapter(spec, None, cfg())
    r = AdaptRunner(a, tmp_path / "run", str(src), max_samples=50)
    r.run(install_signals=False)
    good = eio.load_checkpoint(tmp_path / "run" / "checkpoint")[1]["state_sha256"]

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(eio, "atomic_write_bytes", disk_full)
    r2 = AdaptRunner(a, tmp_path / "run", str(src), max_samples=50, start_position=r.position)
    with caplog.at_level("ERROR"):
        res = r2.run(install_signals=False)
    assert res["checkpoint_errors"] == 1 and "No space left" in caplog.text
    assert res["seen"] == 100
    monkeypatch.undo()
    assert eio.load_checkpoint(tmp_path / "run" / "checkpoint")[1]["state_sha256"] == good
    events = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    assert any(e.get("event") == "checkpoint_error" for e in events)


# ------------------------------------------------------------------------- subprocess: kill -9, SIGTERM
def _cli(*args):
    return [sys.executable, "-m", "edge_evo", "-q", "adapt", *args]


def _env(**kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **kw)
    return env


@pytest.mark.slow
def test_sigkill_ten_times_then_resume_matches_uninterrupted(spec, tmp_path):
    X, y = make_stream(4000, seed=2)
    src = tmp_path / "s.csv"
    write_csv(src, X, y)
    c = cfg(population=2, window=8)
    args = ["8-8-3", "--source", str(src), "--out", str(tmp_path / "run"), "--predictions", "none",
            "--population", "2", "--window", "8", "--drift-window", "60", "--seed", "3", "--checkpoint-every", "97"]
    ref = OnlineAdapter(MLPSpec((8, 8, 3)), None, c)
    ref.run(open(src).read().splitlines())
    seen = []
    js = tmp_path / "run" / "checkpoint.json"
    for i in range(10):
        before = js.stat().st_mtime_ns if js.exists() else 0
        p = subprocess.Popen(_cli(*args), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60          # kill only once this run has committed a new checkpoint
        while time.time() < deadline and p.poll() is None and (not js.exists() or js.stat().st_mtime_ns == before):
            time.sleep(0.01)
        time.sleep(0.013 * i)                # then at a varying instant, often mid-write
        p.send_signal(signal.SIGKILL)
        p.wait()
        a, extra = OnlineAdapter.load(tmp_path / "run" / "checkpoint")   # every checkpoint left loads
        seen.append(a.counters["seen"])
    assert seen == sorted(seen) and seen[-1] > seen[0], seen
    done = subprocess.run(_cli(*args), env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    a, extra = OnlineAdapter.load(tmp_path / "run" / "checkpoint")
    assert a.counters["seen"] == 4000 and a.state_hash() == ref.state_hash()


def test_sigterm_writes_final_checkpoint(tmp_path):
    fifo_src = tmp_path / "grow.csv"
    X, y = make_stream(50)
    write_csv(fifo_src, X, y)
    out = tmp_path / "run"
    p = subprocess.Popen(_cli("8-8-3", "--source", str(fifo_src), "--follow", "--out", str(out),
                              "--predictions", str(tmp_path / "pred.txt"), "--checkpoint-every", "100000"),
                         env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        pred = tmp_path / "pred.txt"
        if pred.exists() and len(pred.read_text().splitlines()) >= 50:
            break
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    a, extra = OnlineAdapter.load(out / "checkpoint")
    assert a.counters["seen"] == 50 and extra["position"] == fifo_src.stat().st_size


# ------------------------------------------------------------------------- sockets
def test_tcp_source_reconnects_after_drop(spec):
    from edge_evo.online.sources import Stop, tcp_source
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    port = srv.getsockname()[1]

    def producer():
        for part in (b"1,2\n3,4\n", b"5,6\n"):
            c, _ = srv.accept()
            c.sendall(part)
            c.close()                         # drop the connection
    t = threading.Thread(target=producer, daemon=True)
    t.start()
    stop = Stop()
    got = []
    for line, _ in tcp_source(f"tcp://127.0.0.1:{port}", stop):
        got.append(line)
        if len(got) == 3:
            stop.requested = True
            break
    srv.close()
    assert got == [b"1,2", b"3,4", b"5,6"]


def test_udp_source_and_sink():
    from edge_evo.online.sources import Sink, Stop, udp_source
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    stop = Stop()
    it = udp_source(f"udp://127.0.0.1:{port}", stop)
    got = []

    def send():
        time.sleep(0.3)
        sink = Sink(f"udp://127.0.0.1:{port}")
        sink.write(0, 7)
        sink.write(1, 0.5)
        sink.close()
    threading.Thread(target=send, daemon=True).start()
    for line, _ in it:
        got.append(line)
        if len(got) == 2:
            break
    assert got == [b"0,7", b"1,0.5"]


# ------------------------------------------------------------------------- portability
@pytest.mark.slow
def test_numba_disabled_gives_identical_hash(tmp_path):
    """NUMBA_DISABLE_JIT=1 (pure Python kernels, e.g. a board without LLVM) -> same bits."""
    X, y = make_stream(40)
    src = tmp_path / "s.csv"
    write_csv(src, X, y)
    code = ("import sys; from edge_evo.online import OnlineAdapter, AdaptConfig; from edge_evo.models.mlp import MLPSpec;"
            "a = OnlineAdapter(MLPSpec((8, 4, 3)), None, AdaptConfig(population=2, window=4, learner=sys.argv[2]));"
            "a.run(open(sys.argv[1]).read().splitlines()); print(a.state_hash())")
    out = {}
    for learner in ("openes", "elitist"):
        for jit in ("0", "1"):
            r = subprocess.run([sys.executable, "-c", code, str(src), learner], env=_env(NUMBA_DISABLE_JIT=jit),
                               capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr[-2000:]
            out[learner, jit] = r.stdout.strip()
        assert out[learner, "0"] == out[learner, "1"]


def test_arm64_check_script():
    """targets/pi/check_arm64.sh: adapt under qemu-aarch64 in a Debian arm64 rootfs, same final hash."""
    root = os.environ.get("EDGE_EVO_ARM64_ROOT")
    if not root or not Path(root, "usr/bin/python3").exists():
        pytest.skip("no arm64 rootfs: build one with targets/pi/check_arm64.sh --build ROOT and set EDGE_EVO_ARM64_ROOT")
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        pytest.skip("chroot into the arm64 rootfs needs root")
    r = subprocess.run(["bash", str(ROOT / "targets/pi/check_arm64.sh"), "--root", root, "--check"],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "MATCH" in r.stdout


# ------------------------------------------------------------------------- CLI
def test_cli_adapt_stdin_and_model_file(tmp_path, spec):
    g = OnlineAdapter(spec, None, cfg()).deployed
    eio.save_model(tmp_path / "m", spec, g, "int8")
    X, y = make_stream(30)
    text = "".join(",".join(f"{v:g}" for v in x) + f",{t}\n" for x, t in zip(X, y)) + "oops\n" + \
        "".join(",".join(f"{v:g}" for v in x) + "\n" for x in X[:5])
    r = subprocess.run(_cli(str(tmp_path / "m"), "--source", "-", "--out", str(tmp_path / "run")), input=text,
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 35 and lines[-1].startswith("34,")
    assert "bad=1" in r.stderr
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    bad = subprocess.run(_cli(str(tmp_path / "nope"), "--source", "-", "--out", str(tmp_path / "r2")), input="",
                         env=_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "error:" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
