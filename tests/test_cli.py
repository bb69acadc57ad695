"""The edge-evo command line: quickstart end to end, run/resume/eval, listings, error formatting."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_evo import cli
from edge_evo.cli import QUICKSTART_TOML, SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parent.parent

TINY_TOML = """
[run]
strategy = "{strategy}"
seed = 1
generations = 6
checkpoint_every = 3
eval_every = 3
plots = false

[model]
hidden = [4]

[task]
name = "digits"
{task}
"""


def _tiny(tmp_path, strategy="openes", task='batch_size = 64', extra=""):
    p = tmp_path / "c.toml"
    p.write_text(TINY_TOML.format(strategy=strategy, task=task) + extra)
    return p


def test_quickstart_config_matches_example():
    assert (ROOT / "examples" / "quickstart.toml").read_text() == QUICKSTART_TOML


def test_quickstart_end_to_end(tmp_path, capsys):
    out = tmp_path / "qs"
    rc = main(["quickstart", "--out", str(out), "--generations", "30", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "held-out digits accuracy:" in text and f"run folder: {out}" in text
    acc = float(text.split("held-out digits accuracy:")[1].split()[0])
    assert acc > 0.4      # 30 generations already far above chance (0.1); 200 give ~0.95
    for f in ("config.toml", "metrics.jsonl", "model.npz", "model.json", "fitness.png", "per_class.png",
              "confusion.png", "checkpoints/latest.json"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    # eval of the run folder reproduces the accuracy printed by the quickstart
    assert main(["eval", str(out)]) == 0
    ev = capsys.readouterr().out
    assert f"digits test accuracy: {acc:.4f}" in ev and len([l for l in ev.splitlines() if l[:5].strip().isdigit()]) == 10
    # resume continues to 40 generations
    assert main(["resume", str(out), "--generations", "40", "--no-progress"]) == 0
    assert "generation 40" in capsys.readouterr().out


def test_python_m_subprocess(tmp_path):
    cfg = _tiny(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "edge_evo", "run", str(cfg), "--out", str(tmp_path / "r"),
                        "--set", "run.generations=3"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "generation 3: accuracy" in r.stdout and "run folder:" in r.stdout
    assert "\r" not in r.stderr          # not a terminal: no progress redraws
    # bad config through the real entry point: one line, exit 2, no traceback
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\ngeneratons = 3\n")
    r = subprocess.run([sys.executable, "-m", "edge_evo", "run", str(bad)], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("edge-evo: error: ")
    assert "run.generatons" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv_tail, expect", [
    (["run", "{missing}"], "not found"),
    (["run", "{bad_key}"], "unknown key run.generatons"),
    (["run", "{bad_toml}"], "invalid TOML"),
    (["run", "{tiny}", "--set", "run.strategy=nope"], "unknown strategy 'nope'"),
    (["run", "{tiny}", "--set", "task.name=nope"], "unknown task 'nope'"),
    (["run", "{tiny}", "--set", "task.colour=1"], "unknown option(s) ['colour']"),
    (["run", "{tiny}", "--set", "strategy.sigmaa=1.0"], "sigmaa"),
    (["run", "{tiny}", "--set", "oops"], "section.key=value"),
    (["resume", "{tmp}"], "not a run folder"),
    (["eval", "{tmp}"], "no model"),
])
def test_error_formatting(tmp_path, capsys, argv_tail, expect):
    (tmp_path / "bad_key.toml").write_text("[run]\ngeneratons = 3\n")
    (tmp_path / "bad.toml").write_text("[run\n")
    subs = {"{missing}": str(tmp_path / "missing.toml"), "{bad_key}": str(tmp_path / "bad_key.toml"),
            "{bad_toml}": str(tmp_path / "bad.toml"), "{tiny}": str(_tiny(tmp_path)), "{tmp}": str(tmp_path)}
    argv = [subs.get(a, a) for a in argv_tail]
    if argv[0] == "run":
        argv += ["--out", str(tmp_path / "out")]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("edge-evo: error: "), err
    assert expect in lines[0]


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "run", str(tmp_path / "missing.toml")])


def test_run_refuses_existing_folder_then_overwrite(tmp_path, capsys):
    cfg = _tiny(tmp_path)
    out = str(tmp_path / "r")
    assert main(["run", str(cfg), "--out", out, "--no-progress", "--set", "run.generations=2"]) == 0
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", out, "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["run", str(cfg), "--out", out, "--no-progress", "--overwrite", "--set", "run.generations=2"]) == 0


def test_listings(capsys):
    assert main(["strategies"]) == 0
    text = capsys.readouterr().out
    for name in ("openes",):
        assert f"{name}:" in text
    assert "preset" in text and "params:" in text
    assert main(["tasks"]) == 0
    text = capsys.readouterr().out
    for name in ("mnist", "fashion-mnist", "digits", "linear", "alphabet"):
        assert f"\n{name}:" in "\n" + text
    assert "options:" in text


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "quickstart" in capsys.readouterr().err


def test_subcommand_registry_is_extensible(capsys, monkeypatch):
    monkeypatch.setitem(SUBCOMMANDS, "hello", cli.Subcommand("hello", "say hello",
                                                             lambda p: p.add_argument("--name", default="x"),
                                                             lambda a: print(f"hi {a.name}") or 0))
    assert main(["hello", "--name", "y"]) == 0
    assert capsys.readouterr().out == "hi y\n"
    for later in ("run", "resume", "eval", "quickstart", "strategies", "tasks"):
        assert later in SUBCOMMANDS


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid(path):
    from edge_evo.config import build_strategy, load_config, resolve_config
    from edge_evo.models.mlp import MLPSpec
    cfg = load_config(path)
    n_in, n_out = {"digits": (64, 10), "mnist": (784, 10), "fashion-mnist": (784, 10)}[cfg["task"]["name"]]
    spec = MLPSpec((n_in, *cfg["model"]["hidden"], n_out))
    strat = build_strategy(cfg, spec)
    assert resolve_config(cfg, strat)["strategy"]
