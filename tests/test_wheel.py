"""The wheel carries the C runtime and the device descriptions: install it into a fresh venv and
export + run a model from outside the source tree."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_wheel_installs_and_exports_outside_source_tree(tmp_path):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the exported model cannot be checked on the host")
    wheels = tmp_path / "wheels"
    # a PYTHONPATH at a source tree (with its egg-info) makes the venv's pip skip the install: drop it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), ROOT], check=True, cwd=tmp_path, env=env)
    venv = tmp_path / "venv"
    # system site packages give numpy/numba without a network; the wheel shadows any other edge_evo
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, env=env)
    py = str(venv / "bin" / "python")
    whl = next(wheels.glob("edge_evo-*.whl"))
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(whl)], check=True, env=env)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = textwrap.dedent("""
        import numpy as np, edge_evo, edge_evo.targets as t
        from edge_evo.models.mlp import MLPSpec
        from edge_evo.export.c_export import export_c, check_on_host
        assert "site-packages" in edge_evo.__file__, edge_evo.__file__
        assert "_data" in str(t.firmware_dir()) and "_data" in str(t.targets_dir())
        assert "cortex-m4f" in [x.name if hasattr(x, "name") else x for x in t.list_targets()]
        spec = MLPSpec((16, 8, 4))
        g = np.random.default_rng(0).integers(-127, 128, spec.n_params).astype(np.int8)
        export_c(spec, g, "out", target="cortex-m4f", measure=False)
        r = check_on_host((spec, g))
        print("OK", r.get("match", r))
    """)
    out = subprocess.run([py, "-c", code], cwd=work, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("OK")
    assert (work / "out" / "model.h").is_file() and (work / "out" / "edge_evo_rt.c").is_file()
