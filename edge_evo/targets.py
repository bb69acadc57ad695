"""Device descriptions (``targets/*.toml``): memory, word size, FPU/DSP, toolchain and emulator.

One TOML file per device class (DESIGN.md section 3); this loader is the registry that the C exporter,
the CLI and the parametrised tests read, so adding a device is adding one file. A target's
``[toolchain]`` says how to compile for it (compiler, flags, bare-metal board support under
``targets/boards/``), its optional ``[emulator]`` how to run the result (QEMU machine and the memory
of the emulated board, which can be smaller than the real device's).
"""
from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

KINDS = ("mcu", "linux", "host")


def _data_dir(name: str) -> Path:
    """``targets`` or ``firmware_export``: packaged copy (edge_evo/_data/NAME) or the source tree's."""
    here = Path(__file__).resolve().parent
    for cand in (here / "_data" / name, here.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"edge_evo data folder {name!r} not found next to the package ({here}); "
                            "reinstall edge_evo (the wheel ships it as edge_evo/_data/" + name + ")")


def targets_dir() -> Path:
    return _data_dir("targets")


def firmware_dir() -> Path:
    """Folder of the C runtime (edge_evo_rt.h/.c, port/, templates/, test/)."""
    return _data_dir("firmware_export")


@dataclass(frozen=True)
class Toolchain:
    cc: str
    size: str = ""
    cflags: tuple[str, ...] = ()
    board: str | None = None          # folder under targets/ with startup, linker script template
    apt: tuple[str, ...] = ()         # Debian packages that provide it

    def available(self) -> bool:
        return shutil.which(self.cc) is not None


@dataclass(frozen=True)
class Emulator:
    machine: str
    command: tuple[str, ...]
    flash_bytes: int | None = None    # memory of the emulated board (linker script), if it differs
    ram_bytes: int | None = None
    apt: tuple[str, ...] = ()

    def available(self) -> bool:
        return shutil.which(self.command[0]) is not None


@dataclass(frozen=True)
class Target:
    """One device class. ``ram_bytes``/``flash_bytes`` None means not limited (Linux, host)."""
    name: str
    description: str
    kind: str
    arch: str
    cpu: str
    word_bits: int
    toolchain: Toolchain
    ram_bytes: int | None = None
    flash_bytes: int | None = None
    fpu: str = "none"
    dsp: bool = False
    emulator: Emulator | None = None
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"target {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.word_bits not in (8, 16, 32, 64):
            raise ValueError(f"target {self.name!r}: word_bits must be 8, 16, 32 or 64, got {self.word_bits}")
        for k in ("ram_bytes", "flash_bytes"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise ValueError(f"target {self.name!r}: {k} must be positive, got {v}")

    @property
    def bare_metal(self) -> bool:
        return self.kind == "mcu"

    def board_dir(self) -> Path | None:
        return None if self.toolchain.board is None else targets_dir() / self.toolchain.board

    def apt_packages(self) -> list[str]:
        return list(self.toolchain.apt) + (list(self.emulator.apt) if self.emulator else [])

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "kind": self.kind, "arch": self.arch,
                "cpu": self.cpu, "word_bits": self.word_bits, "ram_bytes": self.ram_bytes,
                "flash_bytes": self.flash_bytes, "fpu": self.fpu, "dsp": self.dsp,
                "toolchain": self.toolchain.cc,
                "emulator": self.emulator.machine if self.emulator else None}


def _parse(path: Path) -> Target:
    try:
        d = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"target file {path} is not valid TOML ({e}); fix the file") from None
    try:
        tc = d.pop("toolchain")
        em = d.pop("emulator", None)
        toolchain = Toolchain(cc=tc["cc"], size=tc.get("size", ""), cflags=tuple(tc.get("cflags", ())),
                              board=tc.get("board"), apt=tuple(tc.get("apt", ())))
        emulator = None if em is None else Emulator(
            machine=em["machine"], command=tuple(em["command"]), flash_bytes=em.get("flash_bytes"),
            ram_bytes=em.get("ram_bytes"), apt=tuple(em.get("apt", ())))
        t = Target(toolchain=toolchain, emulator=emulator, source=path, **d)
    except (KeyError, TypeError) as e:
        raise ValueError(f"target file {path}: missing or unknown key ({e}); see targets/host.toml "
                         "for the expected fields") from None
    if t.name != path.stem:
        raise ValueError(f"target file {path} declares name {t.name!r}; the name must match the file name")
    return t


@lru_cache(maxsize=None)
def _load_all(folder: str) -> dict[str, Target]:
    return {p.stem: _parse(p) for p in sorted(Path(folder).glob("*.toml"))}


def list_targets() -> list[str]:
    """Names of all known targets (file names of targets/*.toml)."""
    return sorted(_load_all(str(targets_dir())))


def get_target(name) -> Target:
    """The Target called ``name`` (a Target is returned unchanged)."""
    if isinstance(name, Target):
        return name
    targets = _load_all(str(targets_dir()))
    try:
        return targets[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown target {name!r}; known targets: {', '.join(sorted(targets))} "
                         f"(add a TOML file to {targets_dir()})") from None


__all__ = ["Target", "Toolchain", "Emulator", "list_targets", "get_target", "targets_dir", "firmware_dir"]
