"""Flash of the C runtime and the on-device evolution engines (no model), and the RAM budget of on-device
evolution on real targets (edge_evo.fit.fit_report).

    python benchmarks/bench_c_sizes.py [--targets cortex-m4f cortex-m0plus]

Code size, two views, each at -Os and -O2 (bare-metal flags of edge_evo.export.c_build otherwise):
  objects  ``arm-none-eabi-size -A`` of edge_evo_rt.o, edge_evo_evolve.o and edge_evo_emns.o compiled with
           -ffunction-sections; .text* + .rodata* of every function, grouped by the engine that calls it
           (shared RNG / breeding helpers are listed on their own; the ee_cls_* classification helper too).
  linked   what --gc-sections keeps in a firmware that calls only that engine, minus a firmware that
           calls only ee_mlp_forward (so libgcc helpers, e.g. 64-bit arithmetic
           routines, are counted where they are pulled in). 'runtime' is the forward-only
           firmware minus an empty main (startup + memcpy/memset excluded).
RAM: fit_report of a 784-32-10 MLP with on-device GENREG on cortex-m7 (largest population / survivors /
batch that fit are searched the same way fit_report's suggestions are), and small models with GENREG,
OpenES and EMNS (EE_EMNS_MEM_BYTES = 8n + 512N + 4; fit_report does not model EMNS) on cortex-m0plus.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

OPTS = ("-Os", "-O2")

# function -> group; statics shared by several engines are "shared"
_GROUPS = (
    (re.compile(r"^ee_genreg_|^ee_init_genome$"), "GENREG"),
    (re.compile(r"^ee_openes_|^shaping_weight|^rank_of"), "OpenES"),
    (re.compile(r"^ee_cls_"), "cls helper"),
    (re.compile(r"^ee_emns_|^copy16|^act_shift|^ee_gauss$"), "EMNS"),
    (re.compile(r"^ee_breed_genome|^mutate|^ee_mix32|^ee_u32|^ee_key|^ee_gauss_scaled|^ee_fnv1a|^tensor_size"),
     "GENREG/OpenES shared"),
)

APPS = {
    "empty": "int main(void) { return 0; }\n",
    "runtime": r"""
#include "edge_evo_rt.h"
static const uint16_t dims[3] = {16u, 8u, 4u};
static int8_t lut[256], g[172], x[16], scratch[EE_MLP_SCRATCH_BYTES(8)];
static int32_t logits[4];
int main(void)
{
    ee_mlp_t m = {2u, dims, g, lut, 6u, 6u, 7u, 5u, 7u};
    return ee_mlp_forward(&m, x, logits, scratch) + (int)ee_argmax(logits, 4u);
}
""",
    "GENREG": r"""
#include "edge_evo_evolve.h"
static const uint16_t dims[3] = {16u, 8u, 4u};
static int8_t lut[256], x[16], scratch[EE_MLP_SCRATCH_BYTES(8)];
static int32_t logits[4];
static const ee_mlp_t model = {2u, dims, NULL, lut, 6u, 6u, 7u, 5u, 7u};
static uint32_t mem[EE_GENREG_MEM_BYTES(8, 2, 172, 8) / 4u + 1u];
static ee_genreg_t evo;
static void eval(void *ctx, const int8_t *g, uint32_t gen, uint32_t i, uint8_t *correct)
{
    ee_mlp_t m = model;
    uint32_t b;
    (void)ctx; (void)gen; (void)i;
    m.params = g;
    for (b = 0; b < 8u; ++b) {
        x[0] = (int8_t)b;
        (void)ee_mlp_forward(&m, x, logits, scratch);
        correct[b] = (uint8_t)(ee_argmax(logits, 4u) == (int)(b & 3u));
    }
}
int main(void)
{
    static const ee_genreg_cfg_t cfg = {1u, 8u, 2u, 8u, 300647710u, 437, 437, 131, 2560, -384, 983, 32, 6};
    if (ee_genreg_init(&evo, &cfg, &model, mem, sizeof mem) != 0) { return 1; }
    return ee_genreg_step(&evo, eval, NULL) + (int)ee_genreg_best(&evo)[0];
}
""",
    "OpenES": r"""
#include "edge_evo_evolve.h"
static const uint16_t dims[3] = {16u, 8u, 4u};
static int8_t lut[256], x[16], scratch[EE_MLP_SCRATCH_BYTES(8)], best[172];
static int32_t logits[4];
static const ee_mlp_t model = {2u, dims, NULL, lut, 6u, 6u, 7u, 5u, 7u};
static uint32_t mem[EE_OPENES_MEM_BYTES(8, 172) / 4u + 1u];
static ee_openes_t evo;
static int32_t fit(void *ctx, const int8_t *g, uint32_t gen, uint32_t i)
{
    ee_mlp_t m = model;
    (void)ctx; (void)gen; (void)i;
    m.params = g;
    (void)ee_mlp_forward(&m, x, logits, scratch);
    return logits[0];
}
int main(void)
{
    static const ee_openes_cfg_t cfg = {1u, 8u, 0u, 58982, 65536, 0, 65536, 65536, 0,
                                        {1419, 1419}, {0, 0}, {580, 8192}};
    if (ee_openes_init(&evo, &cfg, &model, mem, sizeof mem) != 0) { return 1; }
    (void)ee_openes_step(&evo, fit, NULL);
    ee_openes_best(&evo, best);
    return best[0];
}
""",
    "EMNS": r"""
#include "edge_evo_emns.h"
#include "edge_evo_rt.h"
static const uint16_t dims[3] = {16u, 8u, 4u};
static int8_t lut[256], g[172], x[16], scratch[EE_MLP_SCRATCH_BYTES(8)];
static int32_t logits[4];
static const uint32_t layout[9] = {1u, 1u, 0u, 3u, 8u, 9u, 10u, 0u, 0u};
static int8_t agg_t[768], act_t[1280], X[4], T[4], y[1], escratch[8];
static const uint8_t nmask[1] = {1u}, cmask[1] = {1u};
static const ee_emns_model_t em = {1u, layout, 11u, 1u, 1u, 1u, agg_t, act_t, nmask, cmask};
static int16_t values0[11];
static uint8_t resist0[11];
static uint32_t mem[EE_EMNS_MEM_BYTES(11, 1) / 4u + 1u];
static ee_emns_t e;
int main(void)
{
    static const ee_emns_cfg_t cfg = {1u, 167772, 16777, 1677721, 78643, 52428, 65536, 10, 0u, 1, 1, 1};
    ee_emns_data_t d = {X, T, 4u, 1u, 1u, 0u, 1u, y, escratch};
    ee_mlp_t m = {2u, dims, g, lut, 6u, 6u, 7u, 5u, 7u};
    if (ee_emns_init(&e, &cfg, &em, values0, resist0, mem, sizeof mem) != 0) { return 1; }
    return ee_emns_step(&e, ee_emns_sse, &d) + ee_mlp_forward(&m, x, logits, scratch)
        + (int)ee_emns_hash(ee_emns_parent(&e)->values, NULL, 11u);
}
""",
}
# which firmware_export sources each app links (the runtime is in all but 'empty', so deltas exclude it)
_SOURCES = {"empty": (), "runtime": ("edge_evo_rt.c",), "GENREG": ("edge_evo_rt.c", "edge_evo_evolve.c"),
            "OpenES": ("edge_evo_rt.c", "edge_evo_evolve.c"), "EMNS": ("edge_evo_rt.c", "edge_evo_emns.c")}


def object_sizes(target: str, opt: str, tmp: Path) -> dict[str, int]:
    """group -> .text* + .rodata* bytes of the three firmware objects."""
    from edge_evo.export.c_build import BARE_METAL_FLAGS
    from edge_evo.targets import firmware_dir, get_target
    t = get_target(target)
    fw = firmware_dir()
    flags = [f for f in BARE_METAL_FLAGS if not f.startswith(("-O", "-Wl"))]
    out: dict[str, int] = {}
    for name in ("edge_evo_rt", "edge_evo_evolve", "edge_evo_emns"):
        obj = tmp / f"{name}{opt}.o"
        subprocess.run([t.toolchain.cc, "-std=c99", *t.toolchain.cflags, *flags, opt, f"-I{fw}", f"-I{fw / 'port'}",
                        "-c", str(fw / f"{name}.c"), "-o", str(obj)], check=True, capture_output=True)
        r = subprocess.run([t.toolchain.size, "-A", str(obj)], check=True, capture_output=True, text=True)
        for line in r.stdout.splitlines():
            p = line.split()
            if len(p) < 2 or not p[1].isdigit() or not p[0].startswith((".text", ".rodata")) or int(p[1]) == 0:
                continue
            fn = p[0].split(".", 2)[-1] if p[0].count(".") >= 2 else p[0]
            if name == "edge_evo_rt":
                group = "runtime (edge_evo_rt.o)"
            else:
                group = next((g for rx, g in _GROUPS if rx.search(fn)),
                             "EMNS" if name == "edge_evo_emns" else "GENREG/OpenES shared")
                # the EMNS object has its own copies of the RNG helpers
                if name == "edge_evo_emns":
                    group = "EMNS"
            out[group] = out.get(group, 0) + int(p[1])
    return out


def linked_sizes(target: str, opt: str, tmp: Path) -> dict[str, int]:
    """app -> flash bytes of the firmware (memory_use: .text + .rodata + .data ...)."""
    from edge_evo.export import c_build
    from edge_evo.targets import firmware_dir
    fw = firmware_dir()
    out = {}
    for app, text in APPS.items():
        src = tmp / f"sz_{app}{opt}.c"
        src.write_text(text)
        elf = c_build.build(target, [*(fw / s for s in _SOURCES[app]), src], tmp / f"sz_{app}{opt}.elf",
                            cflags=[opt], emulated=False)
        out[app] = c_build.memory_use(c_build.section_sizes(target, elf))["flash_bytes"]
        out[app + " libgcc"] = _libgcc_bytes(target, elf)
    return out


def _libgcc_bytes(target: str, elf: Path) -> int:
    """Bytes of libgcc routines (__aeabi_*, __*df3, ...) linked into elf: names starting with '__'."""
    from edge_evo.targets import get_target
    nm = get_target(target).toolchain.cc.replace("gcc", "nm")
    r = subprocess.run([nm, "-S", str(elf)], check=True, capture_output=True, text=True)
    sizes = {}   # by address: __aeabi_dadd and __adddf3 are one routine
    for line in r.stdout.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "Tt" and p[3].startswith("__"):
            sizes[p[0]] = max(sizes.get(p[0], 0), int(p[1], 16))
    return sum(sizes.values())


def code_table(target: str, tmp: Path):
    obj = {o: object_sizes(target, o, tmp) for o in OPTS}
    lnk = {o: linked_sizes(target, o, tmp) for o in OPTS}
    print(f"\nCode (flash) bytes without the model, {target}: objects (.text+.rodata of the functions)")
    groups = ["runtime (edge_evo_rt.o)", "GENREG", "OpenES", "GENREG/OpenES shared", "cls helper", "EMNS"]
    print(f"  {'part':28s} " + " ".join(f"{o:>7s}" for o in OPTS))
    for g in groups:
        print(f"  {g:28s} " + " ".join(f"{obj[o].get(g, 0):7d}" for o in OPTS))
    print(f"  {'edge_evo_evolve.o total':28s} " + " ".join(
        f"{sum(v for k, v in obj[o].items() if k in groups[1:5]):7d}" for o in OPTS))
    print(f"\nLinked firmwares (--gc-sections; engine = firmware(runtime + engine) - firmware(runtime),"
          " libgcc included):")
    print(f"  {'part':28s} " + " ".join(f"{o:>7s}" for o in OPTS) + "   runtime+engine (<= 4096 at -Os?)")
    rt = {o: lnk[o]["runtime"] - lnk[o]["empty"] for o in OPTS}
    print(f"  {'runtime (forward + argmax)':28s} " + " ".join(f"{rt[o]:7d}" for o in OPTS))
    for eng in ("GENREG", "OpenES", "EMNS"):
        d = {o: lnk[o][eng] - lnk[o]["runtime"] for o in OPTS}
        lib = {o: lnk[o][eng + " libgcc"] - lnk[o]["runtime libgcc"] for o in OPTS}
        tot = rt["-Os"] + d["-Os"]
        print(f"  {eng + ' engine':28s} " + " ".join(f"{d[o]:7d}" for o in OPTS)
              + f"   {tot:5d} {'yes' if tot <= 4096 else 'no'}"
              + (f"  (libgcc {lib['-Os']} / {lib['-O2']} B: {tot - lib['-Os']} B without)" if lib["-Os"] else ""))
    print(f"  (startup + memcpy/memset of the board files: {lnk['-Os']['empty']} B at -Os, not counted)")


def ram_table():
    from edge_evo.export.c_emns import emns_ram_bytes
    from edge_evo.fit import fit_report
    from edge_evo.models.emns import EMNSSpec
    print("\nRAM of on-device evolution (edge_evo.fit.fit_report; B = bytes):")
    print(f"  {'target':14s} {'model':10s} {'engine':7s} {'options':40s} {'evolution':>9s} {'RAM total':>9s}"
          f" {'budget':>7s} fits")

    def row(target, dims, engine, **o):
        r = fit_report(dims, target, engine, **o)
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items() if not k.endswith("_bytes"))
        print(f"  {target:14s} {dims:10s} {engine:7s} {opts:40s} {r['ram'].get('evolution_bytes', 0):9d}"
              f" {r['ram_bytes']:9d} {r['budget']['ram_bytes']:7d} {'yes' if r['fits'] else 'no'}")
        return r
    # 784-32-10 on the M7: default P=200, B=200; the most survivors that fit
    r = row("cortex-m7", "784-32-10", "genreg", population=200, survivors=100, batch=200)
    k = next((int(s.split("<=")[1]) for s in r["suggestions"] if s.startswith("survivors")), None)
    if k:
        row("cortex-m7", "784-32-10", "genreg", population=200, survivors=k, batch=200)
    row("cortex-m7", "784-32-10", "genreg", population=200, survivors=2, batch=200)
    row("cortex-m7", "784-32-10", "openes", population=64)
    for dims in ("16-8-4", "64-16-10"):
        row("cortex-m0plus", dims, "genreg", population=64, survivors=8, batch=40)
        row("cortex-m0plus", dims, "openes", population=32)
    spec = EMNSSpec((2, 8, 4, 1))
    b = emns_ram_bytes(spec.n_params, spec.n_neurons)
    print(f"  {'cortex-m0plus':14s} {'2-8-4-1':10s} {'emns':7s} {'select (n=%d, N=%d)' % (spec.n_params, spec.n_neurons):40s}"
          f" {b:9d} {'':>9s} {270336:7d} {'yes' if b + 2048 <= 270336 else 'no'}  (8n + 512N + 4; +~2 KB stack/IO)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", default=["cortex-m4f"])
    args = p.parse_args(argv)
    from edge_evo.export import c_build
    with tempfile.TemporaryDirectory() as d:
        for t in args.targets:
            try:
                c_build.require(t)
            except c_build.ToolchainMissing as e:
                print(f"{t}: skipped: {e}")
                continue
            code_table(t, Path(d))
    ram_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
