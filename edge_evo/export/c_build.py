"""Compile and run C for a target (host gcc, arm-none-eabi + QEMU system emulation, aarch64 + qemu-user).

The verification ladder of DESIGN.md section 6: the same sources are built for every target with its
toolchain from ``targets/*.toml`` and run under its emulator; the program prints a text transcript
(stdout, or ARM semihosting on bare metal) that callers diff against the Numba kernels.
Bare-metal builds link our own startup, linker script and memcpy/memset
(``targets/boards/cortex-m``; /work/shared/notes/mcu-emulation.md) and no libc.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..targets import Target, get_target, firmware_dir

log = logging.getLogger(__name__)

WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1",
              "-fno-omit-frame-pointer")
# -O2, not -Os: 8 vs 13 instructions per MAC on Cortex-M0+, 1.81 vs 1.88 on M4, for ~224 B more code
# (benchmarks/bench_c_inference.py)
BARE_METAL_FLAGS = ("-O2", "-ffunction-sections", "-fdata-sections", "-fno-tree-loop-distribute-patterns",
                    "-ffreestanding", "-nostdlib", "-Wl,--gc-sections")
DEFAULT_STACK = 8192


class ToolchainMissing(RuntimeError):
    """The compiler or emulator of a target is not installed (tests skip on it)."""


def require(target, emulate: bool = False) -> Target:
    """The Target, or ToolchainMissing naming the apt packages to install."""
    t = get_target(target)
    if not t.toolchain.available():
        how = (f"Debian: apt-get install {' '.join(t.toolchain.apt)}" if t.toolchain.apt
               else "not packaged for Debian: install the vendor toolchain and put it on PATH")
        raise ToolchainMissing(f"compiler {t.toolchain.cc!r} for target {t.name!r} not found ({how})")
    if emulate and t.kind != "host":
        if t.emulator is None:
            raise ToolchainMissing(f"target {t.name!r} has no emulator: it is a size check only")
        if not t.emulator.available():
            raise ToolchainMissing(f"emulator {t.emulator.command[0]!r} for target {t.name!r} not found; "
                                   f"install it (Debian: apt-get install {' '.join(t.emulator.apt)})")
    return t


def _memory(t: Target, emulated: bool) -> tuple[int, int]:
    """(flash, RAM) of the linker script: the device's, or what the emulated board also has."""
    em = t.emulator if emulated else None
    flash = min(x for x in (t.flash_bytes, em and em.flash_bytes) if x)
    ram = min(x for x in (t.ram_bytes, em and em.ram_bytes) if x)
    return flash, ram


def _linker_script(t: Target, out_dir: Path, stack_bytes: int, emulated: bool) -> Path:
    board = t.board_dir()
    if board is None:
        raise ValueError(f"target {t.name!r} has no board support folder; set toolchain.board in its TOML")
    flash, ram = _memory(t, emulated)
    text = (board / "board.ld.in").read_text()
    for k, v in (("FLASH_BYTES", flash), ("RAM_BYTES", ram), ("STACK_BYTES", stack_bytes)):
        text = text.replace(f"@{k}@", str(v))
    path = out_dir / f"{t.name}.ld"
    path.write_text(text)
    return path


def build(target, sources, out: Path, include_dirs=(), cflags=(), sanitize: bool = False,
          stack_bytes: int | None = None, warnings=WARNINGS, emulated: bool = True) -> Path:
    """Compile ``sources`` (+ the target's port and board files) into the executable/ELF ``out``.

    Bare metal: ``emulated`` lays the ELF out for the emulated board's memory (it must run there);
    False uses the real device's (for size measurements of models that only fit the device)."""
    t = require(target)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fw = firmware_dir()
    incs = [str(fw), str(fw / "port")] + [str(d) for d in include_dirs]
    cmd = [t.toolchain.cc, *warnings, *t.toolchain.cflags]
    srcs = [str(s) for s in sources]
    if t.bare_metal:
        ram = _memory(t, emulated)[1]
        stack = stack_bytes or min(DEFAULT_STACK, ram // 4)
        board = t.board_dir()
        ld = _linker_script(t, out.parent, stack, emulated)
        cmd += [*BARE_METAL_FLAGS, f"-T{ld}"]
        srcs += [str(board / "startup.c"), str(board / "mini_libc.c")]
        libs = ["-lgcc"]
    else:
        cmd += ["-O2"]
        srcs += [str(fw / "port" / "host.c")]
        libs = []
        if sanitize:
            cmd += list(SANITIZERS)
    cmd += [f"-I{d}" for d in incs] + list(cflags) + ["-o", str(out)] + srcs + libs
    log.debug("build: %s", " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{t.toolchain.cc} failed for target {t.name!r} (exit {r.returncode}):\n"
                           f"{r.stderr.strip()[-4000:]}")
    return out


@dataclass
class RunResult:
    stdout: str
    stderr: str
    returncode: int

    @property
    def transcript(self) -> list[str]:
        """Output lines without '#' diagnostics."""
        return [l for l in self.stdout.splitlines() if not l.startswith("#")]

    @property
    def stack_bytes(self) -> int | None:
        m = re.search(r"^# stack_bytes (\d+)$", self.stdout, re.M)
        return int(m.group(1)) if m else None


def run(target, exe: Path, timeout: float = 60.0, args=()) -> RunResult:
    """Run a built program natively or under the target's emulator; stdout is the transcript."""
    t = require(target, emulate=True)
    exe = str(Path(exe).resolve())
    if t.kind == "host":
        cmd = [exe, *args]
    elif t.bare_metal:
        cmd = [*t.emulator.command, "-display", "none", "-serial", "none", "-monitor", "none",
               "-chardev", "stdio,id=sh0", "-semihosting-config", "enable=on,target=native,chardev=sh0",
               "-kernel", exe]
    else:
        cmd = [*t.emulator.command, exe, *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{Path(exe).name} on target {t.name!r} did not finish in {timeout:.0f} s "
                           "(a hang or a lock-up in the emulator)") from None
    return RunResult(r.stdout, r.stderr, r.returncode)


def section_sizes(target, elf: Path) -> dict[str, int]:
    """Section name -> bytes from ``size -A`` (the NOLOAD stack reserve is its own '.stack' entry)."""
    t = get_target(target)
    tool = t.toolchain.size or "size"
    if shutil.which(tool) is None:
        raise ToolchainMissing(f"{tool!r} not found (binutils of target {t.name!r})")
    r = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def memory_use(sizes: dict[str, int]) -> dict[str, int]:
    """Flash = code + constants + initialised data; RAM = data + bss (+ the stack reserve if any)."""
    flash = sum(v for k, v in sizes.items() if k in (".text", ".rodata", ".data", ".ARM.exidx", ".init",
                                                      ".fini", ".eh_frame"))
    ram = sizes.get(".data", 0) + sizes.get(".bss", 0)
    return {"flash_bytes": flash, "ram_static_bytes": ram, "stack_reserve_bytes": sizes.get(".stack", 0)}


__all__ = ["build", "run", "section_sizes", "memory_use", "require", "RunResult", "ToolchainMissing"]
