"""Checkpoint / model persistence: atomicity, checksums, schema versions, no pickle."""
import json
import os

import numpy as np
import pytest

import edge_evo
from edge_evo import io as eio
from edge_evo.io import CheckpointError, load_checkpoint, load_model, save_checkpoint, save_model
from edge_evo.models.mlp import MLPSpec


def _arrays(v=1):
    return {"state/trust": np.arange(6, dtype=np.float64) * v, "population/W1": np.full((2, 3), v, np.int8)}


def test_roundtrip_and_header(tmp_path):
    p = save_checkpoint(tmp_path / "ck", _arrays(), {"generation": 7, "note": "x", "f": np.float32(1.5)})
    assert (tmp_path / "ck.npz").is_file() and (tmp_path / "ck.json").is_file()
    arrs, meta = load_checkpoint(p)
    for k, v in _arrays().items():
        assert arrs[k].dtype == v.dtype and np.array_equal(arrs[k], v)
    assert meta["generation"] == 7 and meta["f"] == 1.5
    assert meta["schema_version"] == eio.SCHEMA_VERSION
    assert meta["numerics_contract"] == edge_evo.NUMERICS_CONTRACT
    assert meta["edge_evo_version"] == edge_evo.__version__
    import hashlib
    assert meta["sha256"] == hashlib.sha256((tmp_path / "ck.npz").read_bytes()).hexdigest()
    # suffixes name the same pair
    assert load_checkpoint(tmp_path / "ck.json")[1]["generation"] == 7
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))


def test_object_arrays_refused(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        save_checkpoint(tmp_path / "ck", {"x": np.array([{"a": 1}], dtype=object)}, {})
    assert not (tmp_path / "ck.npz").exists() and not (tmp_path / "ck.json").exists()


def test_loader_never_unpickles(tmp_path):
    # a hand-made pair whose npz holds an object array with a valid checksum must still be refused
    save_checkpoint(tmp_path / "ck", {"x": np.zeros(2)}, {})
    np.savez(tmp_path / "evil.npz", x=np.array([object()], dtype=object))
    data = (tmp_path / "evil.npz").read_bytes()
    (tmp_path / "ck.npz").write_bytes(data)
    meta = json.loads((tmp_path / "ck.json").read_text())
    import hashlib
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "ck.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "ck")


def test_corruption_detected(tmp_path):
    save_checkpoint(tmp_path / "ck", _arrays(), {})
    b = bytearray((tmp_path / "ck.npz").read_bytes())
    b[len(b) // 2] ^= 0xFF
    (tmp_path / "ck.npz").write_bytes(bytes(b))
    with pytest.raises(CheckpointError, match="SHA-256.*corrupt"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "ck")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")
    save_checkpoint(tmp_path / "ck", _arrays(), {})
    (tmp_path / "ck.npz").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        load_checkpoint(tmp_path / "ck")


@pytest.mark.parametrize("version, hint", [(99, "upgrade edge-evo"), (0, "re-create it")])
def test_schema_mismatch(tmp_path, version, hint):
    save_checkpoint(tmp_path / "ck", _arrays(), {})
    meta = json.loads((tmp_path / "ck.json").read_text())
    meta["schema_version"] = version
    (tmp_path / "ck.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "ck")
    msg = str(e.value)
    assert f"schema version {version}" in msg and hint in msg and "\n" not in msg


def test_reserved_meta_keys_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "ck", _arrays(), {"sha256": "x"})


def test_crash_while_writing_npz_keeps_previous_pair(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", _arrays(1), {"generation": 1})

    real_fsync = os.fsync

    def boom(fd):
        raise OSError("disk died mid-write")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="mid-write"):
        save_checkpoint(tmp_path / "ck", _arrays(2), {"generation": 2})
    monkeypatch.setattr(os, "fsync", real_fsync)
    arrs, meta = load_checkpoint(tmp_path / "ck")
    assert meta["generation"] == 1 and np.array_equal(arrs["population/W1"], _arrays(1)["population/W1"])
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_crash_between_npz_and_json_keeps_previous_pair(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "ck", _arrays(1), {"generation": 1})
    real = eio.atomic_write_text

    def crash(path, text):
        raise KeyboardInterrupt  # killed after the new npz landed, before the JSON commit
    monkeypatch.setattr(eio, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", _arrays(2), {"generation": 2})
    monkeypatch.setattr(eio, "atomic_write_text", real)
    arrs, meta = load_checkpoint(tmp_path / "ck")   # old JSON + old npz (kept as .prev)
    assert meta["generation"] == 1 and arrs["state/trust"][1] == 1.0
    # a second interrupted save must not lose the committed npz either
    monkeypatch.setattr(eio, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ck", _arrays(3), {"generation": 3})
    monkeypatch.setattr(eio, "atomic_write_text", real)
    assert load_checkpoint(tmp_path / "ck")[1]["generation"] == 1
    # and the next complete save commits cleanly
    save_checkpoint(tmp_path / "ck", _arrays(4), {"generation": 4})
    arrs, meta = load_checkpoint(tmp_path / "ck")
    assert meta["generation"] == 4 and arrs["state/trust"][1] == 4.0
    assert not (tmp_path / "ck.npz.prev").exists()


def test_atomic_write_failure_leaves_old_file(tmp_path, monkeypatch):
    f = tmp_path / "a.txt"
    eio.atomic_write_text(f, "old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("no rename")))
    with pytest.raises(OSError):
        eio.atomic_write_text(f, "new")
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_model_roundtrip_and_overwrite_guard(tmp_path):
    spec = MLPSpec((4, 3, 2))
    g = (np.arange(spec.n_params) % 50 - 25).astype(np.int8)
    save_model(tmp_path / "m", spec, g, "int8", {"task": "digits", "accuracy": 0.9})
    m = load_model(tmp_path / "m")
    assert m.spec == spec and m.mode == "int8" and np.array_equal(m.genome, g) and m.meta["accuracy"] == 0.9
    assert m.population().size == 1 and np.array_equal(m.population().genome(0), g)
    save_model(tmp_path / "m", spec, g, "int8")            # identical: allowed
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_model(tmp_path / "m", spec, -g, "int8")
    assert np.array_equal(load_model(tmp_path / "m").genome, g)
    save_model(tmp_path / "m", spec, -g, "int8", overwrite=True)
    assert np.array_equal(load_model(tmp_path / "m").genome, -g)


def test_model_validation(tmp_path):
    spec = MLPSpec((4, 3, 2))
    with pytest.raises(TypeError, match="int8"):
        save_model(tmp_path / "m", spec, np.zeros(spec.n_params, np.float32), "int8")
    with pytest.raises(ValueError, match="needs"):
        save_model(tmp_path / "m", spec, np.zeros(3, np.int8), "int8")
    save_checkpoint(tmp_path / "c", {"genome": np.zeros(spec.n_params, np.int8)}, {})
    with pytest.raises(CheckpointError, match="not a 'model'"):
        load_model(tmp_path / "c")


def test_load_model_from_run_dir(tmp_path):
    spec = MLPSpec((4, 3, 2))
    g = np.zeros(spec.n_params, np.float32)
    save_model(tmp_path / "model", spec, g, "float32")
    assert load_model(tmp_path).mode == "float32"
