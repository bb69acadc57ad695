"""C exporter (edge_evo.export.c_export): emitted header/source compile cleanly and run bit-exact
with the numba kernels on the host (gcc, ASan/UBSan) and on emulated Cortex-M4/M0 (emlearn-style
self-check); report fields; registry; clear errors."""
import json
import re
import subprocess

import numpy as np
import pytest

from edge_evo import NUMERICS_CONTRACT, rng
from edge_evo.export import EXPORTERS, export, model_hash
from edge_evo.export import c_build
from edge_evo.export.c_export import export_c, check_on_host, check_on_target, default_inputs
from edge_evo.fixedpoint import quantize_input_u8
from edge_evo.models.mlp import MLPSpec, Population
from edge_evo.targets import firmware_dir


def _genome(spec, seed=7):
    return ((rng.u32_stream(seed, 0, 0, spec.n_params) % 255).astype(np.int64) - 127).astype(np.int8)


def _need(target, emulate=True):
    try:
        c_build.require(target, emulate=emulate)
    except c_build.ToolchainMissing as e:
        pytest.skip(str(e))


SPECS = {
    "small_tanh": MLPSpec((16, 8, 4)),
    "deep_relu": MLPSpec((12, 6, 5, 3), activation="relu"),
    "linear_only": MLPSpec((20, 3)),
    "sigmoid_fracs": MLPSpec((10, 7, 4), activation="sigmoid", w_frac=5, b_frac=4, z_frac=4, h_frac=6),
    "mnist": MLPSpec((784, 32, 10)),
}


def test_export_writes_files(tmp_path):
    spec = SPECS["small_tanh"]
    g = _genome(spec)
    h = export_c(spec, g, tmp_path, name="net")
    assert h == tmp_path / "net.h"
    for f in ("net.h", "net.c", "net_report.json", "edge_evo_rt.h", "edge_evo_rt.c"):
        assert (tmp_path / f).is_file(), f
    head = h.read_text()
    assert f'#define NET_HASH "{model_hash(spec, g)}"' in head
    assert "#define NET_N_INPUTS 16" in head and "#define NET_N_OUTPUTS 4" in head
    assert "#define NET_SCRATCH_BYTES 16" in head
    src = (tmp_path / "net.c").read_text()
    arr = re.search(r"net_params\[NET_N_PARAMS\] = \{(.*?)\};", src, re.S).group(1)
    assert np.array_equal(np.array([int(v) for v in arr.replace("\n", "").split(",")]), g)
    lut = re.search(r"net_lut\[256\] = \{(.*?)\};", src, re.S).group(1)
    assert np.array_equal(np.array([int(v) for v in lut.replace("\n", "").split(",")]), spec.lut())
    rep = json.loads((tmp_path / "net_report.json").read_text())
    assert rep["model_hash"] == model_hash(spec, g) and rep["contract"] == NUMERICS_CONTRACT
    assert rep["flash"]["weights_bytes"] == 16 * 8 + 8 * 4
    assert rep["flash"]["biases_bytes"] == 12 and rep["flash"]["lut_bytes"] == 256
    assert rep["ram"]["scratch_bytes"] == 17 and rep["ram"]["logits_bytes"] == 16
    assert rep["ram"]["stack_estimate_bytes"] > 0 and rep["fits"] == {"flash": True, "ram": True}


def test_emitted_code_is_pedantic_clean(tmp_path):
    _need("host", emulate=False)
    export_c(SPECS["deep_relu"], _genome(SPECS["deep_relu"]), tmp_path, name="m")
    for f in ("m.c", "edge_evo_rt.c"):
        r = subprocess.run(["gcc", *c_build.WARNINGS, "-Wconversion", "-O2", "-c", str(tmp_path / f),
                            "-o", str(tmp_path / (f + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("key", list(SPECS))
def test_check_on_host_exact(key):
    _need("host")
    spec = SPECS[key]
    res = check_on_host((spec, _genome(spec)), n_inputs=12)
    assert res["exact"] and res["n_inputs"] == 12


def test_check_on_host_saturating_inputs():
    """Extreme weights and inputs: saturation at +-127 and large accumulators stay exact."""
    _need("host")
    spec = MLPSpec((64, 16, 5))
    g = np.where(_genome(spec) >= 0, 127, -127).astype(np.int8)
    X = np.vstack([np.full((1, 64), 127), np.zeros((1, 64)), default_inputs(64, 6)]).astype(np.int8)
    assert check_on_host((spec, g), X=X)["exact"]


def test_check_on_host_sanitizers():
    _need("host")
    spec = SPECS["deep_relu"]
    assert check_on_host(Population.from_flat(spec, _genome(spec)[None]), sanitize=True)["exact"]


@pytest.mark.parametrize("target", ["cortex-m4f", "cortex-m0plus"])
def test_check_on_emulated_cortex_m(target):
    _need(target)
    spec = SPECS["mnist"]
    res = check_on_target((spec, _genome(spec)), target=target, n_inputs=4)
    assert res["exact"] and 0 < res["stack_bytes"] < 1024
    assert res["sizes"][".text"] > spec.n_params


def test_report_measures_cortex_m_code(tmp_path):
    _need("cortex-m4f", emulate=False)
    spec = SPECS["mnist"]
    export_c(spec, _genome(spec), tmp_path, target="cortex-m4f")
    rep = json.loads((tmp_path / "model_report.json").read_text())
    assert 200 < rep["flash"]["code_bytes"] < 4096, rep["flash"]
    assert "arm-none-eabi-size" in rep["flash"]["code_measured_with"]
    assert "fstack-usage" in rep["ram"]["stack_estimate_from"]
    assert rep["target"]["name"] == "cortex-m4f"


def test_pixel_quantizer_matches_python(tmp_path):
    _need("host", emulate=False)
    (tmp_path / "p.c").write_text('#include <stdio.h>\n#include "edge_evo_rt.h"\nint main(void) {\n'
                                  '  int p; for (p = 0; p < 256; ++p) printf("%d\\n", ee_pixel_q7((uint8_t)p));\n'
                                  '  return 0;\n}\n')
    subprocess.run(["gcc", *c_build.WARNINGS, f"-I{firmware_dir()}", str(tmp_path / "p.c"), "-o",
                    str(tmp_path / "p")], check=True)
    out = subprocess.run([str(tmp_path / "p")], capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == quantize_input_u8(np.arange(256, dtype=np.uint8)).tolist()


def test_registry_and_path_forms(tmp_path):
    spec = SPECS["small_tanh"]
    g = _genome(spec)
    assert EXPORTERS["c"] is export_c
    h = export((spec, g), tmp_path / "fw" / "clf.h", to="c", measure=False)
    assert h == tmp_path / "fw" / "clf.h" and (tmp_path / "fw" / "clf.c").is_file()


def test_errors(tmp_path):
    spec = SPECS["small_tanh"]
    g = _genome(spec)
    with pytest.raises(TypeError, match="quantize"):
        export_c(spec, g.astype(np.float32), tmp_path)
    with pytest.raises(ValueError, match="C identifier"):
        export_c(spec, g, tmp_path, name="9lives")
    with pytest.raises(ValueError, match="unknown target"):
        export_c(spec, g, tmp_path, target="pdp11")
    with pytest.raises(ValueError, match="-128"):
        export_c(spec, np.full(spec.n_params, -128, np.int8), tmp_path)
    with pytest.raises(ValueError, match="genome must be"):
        export_c(spec, g[:-1], tmp_path)
    with pytest.raises(ValueError, match="integer model only"):
        export_c(spec, g, tmp_path, integer=False)
    big = MLPSpec((784, 3000, 10))  # 2.4 MB of weights > 2 MB of RP2040 flash
    with pytest.raises(ValueError, match="too large for target 'cortex-m0plus'"):
        export_c(big, np.zeros(big.n_params, np.int8), tmp_path / "big", target="cortex-m0plus")
    assert not (tmp_path / "big").exists()  # refused before writing anything
    with pytest.raises(ValueError, match="X must be"):
        check_on_host((spec, g), X=np.zeros((2, 3), np.int8))


# ----------------------------------------------------------------------------- targets registry
def test_targets_registry():
    from edge_evo.targets import list_targets, get_target
    names = list_targets()
    for n in ("cortex-m0plus", "cortex-m4f", "cortex-m7", "cortex-m55", "esp32-s3", "rpi4", "rpi5", "host"):
        assert n in names
    m0, m4 = get_target("cortex-m0plus"), get_target("cortex-m4f")
    assert m0.ram_bytes == 264 * 1024 and m0.flash_bytes == 2 * 1024 * 1024 and m0.fpu == "none"
    assert m0.emulator.machine == "microbit" and m4.emulator.machine == "mps2-an386" and m4.dsp
    assert get_target("cortex-m7").emulator.machine == "mps2-an500"
    assert get_target("cortex-m55").emulator.machine == "mps3-an547"
    assert get_target("esp32-s3").emulator is None
    assert get_target("rpi4").word_bits == 64 and get_target("rpi4").emulator.command[0] == "qemu-aarch64"
    for n in names:
        t = get_target(n)
        assert t.name == n and t.toolchain.cc
        if t.bare_metal and t.emulator is not None:
            assert (t.board_dir() / "board.ld.in").is_file() and (t.board_dir() / "startup.c").is_file()
    assert get_target(m4) is m4
    with pytest.raises(ValueError, match="unknown target 'z80'; known targets: cortex-m0plus"):
        get_target("z80")


def test_target_file_errors(tmp_path):
    from edge_evo.targets import _parse
    (tmp_path / "bad.toml").write_text("name = 'bad'\n[toolchain\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        _parse(tmp_path / "bad.toml")
    (tmp_path / "nocc.toml").write_text("name = 'nocc'\ndescription='x'\nkind='mcu'\narch='a'\ncpu='c'\n"
                                        "word_bits=32\n[toolchain]\nsize='s'\n")
    with pytest.raises(ValueError, match="missing or unknown key"):
        _parse(tmp_path / "nocc.toml")
    (tmp_path / "other.toml").write_text("name = 'x'\ndescription='x'\nkind='mcu'\narch='a'\ncpu='c'\n"
                                         "word_bits=32\n[toolchain]\ncc='gcc'\n")
    with pytest.raises(ValueError, match="must match the file name"):
        _parse(tmp_path / "other.toml")
    (tmp_path / "k.toml").write_text("name = 'k'\ndescription='x'\nkind='toaster'\narch='a'\ncpu='c'\n"
                                     "word_bits=32\n[toolchain]\ncc='gcc'\n")
    with pytest.raises(ValueError, match="kind must be one of"):
        _parse(tmp_path / "k.toml")


def test_missing_toolchain_names_apt_packages(monkeypatch):
    import shutil as _sh
    monkeypatch.setattr(_sh, "which", lambda name: None)
    with pytest.raises(c_build.ToolchainMissing, match="apt-get install gcc-arm-none-eabi"):
        c_build.require("cortex-m4f")
    from edge_evo.targets import Toolchain
    monkeypatch.setattr(Toolchain, "available", lambda self: True)
    with pytest.raises(c_build.ToolchainMissing, match="no emulator: it is a size check only"):
        c_build.require("esp32-s3", emulate=True)


def test_firmware_m4_example(tmp_path, capsys):
    """examples/firmware_m4: uint8 digits quantized on the emulated M4, predictions equal numba's."""
    _need("cortex-m4f")
    import importlib.util
    from edge_evo.targets import firmware_dir as _fw
    path = _fw().parent / "examples" / "firmware_m4" / "run_on_m4.py"
    spec = importlib.util.spec_from_file_location("run_on_m4", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--random", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "predictions identical to numba: True" in out
    assert (tmp_path / "digits_net_report.json").is_file()
