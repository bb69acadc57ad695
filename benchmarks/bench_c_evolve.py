"""RAM / flash of on-device evolution for a 784-64-10 int8 MLP on Cortex-M4, and executed instructions
per MAC of dense int8 inference under QEMU.

    python benchmarks/bench_c_evolve.py [--target cortex-m4f] [--no-insn] [--gen-targets cortex-m4f cortex-m0plus]

Sizes: a firmware per configuration (edge_evo_rt + edge_evo_evolve + a minimal app whose static state is
EE_GENREG_MEM_BYTES / EE_OPENES_MEM_BYTES) is linked for the emulated board (4 MB RAM, so every row links)
and measured with arm-none-eabi-size; the table prints the formula next to the measured .bss and says
whether it fits the real device's RAM (targets/cortex-m4f.toml: 192 KB).

Instructions per MAC: no QEMU TCG plugin (libinsn.so) ships with Debian's qemu-system-arm, so the count
comes from QEMU's own execution trace (-d in_asm,exec,nochain): every executed translation block is logged
with its address, and the block's guest instructions are counted from its disassembly. The difference
between a firmware running the 784-64-10 forward pass twice and once, divided by 50,816 MACs, is the cost
of one MAC (including the bias, requantization and LUT work of the pass).

Instructions per generation (--gen-targets, default cortex-m4f; add cortex-m0plus for +3 min): GENREG
(64-16-10, P=16, k=4, B=20, Gumbel-sampled predictions through ee_cls_genreg_eval), OpenES (same model,
P=16, uniform batch of 20) and an EMNS select step ([2, 8, 4, 1], full batch of 40) for 1 and 3
generations; the difference over 2 generations is one generation without the setup. Each is run again
with a callback that only reads the genome: that is the update (breeding, offspring regeneration, trust,
selection, mean/momentum, mutation + mixture tables); the rest is evaluation. Code size per engine:
benchmarks/bench_c_sizes.py.
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
    print("flash = .text + .rodata + .data of a whole linked firmware (runtime, evolution engine, startup, libgcc);"
          " it does not depend on the model size.")


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
    print(f"\nDense int8 inference {'-'.join(map(str, DIMS))} on {target} (-O2 = c_build default, QEMU execution trace):")
    print(f"  executed instructions per forward pass {per_pass:.0f} for {macs} MACs = {per_pass / macs:.2f} per MAC"
          f"  (target <= 2)")


# ----------------------------------------------------------------------------- instructions per generation
GEN_DIMS = (64, 16, 10)
GEN_P, GEN_K, GEN_PER_CLASS, GEN_OPENES_B = 16, 4, 2, 20
EMNS_DIMS, EMNS_N = (2, 8, 4, 1), 40

GEN_APP = r"""
#include "edge_evo_evolve.h"
#include "edge_evo_emns.h"
#if MODE < 4
#if MODE < 2
static uint32_t genreg_mem[EE_GENREG_MEM_BYTES(GR_P, GR_K, ED_N_PARAMS, GR_B) / 4u + 1u];
#else
static uint32_t openes_mem[EE_OPENES_MEM_BYTES(OE_P, ED_N_PARAMS) / 4u + 1u];
#endif
static uint16_t members[ED_N];
static uint16_t batch_idx[GR_B > OE_B ? GR_B : OE_B];
static int32_t logits[ED_N_OUT];
static int8_t scratch[EE_MLP_SCRATCH_BYTES(ED_MAX_HIDDEN) + 1u];
static const ee_mlp_t model = ED_MODEL;
static ee_cls_task_t task;
static void null_eval(void *ctx, const int8_t *g, uint32_t gen, uint32_t i, uint8_t *correct)
{
    uint32_t b;
    (void)ctx;
    for (b = 0; b < GR_B; ++b) { correct[b] = (uint8_t)(((uint32_t)g[b] ^ i ^ gen) & 1u); }
}
static int32_t null_fit(void *ctx, const int8_t *g, uint32_t gen, uint32_t i)
{
    (void)ctx;
    return (int32_t)g[i] + (int32_t)gen;
}
static void task_setup(uint16_t per_class, uint16_t batch, const int32_t *gumbel)
{
    task.model = &model; task.X = ed_X; task.y = ed_y; task.n_samples = ED_N; task.n_classes = ED_N_OUT;
    task.per_class = per_class; task.batch = batch; task.seed = 7u; task.gumbel = gumbel;
    task.members = members; task.batch_idx = batch_idx; task.logits = logits; task.scratch = scratch;
}
int main(void)
{
    uint32_t gen;
#if MODE < 2
    static const ee_genreg_cfg_t cfg = GR_CFG;
    static ee_genreg_t g;
    task_setup(GR_PER_CLASS, 0u, ed_gumbel);
    if (ee_cls_task_init(&task) != 0 || ee_genreg_init(&g, &cfg, &model, genreg_mem, sizeof genreg_mem) != 0) {
        return 1;
    }
    for (gen = 0; gen < GENS; ++gen) {
        if (ee_genreg_step(&g, MODE == 0 ? ee_cls_genreg_eval : null_eval, &task) != 0) { return 2; }
    }
#else
    static const ee_openes_cfg_t cfg = OE_CFG;
    static ee_openes_t o;
    task_setup(0u, OE_B, NULL);
    if (ee_cls_task_init(&task) != 0 || ee_openes_init(&o, &cfg, &model, openes_mem, sizeof openes_mem) != 0) {
        return 1;
    }
    for (gen = 0; gen < GENS; ++gen) {
        if (ee_openes_step(&o, MODE == 2 ? ee_cls_openes_eval : null_fit, &task) != 0) { return 2; }
    }
#endif
    return 0;
}
#else
static uint32_t mem[EE_EMNS_MEM_BYTES(EM_N_PARAMS, EM_N_NEURONS) / 4u + 1u];
static int8_t scratch[EE_EMNS_SCRATCH_BYTES(EM_MAX_WIDTH)];
static int8_t y[EM_N_OUT];
static const ee_emns_model_t model = EM_MODEL;
static int64_t null_loss(void *ctx, const ee_emns_model_t *m, const ee_emns_genome_t *g, uint32_t gen, uint32_t i)
{
    (void)ctx; (void)m; (void)i;
    return (int64_t)(((uint32_t)g->values[0] ^ gen) & 0xFFu);
}
int main(void)
{
    static const ee_emns_cfg_t cfg = EM_CFG;
    static ee_emns_t e;
    ee_emns_data_t d;
    uint32_t gen;
    d.X = em_X; d.T = em_T; d.n_samples = EM_N; d.n_in = EM_N_IN; d.n_out = EM_N_OUT; d.batch = 0u;
    d.seed = 7u; d.y = y; d.scratch = scratch;
    if (ee_emns_init(&e, &cfg, &model, em_values0, em_resist0, mem, sizeof mem) != 0) { return 1; }
    for (gen = 0; gen < GENS; ++gen) {
        if (ee_emns_step(&e, MODE == 4 ? ee_emns_sse : null_loss, &d) != 0) { return 2; }
    }
    return 0;
}
#endif
"""


def _gen_header() -> str:
    """Model, data and configurations of the per-generation firmwares (random data: counts do not depend on it
    beyond GENREG's trust ties and EMNS's accept/revert, which the difference over generations averages)."""
    import numpy as np
    from edge_evo.export import c_emns
    from edge_evo.export.c_evolve import c_array, genreg_cfg_c, model_c, openes_cfg_c
    from edge_evo.models.emns import EMNSSpec, quantize_inputs
    from edge_evo.models.mlp import MLPSpec
    from edge_evo.strategies import get_strategy
    from edge_evo.strategies.emns import EMNS
    spec = MLPSpec(GEN_DIMS)
    rng = np.random.default_rng(0)
    n = 6 * GEN_DIMS[-1]
    X = rng.integers(0, 128, (n, GEN_DIMS[0])).astype(np.int8)
    y = np.arange(n) % GEN_DIMS[-1]
    genreg = get_strategy("genreg")(spec, mode="int8", population=GEN_P, survival=GEN_K / GEN_P,
                                    samples_per_class=GEN_PER_CLASS)
    openes = get_strategy("openes")(spec, mode="int8", population=GEN_P)
    B = GEN_PER_CLASS * GEN_DIMS[-1]
    es = EMNSSpec(EMNS_DIMS)
    em = EMNS(es, "select", mode="int8")
    Xe = rng.standard_normal((EMNS_N, EMNS_DIMS[0]))
    T = ((Xe[:, 0] + Xe[:, 1]) > 0).astype(np.int8)[:, None] * 16
    return "\n".join([
        "#include <stddef.h>", "#include <stdint.h>", model_c(spec, "ed"),
        f"#define ED_N {n}u", f"#define GR_P {GEN_P}u", f"#define GR_K {genreg.params.n_survivors()}u",
        f"#define GR_B {B}u", f"#define GR_PER_CLASS {GEN_PER_CLASS}u", f"#define OE_P {GEN_P}u",
        f"#define OE_B {GEN_OPENES_B}u", f"#define GR_CFG {genreg_cfg_c(genreg, 7, B)}",
        f"#define OE_CFG {openes_cfg_c(openes, 7)}",
        c_array("int8_t", "ed_X", X), c_array("uint8_t", "ed_y", y),
        c_emns.model_c(es, *es.initial_masks(), prefix="em"), c_emns.genome_c(em.init(7), "em"),
        f"#define EM_N {EMNS_N}u", f"#define EM_CFG {c_emns.cfg_c(em, 7, EMNS_N)}",
        c_array("int8_t", "em_X", quantize_inputs(Xe)), c_array("int8_t", "em_T", T), ""])


def insn_per_generation(target: str, tmp: Path, gens=(1, 3)):
    """Executed instructions of one generation / select step: count(G2) - count(G1) over G2 - G1 generations
    (init cancels). 'update' runs the same engine with a callback that only touches the genome."""
    import shutil
    from edge_evo.export import c_build
    from edge_evo.targets import firmware_dir
    if shutil.which("qemu-system-arm") is None:
        print("\ninstructions per generation: qemu-system-arm not installed")
        return
    fw = firmware_dir()
    (tmp / "gen_data.h").write_text(_gen_header())

    def per_gen(mode: int) -> float:
        c = {}
        for G in gens:
            src = tmp / f"gen_{target}_{mode}_{G}.c"
            src.write_text(f"#define MODE {mode}\n#define GENS {G}u\n#include \"gen_data.h\"\n" + GEN_APP)
            srcs = [fw / "edge_evo_rt.c", fw / "edge_evo_evolve.c", fw / "edge_evo_emns.c", src]
            elf = c_build.build(target, srcs, tmp / f"gen_{target}_{mode}_{G}.elf", include_dirs=[tmp],
                                warnings=("-std=c99",), stack_bytes=3072)  # one app for all modes; 16 KB micro:bit
            r = c_build.run(target, elf, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"generation firmware mode {mode} exited {r.returncode} on {target}")
            c[G] = _count_insns(target, elf, tmp / f"gen_{mode}_{G}.log")
        return (c[gens[1]] - c[gens[0]]) / (gens[1] - gens[0])

    n = sum((GEN_DIMS[l] + 1) * GEN_DIMS[l + 1] for l in range(len(GEN_DIMS) - 1))
    B = GEN_PER_CLASS * GEN_DIMS[-1]
    macs = GEN_DIMS[0] * GEN_DIMS[1] + GEN_DIMS[1] * GEN_DIMS[2]
    rows = [(f"GENREG {'-'.join(map(str, GEN_DIMS))} P={GEN_P} k={GEN_K} B={B} (sampled pred.)", 0, GEN_P * B),
            (f"OpenES {'-'.join(map(str, GEN_DIMS))} P={GEN_P} B={GEN_OPENES_B}", 2, GEN_P * GEN_OPENES_B),
            (f"EMNS select {EMNS_DIMS} full batch {EMNS_N}", 4, 2 * EMNS_N)]
    print(f"\nInstructions per generation on {target} (-O2 = c_build default; QEMU execution trace, "
          f"generations {gens[1]} minus {gens[0]}; n = {n} for the MLP):")
    print(f"  {'strategy':52s} {'total':>10s} {'update':>9s} {'evaluation':>10s} {'fwd passes':>10s}"
          f" {'insn/pass':>9s}")
    for name, mode, passes in rows:
        tot, upd = per_gen(mode), per_gen(mode + 1)
        ev = tot - upd
        print(f"  {name:52s} {tot:10.0f} {upd:9.0f} {ev:10.0f} {passes:10d} {ev / passes:9.0f}")
    print(f"  update = the same steps with a callback that only reads the genome (breeding / regeneration of every"
          f" child, trust, selection; OpenES offspring + mean/momentum update; EMNS mutate + mixture tables);"
          f" evaluation = total - update (forward passes, batch draw, argmax / Gumbel; {macs} MACs per MLP pass)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="cortex-m4f")
    p.add_argument("--no-insn", action="store_true", help="skip the instruction counts")
    p.add_argument("--gen-targets", nargs="*", default=["cortex-m4f"],
                   help="targets of the instructions-per-generation table (none: skip it)")
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
            for t in args.gen_targets:
                insn_per_generation(t, Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
