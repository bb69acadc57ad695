"""edge_evo.fit: memory budgets of inference and on-device evolution against targets/*.toml; the
``edge-evo fit`` / ``edge-evo targets`` commands (exit codes, one-line messages)."""
import json

import numpy as np
import pytest

from edge_evo.cli import main
from edge_evo.export.c_evolve import genreg_ram_bytes, openes_ram_bytes
from edge_evo.fit import fit_report
from edge_evo.models.mlp import MLPSpec
from edge_evo.targets import get_target

N_MNIST = 785 * 64 + 65 * 10   # 784-64-10 parameters


def test_inference_fits_m4_with_weights_in_flash():
    r = fit_report("784-64-10", "cortex-m4f")
    assert r["fits"] and r["model"]["n_params"] == N_MNIST
    assert r["flash"]["params_bytes"] == N_MNIST and r["flash"]["lut_bytes"] == 256
    assert r["ram"]["scratch_bytes"] == 128 and r["ram"]["logits_bytes"] == 40
    assert "params_bytes" not in r["ram"]          # const genome: flash, not RAM
    assert r["ram_bytes"] == sum(r["ram"].values()) < 4096
    assert r["message"].startswith("784-64-10 (50890 parameters) inference fits cortex-m4f")


def test_formulas_are_the_c_engines():
    g = fit_report(MLPSpec((784, 64, 10)), "cortex-m4f", "genreg", population=200, survivors=2, batch=200)
    assert g["ram"]["evolution_bytes"] == genreg_ram_bytes(200, 2, N_MNIST, 200)
    # k*n + n + 8P + 17k + B up to 4-byte alignment
    assert 0 <= g["ram"]["evolution_bytes"] - (2 * N_MNIST + N_MNIST + 8 * 200 + 17 * 2 + 200) <= 3
    o = fit_report((784, 64, 10), "cortex-m4f", "openes", population=64)
    assert o["ram"]["evolution_bytes"] == openes_ram_bytes(64, N_MNIST)
    assert 0 <= o["ram"]["evolution_bytes"] - (9 * N_MNIST + 6 * 64) <= 3


def test_genreg_two_survivors_fit_m4_but_eight_do_not():
    assert fit_report("784-64-10", "cortex-m4f", "genreg", survivors=2)["fits"]
    r = fit_report("784-64-10", "cortex-m4f", "genreg", survivors=8)
    assert not r["fits"] and r["fits_flash"] and not r["fits_ram"]
    assert r["ram_bytes"] > get_target("cortex-m4f").ram_bytes
    assert "survivors to <= 2" in r["suggestions"]
    # the suggestions are the largest values that fit: one more does not
    h = int([s for s in r["suggestions"] if s.startswith("hidden")][0].split()[-1])
    assert fit_report(f"784-{h}-10", "cortex-m4f", "genreg", survivors=8)["fits"]
    assert not fit_report(f"784-{h + 1}-10", "cortex-m4f", "genreg", survivors=8)["fits"]
    assert not fit_report("784-64-10", "cortex-m4f", "genreg", survivors=3)["fits"]
    assert "RAM" in r["message"] and "reduce survivors to <= 2 or" in r["message"]


def test_openes_population_suggestion_is_even_and_tight():
    r = fit_report("64-32-10", "cortex-m0plus", "openes", population=60000)
    assert not r["fits"]
    p = int([s for s in r["suggestions"] if s.startswith("population")][0].split()[-1])
    assert p % 2 == 0
    assert fit_report("64-32-10", "cortex-m0plus", "openes", population=p)["fits"]
    assert not fit_report("64-32-10", "cortex-m0plus", "openes", population=p + 2)["fits"]


def test_flash_limit_of_inference():
    r = fit_report("784-1024-10", "cortex-m55")   # 814 KB of weights > 512 KB flash
    assert not r["fits"] and not r["fits_flash"] and r["fits_ram"]
    assert "flash" in r["message"] and "hidden units to <=" in r["message"]


def test_unlimited_targets_always_fit():
    r = fit_report("784-512-512-10", "host", "openes", population=1024)
    assert r["fits"] and r["budget"] == {"flash_bytes": None, "ram_bytes": None}
    assert "unlimited" in r["message"]


def test_saved_model_and_pair(tmp_path):
    spec = MLPSpec((16, 8, 4))
    g = np.zeros(spec.n_params, np.int8)
    assert fit_report((spec, g), "cortex-m0plus")["model"]["dims"] == [16, 8, 4]


@pytest.mark.parametrize("kwargs, err, text", [
    ({"target": "nope"}, ValueError, "unknown target 'nope'"),
    ({"evolve": "cmaes"}, ValueError, "unknown evolution engine"),
    ({"evolve": "openes", "survivors": 2}, TypeError, "do not apply to openes"),
    ({"survivors": 2}, TypeError, "do not apply to inference only"),
    ({"evolve": "genreg", "population": 0}, ValueError, "population must be a positive integer"),
    ({"evolve": "genreg", "population": 4, "survivors": 5}, ValueError, "must not exceed population"),
    ({"evolve": "openes", "population": 7}, ValueError, "even population"),
    ({"evolve": "genreg", "batch": 2.5}, ValueError, "batch must be"),
])
def test_bad_options(kwargs, err, text):
    kw = {"target": "cortex-m4f", **kwargs}
    with pytest.raises(err, match=text):
        fit_report("784-64-10", **kw)


def test_bad_model():
    with pytest.raises(ValueError, match="dims"):
        fit_report("784-0-10", "cortex-m4f")


# ----------------------------------------------------------------------------- CLI
def test_cli_fit_exit_codes(capsys):
    assert main(["fit", "784-64-10", "--target", "cortex-m4f"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "fits cortex-m4f" in out[0]
    assert main(["fit", "784-64-10", "--target", "cortex-m4f", "--evolve", "genreg", "--survivors", "8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit cortex-m4f" in err[0] and "reduce survivors to <= 2" in err[0]
    assert main(["fit", "784-64-10", "--target", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-evo: error: unknown target 'nope'")
    assert main(["fit", "784-64-10", "--target", "cortex-m4f", "--evolve", "openes", "--population", "3"]) == 2
    assert "even population" in capsys.readouterr().err


def test_cli_fit_json(capsys):
    assert main(["fit", "784-64-10", "--target", "cortex-m4f", "--evolve", "openes", "--json"]) == 1
    r = json.loads(capsys.readouterr().out)
    assert r["evolve"] == "openes" and r["fits"] is False and r["suggestions"]


def test_cli_targets_lists_every_device(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head == ["name", "kind", "RAM", "flash", "word", "FPU", "DSP", "toolchain", "emulator"]
    m4 = [l for l in out.splitlines() if l.startswith("cortex-m4f ")][0]
    for part in ("192 KB", "1 MB", "32-bit", "fpv4-sp-d16", "yes", "arm-none-eabi-gcc", "mps2-an386"):
        assert part in m4, (part, m4)
    assert "esp32-s3" in out and "STM32F407-class" in out
