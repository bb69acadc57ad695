"""Executed instructions per MAC of dense int8 inference (firmware_export/edge_evo_rt.c) on emulated
Cortex-M cores, -Os against -O2, for the 784-64-10 MLP (50,816 MACs per forward pass).

    python benchmarks/bench_c_inference.py [--targets cortex-m4f cortex-m0plus] [--opt Os,O2]
                                           [--runtime PATH/edge_evo_rt.c]

Method (the one of bench_c_evolve.py, whose trace parser it shares): a firmware runs the forward
pass 1 and 3 times under QEMU with ``-d in_asm,exec,nochain``; every executed translation block is
logged and its guest instructions counted from its disassembly; (count(3) - count(1)) / 2 / MACs is
the cost of one MAC, the per-layer bias, requantization, LUT and argmax work included. The genome is
a const array (flash), as an exported model's, so the 784-64-10 model also runs on the micro:bit's
16 KB of RAM. ``--runtime`` measures another copy of the runtime (e.g. the plain C loop before the
DSP path: ``git show f2d34ef:firmware_export/edge_evo_rt.c > /tmp/rt_plain.c``).

Cycles: QEMU does not model timing, so the ``est. cycles`` column applies the Cortex-M4 Technical
Reference Manual's issue cycles to the executed instruction mix (load/store 2, a pipelined load after
another 1, multiply/SIMD/ALU 1, taken branch 1 + pipeline refill 2, LDM/STM/PUSH/POP 1 + registers) and
assumes zero-wait-state memory. It is an estimate for the M4 only (the M0+ has a 2-stage pipeline and
single-cycle multiplier options that differ by vendor; its column is the same model, read it as rough).
"""
from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DIMS = (784, 64, 10)
MACS = sum(DIMS[l] * DIMS[l + 1] for l in range(len(DIMS) - 1))


def _app(reps: int) -> str:
    n = sum((DIMS[l] + 1) * DIMS[l + 1] for l in range(len(DIMS) - 1))
    genome = [((i * 37) % 255) - 127 for i in range(n)]
    rows = ",\n".join(", ".join(map(str, genome[i:i + 32])) for i in range(0, n, 32))
    return f"""
#include "edge_evo_rt.h"
static const int8_t genome[{n}] = {{
{rows}
}};
static const uint16_t dims[3] = {{{DIMS[0]}u, {DIMS[1]}u, {DIMS[2]}u}};
static int8_t lut[256];
static int8_t x[{DIMS[0]}];
static int32_t logits[{DIMS[2]}];
static int8_t scratch[EE_MLP_SCRATCH_BYTES({DIMS[1]})];
int main(void)
{{
    ee_mlp_t m = {{2u, dims, genome, lut, 6u, 6u, 7u, 5u, 7u}};
    uint32_t i;
    int r = 0;
    for (i = 0; i < 256u; ++i) {{ lut[i] = (int8_t)((int32_t)i - 128 == -128 ? -127 : (int32_t)i - 128); }}
    for (i = 0; i < sizeof x; ++i) {{ x[i] = (int8_t)(i % 128u); }}
    for (i = 0; i < {reps}u; ++i) {{ r += ee_mlp_forward(&m, x, logits, scratch); }}
    return r & 0;
}}
"""


def _build(target: str, runtime: Path, opt: str, reps: int, tmp: Path) -> Path:
    from edge_evo.export import c_build
    src = tmp / f"infer_{target}{opt}_{reps}.c"
    src.write_text(_app(reps))
    # a later -O wins over BARE_METAL_FLAGS' -Os
    return c_build.build(target, [runtime, src], tmp / f"infer_{target}{opt}_{reps}.elf", cflags=[opt])


# Cortex-M4 TRM issue cycles (zero-wait-state memory); everything not listed is 1.
_LOAD = re.compile(r"^(ldr|str)(s?[bh]|d|ex)?(\.w)?$")
_MULTI = re.compile(r"^(ldm|stm|push|pop|vpush|vpop)")


def trace_mix(target: str, elf: Path, log: Path) -> tuple[int, collections.Counter, float]:
    """(executed instructions, mnemonic counts, estimated M4 cycles) from QEMU's execution trace."""
    from edge_evo.targets import get_target
    t = get_target(target)
    cmd = [*t.emulator.command, "-display", "none", "-serial", "none", "-monitor", "none",
           "-semihosting-config", "enable=on,target=native", "-d", "in_asm,exec,nochain", "-D", str(log),
           "-kernel", str(elf)]
    subprocess.run(cmd, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    blocks: dict[int, list[tuple[int, str, str]]] = {}
    cur = None
    mix: collections.Counter = collections.Counter()
    cycles = 0.0
    with open(log) as f:
        for line in f:
            if line.startswith("IN:"):
                cur = None
                continue
            m = re.match(r"^0x([0-9a-f]{8}):\s+(?:[0-9a-f]{4,8}\s+){1,2}\s*(\S+)\s*(.*)$", line)
            if m:
                a = int(m.group(1), 16)
                if cur is None:
                    cur = a
                    blocks[cur] = []
                blocks[cur].append((a, m.group(2), m.group(3)))
                continue
            if line.strip() == "":
                cur = None
                continue
            m = re.match(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", line)
            if m:
                prev_load = False
                for _, op, args in blocks.get(int(m.group(1), 16), ()):
                    mix[op] += 1
                    if _LOAD.match(op):
                        cycles += 1 if prev_load and not op.startswith("str") else 2
                        prev_load = True
                        continue
                    prev_load = False
                    if _MULTI.match(op):
                        cycles += 1 + max(1, args.count(",") + 1)
                    elif op.startswith(("b", "cb")) and not op.startswith(("bic", "bfi", "bfc")):
                        # the block ends here: count every branch as taken (loop back-edges are)
                        cycles += 3
                    else:
                        cycles += 1
    return sum(mix.values()), mix, cycles


def measure(target: str, runtime: Path, opt: str, tmp: Path) -> dict:
    res = {}
    for reps in (1, 3):
        elf = _build(target, runtime, opt, reps, tmp)
        res[reps] = trace_mix(target, elf, tmp / f"trace_{target}{opt}_{reps}.log")
    per_pass = (res[3][0] - res[1][0]) / 2
    mix = res[3][1] - res[1][1]
    cyc = (res[3][2] - res[1][2]) / 2
    from edge_evo.export import c_build
    sizes = c_build.section_sizes(target, _build(target, runtime, opt, 1, tmp))
    return {"insn_per_pass": per_pass, "insn_per_mac": per_pass / MACS, "cycles_per_mac": cyc / MACS,
            "mix_per_mac": {k: v / 2 / MACS for k, v in mix.most_common(6)}, "text_bytes": sizes[".text"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", default=["cortex-m4f", "cortex-m0plus"])
    p.add_argument("--opt", default="Os,O2", help="comma-separated optimisation levels to compare (Os,O2,O3)")
    p.add_argument("--runtime", type=Path, help="edge_evo_rt.c to measure (default: firmware_export's)")
    args = p.parse_args(argv)
    import shutil
    from edge_evo.export import c_build
    from edge_evo.targets import firmware_dir
    runtime = (args.runtime or firmware_dir() / "edge_evo_rt.c").resolve()
    if shutil.which("qemu-system-arm") is None:
        print("skipped: qemu-system-arm not installed (apt-get install qemu-system-arm)")
        return 0
    print(f"Dense int8 inference {'-'.join(map(str, DIMS))} ({MACS} MACs per pass), runtime {runtime}")
    print("command: python benchmarks/bench_c_inference.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print(f"{'target':14s} {'flags':5s} {'insn/pass':>10s} {'insn/MAC':>9s} {'est. cycles/MAC':>16s} "
          f"{'.text B':>8s}  top instructions per MAC")
    with tempfile.TemporaryDirectory() as d:
        for target in args.targets:
            try:
                c_build.require(target, emulate=True)
            except c_build.ToolchainMissing as e:
                print(f"{target:14s} skipped: {e}")
                continue
            for opt in ["-" + o.strip().lstrip("-") for o in args.opt.split(",")]:
                r = measure(target, runtime, opt, Path(d))
                mix = ", ".join(f"{k} {v:.2f}" for k, v in r["mix_per_mac"].items())
                print(f"{target:14s} {opt:5s} {r['insn_per_pass']:10.0f} {r['insn_per_mac']:9.2f} "
                      f"{r['cycles_per_mac']:16.2f} {r['text_bytes']:8d}  {mix}")
    print("insn/MAC: executed instructions per MAC from QEMU's trace (target on the M4: <= 2); "
          "est. cycles: Cortex-M4 TRM issue cycles over the executed mix, zero wait states.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
