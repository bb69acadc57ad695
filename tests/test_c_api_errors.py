"""C API bad input: NULL pointers and impossible formats return error codes, never undefined behaviour."""
import shutil
import subprocess

import pytest

from edge_evo.targets import firmware_dir

MAIN = r"""
#include <stdio.h>
#include "edge_evo_rt.h"
int main(void) {
    static const uint16_t dims[3] = {4, 3, 2};
    static int8_t params[(4 + 1) * 3 + (3 + 1) * 2];
    static int8_t lut[256];
    int8_t x[4] = {1, 2, 3, 4}, scratch[6];
    int32_t logits[2];
    ee_mlp_t m = {0};
    m.n_layers = 2; m.dims = dims; m.params = params; m.lut = lut;
    m.w_frac = 6; m.b_frac = 6; m.x_frac = 7; m.z_frac = 5; m.h_frac = 7;
    printf("%d %d %d %d %d", ee_mlp_forward(NULL, x, logits, scratch), ee_mlp_forward(&m, NULL, logits, scratch),
           ee_mlp_forward(&m, x, NULL, scratch), ee_mlp_forward(&m, x, logits, NULL),
           ee_mlp_forward(&m, x, logits, scratch));
    m.z_frac = 20;
    printf(" %d\n", ee_mlp_forward(&m, x, logits, scratch));
    return 0;
}
"""


def test_null_pointers_and_bad_formats_return_error_codes(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no host C compiler (apt-get install gcc)")
    fw = firmware_dir()
    (tmp_path / "main.c").write_text(MAIN)
    exe = tmp_path / "a.out"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{fw}", str(tmp_path / "main.c"), str(fw / "edge_evo_rt.c"),
                    "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out[:4] == ["-1"] * 4 and out[4] in {"0", "1"} and out[5] == "-1"
