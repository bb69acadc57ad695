"""RAM / flash of on-device evolution for a 784-64-10 int8 MLP on Cortex-M4, and executed instructions
per MAC of dense int8 inference under QEMU.

    python benchmarks/bench_c_evolve.py [--target cortex-m4f] [--no-insn]

Sizes: a firmware per configuration (edge_evo_rt + edge_evo_evolve + a minimal app whose static state is
EE_GENREG_MEM_BYTES / EE_OPENES_MEM_BYTES) is linked for the emulated board (4 MB RAM, so every row links)
and measured with arm-none-eabi-size; the table prints the formula next to the measured .bss and says
whether it fits the real device's RAM (targets/cortex-m4f.toml: 192 KB).

Instructions per MAC: no QEMU TCG plugin (libinsn.so) ships with Debian's qemu-system-arm, so the count
comes from QEMU's own execution trace (-d in_asm,exec,nochain): every executed translation block is logged
with its address, and the block's guest instructions are counted from its disassembly. The difference
between a firmware running the 784-64-10 forward pass twice and once, divided by 50,816 MACs, is the cost
of one MAC (including the bias, requantization and LUT work of the pass).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DIMS = (784, 64, 10)
P_GENREG, B_GENREG, P_OPENES = 200, 200, 200

APP = r"""
#include "edge_evo_evolve.h"
static const uint16_t dims[3] = {784u, 64u, 10u};
static int8_t lut[256];
static const ee_mlp_t model = {2u, dims, NULL, lut, 6u, 6u, 7u, 5u, 7u};
#if MODE == 0
static uint32_t mem[EE_GENREG_MEM_BYTES(P, K, N, B) / 4u + 1u];
static ee_genreg_t evo;
static void eval(void *ctx, const int8_t *g, uint32_t gen, uint32_t i, uint8_t *correct)
{
    uint32_t b;
    (void)ctx; (void)gen;
    for (b = 0; b < B; ++b) { correct[b] = (uint8_t)((g[b] + (int32_t)i) & 1); }
}
int main(void)
{
    static const ee_genreg_cfg_t cfg = {1u, P, K, B, 300647710u, 437, 437, 131, 2560, -384, 983, 0.5, 0.1};
    if (ee_genreg_init(&evo, &cfg, &model, mem, sizeof mem) != 0) { return 1; }
    return ee_genreg_step(&evo, eval, NULL);
}
#elif MODE == 1
static uint32_t mem[EE_OPENES_MEM_BYTES(P, N) / 4u + 1u];
static ee_openes_t evo;
static int32_t fit(void *ctx, const int8_t *g, uint32_t gen, uint32_t i) { (void)ctx; (void)gen; return g[i]; }
int main(void)
{
    static const ee_openes_cfg_t cfg = {1u, P, 0u, 58982, 65536, 0, 65536, 65536, 0,
                                        {1419, 1419, 1419, 1419}, {0, 0, 0, 0}, {580, 8192}};
    if (ee_openes_init(&evo, &cfg, &model, mem, sizeof mem) != 0) { return 1; }
    return ee_openes_step(&evo, fit, NULL);
}
#else
static int8_t genome[50890];
static int8_t x[784];
static int32_t logits[10];
static int8_t scratch[EE_MLP_SCRATCH_BYTES(64)];
int main(void)
{
    ee_mlp_t m = model;
    uint32_t i;
    int r = 0;
    for (i = 0; i < sizeof genome; ++i) { genome[i] = (int8_t)((i * 37u) % 255u - 127u); }
    for (i = 0; i < sizeof x; ++i) { x[i] = (int8_t)(i % 128u); }
    m.params = genome;
    for (i = 0; i < REPS; ++i) { r += ee_mlp_forward(&m, x, logits, scratch); }
    return r & 0;
}
#endif
"""


def _build(target, out: Path, defines: dict) -> Path:
    from edge_evo.export import c_build
    from edge_evo.targets import firmware_dir
    fw = firmware_dir()
    name = "_".join(f"{k}{v}" for k, v in defines.items())
    src = out / f"{name}.c"
    # defines go into the app only (a -D would also rename identifiers in the library sources)
    src.write_text("".join(f"#define {k} {v}\n" for k, v in defines.items()) + APP)
    flags = []
    return c_build.build(target, [fw / "edge_evo_rt.c", fw / "edge_evo_evolve.c", src], out / f"{name}.elf",
                         cflags=flags, emulated=True)


def _object_bss(target, tmp: Path, defines: dict) -> int:
    """.bss + .data of the app object alone: the static evolution state (links need not fit the device)."""
    from edge_evo.targets import firmware_dir, get_target
    t = get_target(target)
    fw = firmware_dir()
    name = "_".join(f"{k}{v}" for k, v in defines.items())
    src = tmp / f"{name}_obj.c"
    src.write_text("".join(f"#define {k} {v}\n" for k, v in defines.items()) + APP)
    obj = tmp / f"{name}.o"
    subprocess.run([t.toolchain.cc, "-std=c99", "-Os", *t.toolchain.cflags, f"-I{fw}", f"-I{fw / 'port'}", "-c",
                    str(src), "-o", str(obj)], check=True, capture_output=True)
    r = subprocess.run([t.toolchain.size, "-A", str(obj)], check=True, capture_output=True, text=True)
    sec = {p[0]: int(p[1]) for p in (l.split() for l in r.stdout.splitlines()) if len(p) >= 2 and p[1].isdigit()}
    return sum(v for k, v in sec.items() if k.startswith((".bss", ".data")))


def size_table(target: str, tmp: Path):
    from edge_evo.export import c_build
    from edge_evo.export.c_evolve import genreg_ram_bytes, openes_ram_bytes
    from edge_evo.targets import get_target
    n = sum((DIMS[l] + 1) * DIMS[l + 1] for l in range(len(DIMS) - 1))
    dev_ram = get_target(target).ram_bytes
    # code size does not depend on the model size: link small instances that fit every board
    flash = {}
    for mode, d in ((0, {"MODE": 0, "P": 16, "K": 2, "N": 1210, "B": 16}), (1, {"MODE": 1, "P": 16, "N": 1210})):
        s = c_build.section_sizes(target, _build(target, tmp, d))
        flash[mode] = s[".text"] + s.get(".rodata", 0) + s.get(".data", 0)
    rows = []
    for k in (1, 2, 4, 8, 40):
        d = {"MODE": 0, "P": P_GENREG, "K": k, "N": n, "B": B_GENREG}
        rows.append((f"GENREG P={P_GENREG} k={k} B={B_GENREG}", genreg_ram_bytes(P_GENREG, k, n, B_GENREG),
                     _object_bss(target, tmp, d), flash[0]))
    d = {"MODE": 1, "P": P_OPENES, "N": n}
    rows.append((f"OpenES P={P_OPENES} (int32 mean + momentum)", openes_ram_bytes(P_OPENES, n),
                 _object_bss(target, tmp, d), flash[1]))
    print(f"\nOn-device evolution of a {'-'.join(map(str, DIMS))} int8 MLP (n = {n} parameters), {target}")
    print(f"{'configuration':44s} {'formula B':>10s} {'app .bss B':>11s} {'flash B':>8s}  fits {dev_ram // 1024} KB RAM")
    for name, f, ram, fl in rows:
        print(f"{name:44s} {f:10d} {ram:11d} {fl:8d}  {'yes' if ram + 8192 <= dev_ram else 'no'}")
    print("GENREG RAM = k*n + n + 8*P + 17*k + B (+<=3);  OpenES RAM = 9*n + 4*P + 4*P/2 (+<=3).")
    print("app .bss = the app object's static state (the formula's buffer + ee_genreg_t/ee_openes_t + LUT);"
          " 'fits' leaves 8 KB of stack.")
    print("flash = .text + .rodata + .data of a whole linked firmware (runtime, evolution engine, startup, libgcc;"
          " GENREG includes soft double for the initial population); it does not depend on the model size.")


def _count_insns(target, elf: Path, log: Path) -> int:
    from edge_evo.targets import get_target
    t = get_target(target)
    cmd = [*t.emulator.command, "-display", "none", "-serial", "none", "-monitor", "none",
           "-semihosting-config", "enable=on,target=native", "-d", "in_asm,exec,nochain", "-D", str(log),
           "-kernel", str(elf)]
    subprocess.run(cmd, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    sizes, total, cur = {}, 0, None
    with open(log) as f:
        for line in f:
            if line.startswith("IN:"):
                cur = None
                continue
            m = re.match(r"^0x([0-9a-f]{8}):\s", line)
            if m:
                a = int(m.group(1), 16)
                if cur is None:
                    cur = a
                    sizes[cur] = 0
                sizes[cur] += 1
                continue
            if line.strip() == "":
                cur = None
                continue
            m = re.match(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", line)
            if m:
                total += sizes.get(int(m.group(1), 16), 0)
    return total


def insn_per_mac(target: str, tmp: Path):
    import shutil
    if shutil.which("qemu-system-arm") is None:
        print("\ninstructions per MAC: qemu-system-arm not installed")
        return
    counts = {}
    for reps in (1, 3):
        elf = _build(target, tmp, {"MODE": 2, "REPS": reps})
        counts[reps] = _count_insns(target, elf, tmp / f"trace{reps}.log")
    macs = DIMS[0] * DIMS[1] + DIMS[1] * DIMS[2]
    per_pass = (counts[3] - counts[1]) / 2
    print(f"\nDense int8 inference {'-'.join(map(str, DIMS))} on {target} (-Os, QEMU execution trace):")
    print(f"  executed instructions per forward pass {per_pass:.0f} for {macs} MACs = {per_pass / macs:.2f} per MAC"
          f"  (target <= 2)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cortex-m4f")
    p.add_argument("--no-insn", action="store_true", help="skip the instruction count")
    args = p.parse_args(argv)
    from edge_evo.export import c_build
    try:
        c_build.require(args.target)
    except c_build.ToolchainMissing as e:
        print(f"skipped: {e}")
        return 0
    with tempfile.TemporaryDirectory() as d:
        size_table(args.target, Path(d))
        if not args.no_insn:
            insn_per_mac(args.target, Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
