"""Datasets of the seeds' benchmarks: MNIST, Fashion-MNIST, scikit-learn digits, EMNN's line
Y = 2X + 3, and GENREG's rendered alphabet A-Z.

MNIST: Y. LeCun, C. Cortes, C. Burges (CC BY-SA 3.0). Fashion-MNIST: H. Xiao, K. Rasul,
R. Vollgraf, arXiv:1708.07747 (MIT). Both come as four gzipped IDX files whose md5 are fixed
(the table below); every file is checked against it before use, wherever it came from.

Lookup order of ``load_mnist``: the ``path`` argument, ``$EDGE_EVO_DATA`` (``<dir>/<kind>/`` or
the files directly in ``<dir>``), the cache (``$EDGE_EVO_CACHE/<kind>/``, default
``~/.cache/edge_evo/<kind>/``), then a download into the cache (temp file, fsync, rename; a
file whose md5 does not match is deleted, never kept).
"""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .. import rng
from .idx import read_idx

log = logging.getLogger(__name__)

KINDS = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
N_CLASSES = 10
DOWNLOAD_TIMEOUT_S = 60.0

# md5 of local files already checked in this process: (realpath, size, mtime_ns) -> md5
_MD5_SEEN: dict[tuple, str] = {}
# parsed arrays of this process (read-only): (kind, split, realpaths, mtimes) -> (images, labels)
_ARRAYS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


# ------------------------------------------------------------------ helpers
def _check_kind_split(kind, split):
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {KINDS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def md5_file(path) -> str:
    """md5 hex digest of a file, remembered per process (keyed by path, size and mtime)."""
    st = os.stat(path)
    k = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if k not in _MD5_SEEN:
        h = hashlib.md5()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _MD5_SEEN[k] = h.hexdigest()
    return _MD5_SEEN[k]


def cache_dir(kind: str) -> Path:
    """Cache folder of one dataset kind: ``$EDGE_EVO_CACHE/<kind>`` or ``~/.cache/edge_evo/<kind>``."""
    root = os.environ.get("EDGE_EVO_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "edge_evo"
    return base / kind


def shared_data_dir() -> Path | None:
    """The project's data folder for tests and benchmarks: ``$EDGE_EVO_DATA`` if set, else
    ``../shared/data`` next to the repository root (None when neither exists)."""
    env = os.environ.get("EDGE_EVO_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    repo = Path(__file__).resolve().parents[2]
    cand = repo.parent / "shared" / "data"
    return cand if cand.is_dir() else None


def _verify(path: Path, kind: str, fname: str) -> bool:
    return md5_file(path) == MD5[kind][fname]


def _md5_error(path: Path, kind: str, fname: str) -> ValueError:
    got = md5_file(path)
    other = [k for k in KINDS if MD5[k][fname] == got and k != kind]
    hint = (f" (it is the {other[0]} file: point the loader at the {kind} folder)" if other
            else "; the file is corrupt or a different version: delete it and re-download, "
                 "or pass verify=False for your own IDX files")
    return ValueError(f"{path}: md5 {got} != {MD5[kind][fname]} expected for {kind} {fname}{hint}")


def _find_in(folder: Path, kind: str, names, verify: bool) -> dict[str, Path] | None:
    """Paths of ``names`` in ``folder`` or ``folder/<kind>``, or None if any is missing."""
    for d in (folder / kind, folder):
        paths = {n: d / n for n in names}
        if all(p.is_file() for p in paths.values()):
            # a folder holding the other kind's files directly must not be taken for this kind
            if d == folder and verify and not all(_verify(p, kind, n) for n, p in paths.items()):
                bad = next(n for n, p in paths.items() if not _verify(p, kind, n))
                raise _md5_error(paths[bad], kind, bad)
            return paths
    return None


# ------------------------------------------------------------------ download
def download_file(url: str, dest: Path, md5: str | None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically (edge_evo.io.atomic_write_bytes).

    If ``md5`` is given and the bytes do not match, nothing is written and ValueError is raised.
    Network failures raise OSError (urllib.error.URLError) with the URL in the message.
    """
    from ..io import atomic_write_bytes

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()          # IDX files are <= 26 MB: checked in memory, then written once
    except (urllib.error.URLError, OSError) as e:
        raise OSError(f"download of {url} failed ({e}); check the network or pass "
                      "path=/folder/with/the/files") from None
    digest = hashlib.md5(data).hexdigest()
    if md5 is not None and digest != md5:
        raise ValueError(f"{url}: downloaded md5 {digest} != expected {md5}; the mirror "
                         "serves a different file: try another base_url")
    atomic_write_bytes(dest, data)
    log.info("downloaded %s -> %s", url, dest)
    return dest

def _download(kind: str, names, base_url: str | None) -> dict[str, Path]:
    folder = cache_dir(kind)
    urls = (base_url,) if base_url else MIRRORS[kind]
    out = {}
    for n in names:
        p = folder / n
        if p.is_file() and _verify(p, kind, n):
            out[n] = p
            continue
        errors = []
        for base in urls:
            try:
                out[n] = download_file(base.rstrip("/") + "/" + n, p, MD5[kind][n])
                break
            except (OSError, ValueError) as e:
                log.warning("%s", e)
                errors.append(str(e))
        else:
            raise OSError(f"could not download {kind} {n}: " + " | ".join(errors))
    return out


def _locate(kind: str, split: str, path, download: bool, base_url, verify: bool) -> dict[str, Path]:
    names = FILES[split]
    if path is not None:
        found = _find_in(Path(path), kind, names, verify)
        if found is None:
            raise ValueError(f"{path}: no {kind} files {list(names)} there (nor in {Path(path) / kind}); "
                             "put the IDX .gz files there or omit path= to use the cache/download")
        return found
    env = os.environ.get("EDGE_EVO_DATA")
    if env:
        try:
            found = _find_in(Path(env), kind, names, verify)
        except ValueError as e:   # e.g. the folder holds the other kind's files directly
            log.warning("EDGE_EVO_DATA: %s; trying the cache", e)
            found = None
        if found is not None:
            return found
        log.info("EDGE_EVO_DATA=%s has no %s %s files; trying the cache", env, kind, split)
    cached = _find_in(cache_dir(kind), kind, names, verify=False)
    if cached is not None:
        bad = [n for n, p in cached.items() if verify and not _verify(p, kind, n)]
        if not bad:
            return cached
        if not download:
            raise _md5_error(cached[bad[0]], kind, bad[0])
        log.warning("cached %s files %s fail their md5; downloading again", kind, bad)
    if not download:
        raise ValueError(f"{kind} {split} files not found (path=None, EDGE_EVO_DATA unset or without them, "
                         f"cache {cache_dir(kind)} empty) and download=False; pass path= or download=True")
    return _download(kind, names, base_url)


# ------------------------------------------------------------------ public loaders
def load_mnist(kind: str = "mnist", split: str = "train", path=None, download: bool = True,
               base_url: str | None = None, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST as ``(images uint8 [N, 784], labels uint8 [N])``.

    ``path``: a folder holding the IDX .gz files (or a ``<kind>/`` subfolder with them).
    Otherwise ``$EDGE_EVO_DATA``, the cache, then a download from ``base_url`` (default: public
    mirrors) when ``download``. Files are md5-checked unless ``verify=False`` (own IDX files).
    The arrays are cached per process and returned read-only; copy them to modify.
    """
    _check_kind_split(kind, split)
    paths = _locate(kind, split, path, download, base_url, verify)
    img_name, lab_name = FILES[split]
    if verify:
        for n, p in paths.items():
            if not _verify(p, kind, n):
                raise _md5_error(p, kind, n)
    ck = (kind, split) + tuple((str(p.resolve()), p.stat().st_mtime_ns) for p in paths.values())
    if ck in _ARRAYS:
        return _ARRAYS[ck]
    images = read_idx(paths[img_name], expect_ndim=3)
    labels = read_idx(paths[lab_name], expect_ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(f"{paths[img_name].parent}: images/labels must be uint8 IDX, got "
                         f"{images.dtype}/{labels.dtype}; re-download the files")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{paths[img_name]}: {images.shape[0]} images but {labels.shape[0]} labels in "
                         f"{paths[lab_name].name}; the files do not belong together: re-download them")
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise ValueError(f"{paths[lab_name]}: label {int(labels.max())} out of range 0..{N_CLASSES - 1}; "
                         "the labels file is corrupt: re-download it")
    images = np.ascontiguousarray(images.reshape(images.shape[0], -1))
    images.setflags(write=False)
    labels.setflags(write=False)
    _ARRAYS[ck] = (images, labels)
    return images, labels


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (1,797 images, offline) as ``(uint8 [N, 64] in 0..255, uint8 [N])``.

    The 0..16 intensities are scaled by 255/16 with round half up.
    """
    try:
        from sklearn.datasets import load_digits as _sk_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn: pip install edge-evo[digits]") from None
    d = _sk_digits()
    x = np.asarray(d.data, dtype=np.float64)
    check_finite(x, "digits data")
    images = np.floor(x * (255.0 / 16.0) + 0.5).clip(0, 255).astype(np.uint8)
    return images, np.asarray(d.target, dtype=np.uint8)


def make_linear(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """EMNN's regression task Y = 2X + 3: ``(X float32 [n, 1] uniform in [-1, 1], Y float32 [n, 1])``.

    X comes from the counter-based RNG (stream key(seed, 0, 0)), so it is the same everywhere.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    u = rng.u32_stream(seed, 0, 0, n).astype(np.float64)
    x = (u / 2.0 ** 32 * 2.0 - 1.0).astype(np.float32)[:, None]
    return x, (2.0 * x + 3.0).astype(np.float32)


def check_finite(x, name: str = "data") -> None:
    """Raise ValueError if a float array holds NaN or inf."""
    a = np.asarray(x)
    if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} holds {bad} NaN/inf value(s); clean or impute them before use")


# ------------------------------------------------------------------ alphabet
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts", "/System/Library/Fonts",
              "C:/Windows/Fonts", str(Path.home() / ".fonts"), str(Path.home() / ".local/share/fonts"))


def find_fonts(limit: int = 8) -> list[str]:
    """Up to ``limit`` TrueType fonts found in the usual system folders (sorted, deterministic)."""
    found = []
    for d in _FONT_DIRS:
        if os.path.isdir(d):
            for root, _, files in os.walk(d):
                found += [os.path.join(root, f) for f in files if f.lower().endswith((".ttf", ".otf"))]
    return sorted(found)[:limit]


def render_alphabet(size: int = 100, fonts=None, variations: int = 0, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """GENREG's second benchmark: the letters A-Z rendered white on black.

    Returns ``(images uint8 [26 * F * (1 + variations), size * size], labels uint8)`` with F the
    number of fonts. ``fonts``: None = Pillow's built-in font (works offline, identical on every
    machine), ``"system"`` = fonts found by ``find_fonts``, or a list of .ttf/.otf paths.
    Each font gives the centred letters, then ``variations`` copies with a small random shift
    (<= 8 % of size), scale (0.85..1.1) and rotation (+-12 degrees) drawn from the counter-based
    RNG; order: font, variation, letter. Labels are 0..25 (A = 0).
    """
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ImportError("render_alphabet needs Pillow: pip install edge-evo[alphabet]") from None
    size, variations = int(size), int(variations)
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    if variations < 0:
        raise ValueError(f"variations must be >= 0, got {variations}")
    if fonts is None:
        font_specs = [None]
    elif isinstance(fonts, str) and fonts == "system":
        font_specs = find_fonts() or [None]
    else:
        font_specs = [os.fspath(f) for f in ([fonts] if isinstance(fonts, (str, os.PathLike)) else fonts)]
        if not font_specs:
            raise ValueError("fonts is an empty list; pass None for the built-in font")
    letters = [chr(ord("A") + i) for i in range(26)]
    n_var = 1 + variations
    draws = rng.u32_stream(seed, 0, 0, 4 * len(font_specs) * n_var * 26).reshape(-1, 4)
    frac = draws.astype(np.float64) / 2.0 ** 32           # uniform [0, 1)
    images, labels, row = [], [], 0
    for fi, fs in enumerate(font_specs):
        for v in range(n_var):
            for li, ch in enumerate(letters):
                r = frac[row]
                row += 1
                scale = 1.0 if v == 0 else 0.85 + 0.25 * r[0]
                angle = 0.0 if v == 0 else (r[1] * 2 - 1) * 12.0
                dx = 0.0 if v == 0 else (r[2] * 2 - 1) * 0.08 * size
                dy = 0.0 if v == 0 else (r[3] * 2 - 1) * 0.08 * size
                images.append(_render_letter(Image, ImageDraw, ImageFont, ch, fs, size, scale, angle, dx, dy))
                labels.append(li)
    return np.stack(images), np.asarray(labels, dtype=np.uint8)


def _render_letter(Image, ImageDraw, ImageFont, ch, font_spec, size, scale, angle, dx, dy):
    pt = max(4, int(round(0.75 * size * scale)))
    try:
        font = ImageFont.load_default(size=pt) if font_spec is None else ImageFont.truetype(font_spec, pt)
    except OSError as e:
        raise ValueError(f"cannot load font {font_spec!r} ({e}); pass TrueType font files or fonts=None") from None
    # draw on a larger canvas so rotation does not clip the glyph, then crop the centre
    big = 2 * size
    img = Image.new("L", (big, big), 0)
    d = ImageDraw.Draw(img)
    left, top, right, bottom = d.textbbox((0, 0), ch, font=font)
    x = (big - (right - left)) / 2 - left + dx
    y = (big - (bottom - top)) / 2 - top + dy
    d.text((x, y), ch, fill=255, font=font)
    if angle:
        img = img.rotate(angle, resample=Image.BILINEAR, center=(big / 2 + dx, big / 2 + dy))
    off = (big - size) // 2
    img = img.crop((off, off, off + size, off + size))
    return np.asarray(img, dtype=np.uint8).reshape(-1)
