"""Datasets: strict IDX parsing, md5-checked lookup (path / env / cache / download), small tasks."""
from __future__ import annotations

import functools
import gzip
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from edge_evo.tasks import (TASKS, get_task, load_digits, load_mnist, make_linear, read_idx,
                            render_alphabet, shared_data_dir, write_idx, parse_idx)
from edge_evo.tasks import datasets as ds

DATA = shared_data_dir()
needs_data = pytest.mark.skipif(DATA is None or not (DATA / "mnist").is_dir(),
                                reason="../shared/data/mnist not present")
TEST_FILES = ds.FILES["test"]


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No EDGE_EVO_DATA, an empty cache under tmp_path."""
    monkeypatch.delenv("EDGE_EVO_DATA", raising=False)
    monkeypatch.setenv("EDGE_EVO_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _copy_test_split(dst: Path, kind="mnist") -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for n in TEST_FILES:
        shutil.copy(DATA / kind / n, dst / n)
        os.chmod(dst / n, 0o644)
    return dst


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """Serve a folder on 127.0.0.1 (ephemeral port); yields (root folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


# ------------------------------------------------------------------ IDX
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(p, a)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype).newbyteorder("=") and b.shape == (2, 3, 5)
    np.testing.assert_array_equal(a, b)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == gz


def test_idx_header_is_big_endian():
    data = bytes([0, 0, 0x0B, 1]) + (2).to_bytes(4, "big") + bytes([1, 2, 0xFF, 0xFE])
    np.testing.assert_array_equal(parse_idx(data), [258, -2])


@pytest.mark.parametrize("data, msg", [
    (b"\x00\x00", "shorter than the 4-byte"),
    (b"\x01\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x05", "bad IDX magic"),
    (b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x05", "unknown IDX dtype code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x02" + (1).to_bytes(4, "big"), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02", "truncated IDX payload"),
    (b"\x00\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x01\x02", "unexpected bytes"),
])
def test_idx_errors(tmp_path, data, msg):
    p = tmp_path / "bad.idx"
    p.write_bytes(data)
    with pytest.raises(ValueError, match=msg) as e:
        read_idx(p)
    assert str(p) in str(e.value) and "re-download" in str(e.value) and "\n" not in str(e.value)


def test_idx_broken_gzip(tmp_path):
    good = gzip.compress(b"\x00\x00\x08\x01" + (1000).to_bytes(4, "big") + bytes(range(250)) * 4)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"gzip stream is broken.*re-download"):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[-6] ^= 0xFF            # inside the CRC32 / length trailer
    bad = tmp_path / "crc.gz"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="gzip stream is broken"):
        read_idx(bad)


def test_idx_missing_file_and_ndim(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_idx(tmp_path / "nope.gz")
    write_idx(tmp_path / "x.idx", np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match="expected a 1-d IDX array"):
        read_idx(tmp_path / "x.idx", expect_ndim=1)


# ------------------------------------------------------------------ MNIST lookup
@needs_data
def test_load_mnist_train_from_path(isolated):
    X, y = load_mnist("mnist", "train", path=DATA / "mnist", download=False)
    assert X.shape == (60000, 784) and X.dtype == np.uint8 and y.shape == (60000,) and y.dtype == np.uint8
    np.testing.assert_array_equal(y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(np.bincount(y)[:3], [5923, 6742, 5958])
    assert not X.flags.writeable and not y.flags.writeable
    assert not (isolated / "cache").exists()   # a local path never touches the cache


@needs_data
def test_load_fashion_from_root_and_env(isolated, monkeypatch):
    X, y = load_mnist("fashion-mnist", "test", path=DATA, download=False)   # <path>/<kind>/ lookup
    assert X.shape == (10000, 784) and int(y.max()) == 9
    monkeypatch.setenv("EDGE_EVO_DATA", str(DATA))
    X2, y2 = load_mnist("fashion-mnist", "test", download=False)
    np.testing.assert_array_equal(X, X2)
    Xm, _ = load_mnist("mnist", "test", download=False)
    assert not np.array_equal(Xm, X)


@needs_data
def test_env_folder_with_files_directly(isolated, monkeypatch):
    flat = _copy_test_split(isolated / "flat")
    monkeypatch.setenv("EDGE_EVO_DATA", str(flat))
    X, y = load_mnist("mnist", "test", download=False)
    assert X.shape == (10000, 784)
    # the same folder is not taken for Fashion-MNIST: md5 tells them apart, lookup goes on
    with pytest.raises(ValueError, match="download=False"):
        load_mnist("fashion-mnist", "test", download=False)
    with pytest.raises(ValueError, match="it is the mnist file"):
        load_mnist("fashion-mnist", "test", path=flat, download=False)


@needs_data
def test_cache_lookup(isolated):
    _copy_test_split(isolated / "cache" / "mnist")
    X, y = load_mnist("mnist", "test", download=False)
    assert X.shape == (10000, 784) and y[0] == 7


def test_nothing_found_without_download(isolated):
    with pytest.raises(ValueError, match="not found.*download=False"):
        load_mnist("mnist", "test", download=False)
    with pytest.raises(ValueError, match="no mnist files"):
        load_mnist("mnist", "test", path=isolated, download=False)


def test_bad_kind_split():
    with pytest.raises(ValueError, match="unknown dataset kind"):
        load_mnist("emnist")
    with pytest.raises(ValueError, match="unknown split"):
        load_mnist("mnist", "val")


@needs_data
def test_md5_mismatch_local(isolated):
    d = _copy_test_split(isolated / "local")
    lab = d / TEST_FILES[1]
    raw = bytearray(gzip.decompress(lab.read_bytes()))
    raw[8] = (raw[8] + 1) % 10                     # a different, still valid, label
    lab.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match=r"md5 .* != .*re-download"):
        load_mnist("mnist", "test", path=d, download=False)
    X, y = load_mnist("mnist", "test", path=d, download=False, verify=False)   # own files
    assert y[0] == 8


def _write_set(d: Path, images, labels):
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / TEST_FILES[0], images)
    write_idx(d / TEST_FILES[1], labels)
    return d


def test_label_range_count_and_shape_errors(isolated):
    img = np.zeros((4, 28, 28), np.uint8)
    d = _write_set(isolated / "a", img, np.array([0, 1, 2, 10], np.uint8))
    with pytest.raises(ValueError, match="label 10 out of range"):
        load_mnist("mnist", "test", path=d, verify=False)
    d = _write_set(isolated / "b", img, np.array([0, 1, 2], np.uint8))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        load_mnist("mnist", "test", path=d, verify=False)
    d = _write_set(isolated / "c", np.zeros((4, 784), np.uint8), np.array([0, 1, 2, 3], np.uint8))
    with pytest.raises(ValueError, match="expected a 3-d"):
        load_mnist("mnist", "test", path=d, verify=False)
    d = _write_set(isolated / "d", img.astype(np.float32), np.array([0, 1, 2, 3], np.uint8))
    with pytest.raises(ValueError, match="must be uint8"):
        load_mnist("mnist", "test", path=d, verify=False)


# ------------------------------------------------------------------ download
@needs_data
def test_download_into_cache(isolated, http_root):
    root, url = http_root
    _copy_test_split(root)
    X, y = load_mnist("mnist", "test", base_url=url)
    assert X.shape == (10000, 784) and y[0] == 7
    cache = isolated / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(TEST_FILES)   # no .part left behind
    for n in TEST_FILES:
        assert ds.md5_file(cache / n) == ds.MD5["mnist"][n]
    # second call: served from the cache even with the server's files gone
    for p in root.iterdir():
        p.unlink()
    X2, _ = load_mnist("mnist", "test", base_url=url)
    np.testing.assert_array_equal(X, X2)


@needs_data
def test_download_md5_mismatch_leaves_nothing(isolated, http_root):
    root, url = http_root
    _copy_test_split(root)
    (root / TEST_FILES[0]).write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x00"))
    with pytest.raises(OSError, match="md5"):
        load_mnist("mnist", "test", base_url=url)
    cache = isolated / "cache" / "mnist"
    assert not (cache / TEST_FILES[0]).exists()
    assert not any(p.name.endswith(".part") for p in cache.iterdir())


def test_download_missing_url(isolated, http_root):
    _, url = http_root
    with pytest.raises(OSError, match="404"):
        ds.download_file(url + "nothing.gz", isolated / "cache" / "x.gz", md5=None, timeout=5)
    assert list((isolated / "cache").iterdir()) == []


@needs_data
def test_corrupt_cache_is_replaced_by_download(isolated, http_root):
    root, url = http_root
    _copy_test_split(root)
    cache = _copy_test_split(isolated / "cache" / "mnist")
    (cache / TEST_FILES[1]).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="md5"):
        load_mnist("mnist", "test", download=False)
    X, y = load_mnist("mnist", "test", base_url=url)
    assert y[0] == 7 and ds.md5_file(cache / TEST_FILES[1]) == ds.MD5["mnist"][TEST_FILES[1]]


def test_shared_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGE_EVO_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.delenv("EDGE_EVO_DATA")
    d = shared_data_dir()
    assert d is None or (d.name == "data" and d.parent.name == "shared")


# ------------------------------------------------------------------ small datasets
def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.uint8 and y.dtype == np.uint8
    assert X.max() == 255 and X.min() == 0 and set(np.unique(y)) == set(range(10))
    assert set(np.unique(X)) <= {int(np.floor(v * 255 / 16 + 0.5)) for v in range(17)}


def test_make_linear():
    X, y = make_linear(64, seed=3)
    assert X.shape == (64, 1) and X.dtype == np.float32 and y.dtype == np.float32
    assert -1 <= X.min() and X.max() <= 1 and X.std() > 0.4
    np.testing.assert_allclose(y, 2 * X + 3, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(X, make_linear(64, seed=3)[0])
    assert not np.array_equal(X, make_linear(64, seed=4)[0])
    with pytest.raises(ValueError, match="n must be"):
        make_linear(0)


def test_render_alphabet():
    X, y = render_alphabet(size=32)
    assert X.shape == (26, 1024) and X.dtype == np.uint8
    np.testing.assert_array_equal(y, np.arange(26))
    assert X.max() == 255 and (X > 0).sum(axis=1).min() > 20          # every letter has ink
    img = X.reshape(26, 32, 32)
    assert np.median(X) == 0 and img[:, 0, 0].max() == 0 and img[:, -1, -1].max() == 0   # black
    assert len({x.tobytes() for x in X}) == 26                         # all letters differ
    Xv, yv = render_alphabet(size=32, variations=2, seed=1)
    assert Xv.shape == (78, 1024)
    np.testing.assert_array_equal(yv, np.tile(np.arange(26), 3))
    np.testing.assert_array_equal(Xv[:26], X)                          # variation 0 is clean
    assert not np.array_equal(Xv[26:52], X)
    np.testing.assert_array_equal(Xv, render_alphabet(size=32, variations=2, seed=1)[0])
    assert not np.array_equal(Xv[26:], render_alphabet(size=32, variations=2, seed=2)[0][26:])
    with pytest.raises(ValueError, match="size"):
        render_alphabet(size=4)
    with pytest.raises(ValueError, match="cannot load font"):
        render_alphabet(size=16, fonts=["/nonexistent/font.ttf"])


def test_render_alphabet_system_fonts():
    fonts = ds.find_fonts(limit=2)
    if not fonts:
        pytest.skip("no TrueType fonts on this machine")
    X, y = render_alphabet(size=24, fonts=fonts)
    assert X.shape == (26 * len(fonts), 576) and y.max() == 25


# ------------------------------------------------------------------ registry
def test_registry_names_and_errors():
    assert {"mnist", "fashion-mnist", "digits", "linear", "alphabet"} <= set(TASKS)
    with pytest.raises(ValueError, match="unknown task"):
        get_task("cifar")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['hidden'\]"):
        get_task("digits", hidden=3)


def test_registry_small_tasks():
    d = get_task("digits", samples_per_class=3)
    assert d.n_in == 64 and d.n_out == 10 and d.n_train + len(d.y["test"]) == 1797
    lin = get_task("linear", n=16)
    assert lin.n_in == 1 and lin.n_out == 1 and lin.n_train == 16
    a = get_task("alphabet", size=16, variations=1)
    assert a.n_in == 256 and a.n_out == 26 and a.n_train == 52 and len(a.y["test"]) == 26


@needs_data
def test_registry_mnist_subset(isolated):
    p = get_task("mnist", path=DATA, n_train=1000, n_test=500, samples_per_class=20)
    assert p.n_train == 1000 and len(p.y["test"]) == 500 and p.spec_dims(64) == (784, 64, 10)
    with pytest.raises(ValueError, match="n_test must be in"):
        get_task("fashion-mnist", path=DATA, n_test=20000)
