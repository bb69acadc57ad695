"""Strict reader for IDX files (the MNIST / Fashion-MNIST container), plain or gzipped.

Format (Y. LeCun, C. Cortes, C. Burges, "THE MNIST DATABASE", file-format section)::

    bytes 0-1  0x00 0x00
    byte  2    dtype code: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
    byte  3    number of dimensions d (>= 1)
    4 * d      dimension sizes, big-endian uint32
    rest       data, big-endian, C order; exactly prod(dims) items, nothing after them

Every violation (bad magic, unknown dtype, truncated or over-long payload, broken gzip) raises
a one-line ``ValueError`` that names the file and says how to fix it.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
_FIX = "the file is corrupt or not an IDX file: delete it and re-download"


def _raw_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as e:
        # EOFError: cut-off download; BadGzipFile (OSError) / zlib.error: damaged bytes
        raise ValueError(f"{path}: gzip stream is broken ({e}); {_FIX}") from None


def parse_idx(data: bytes, name: str = "<bytes>", expect_ndim: int | None = None) -> np.ndarray:
    """Parse the bytes of one (uncompressed) IDX file into a native-endian array."""
    if len(data) < 4:
        raise ValueError(f"{name}: {len(data)} bytes is shorter than the 4-byte IDX header; {_FIX}")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: bad IDX magic {data[:4].hex()} (must start with 0000); {_FIX}")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX dtype code 0x{code:02x} "
                         f"(valid: {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}); {_FIX}")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions; {_FIX}")
    if expect_ndim is not None and ndim != expect_ndim:
        raise ValueError(f"{name}: expected a {expect_ndim}-d IDX array, the header says {ndim}-d; "
                         "check that images and labels files are not swapped")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header ({len(data)} of {header} bytes); {_FIX}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    n_items = 1
    for d in dims:
        n_items *= d
    want = header + n_items * dtype.itemsize
    if len(data) < want:
        raise ValueError(f"{name}: truncated IDX payload: dims {dims} need {want} bytes, "
                         f"file has {len(data)}; {_FIX}")
    if len(data) > want:
        raise ValueError(f"{name}: {len(data) - want} unexpected bytes after the IDX payload "
                         f"(dims {dims}); {_FIX}")
    arr = np.frombuffer(data, dtype=dtype, count=n_items, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip detected from its magic bytes, not its name)."""
    path = os.fspath(path)
    try:
        data = _raw_bytes(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; check the data path or let the loader download it") from None
    return parse_idx(data, name=path, expect_ndim=expect_ndim)


def write_idx(path, arr: np.ndarray, compress: bool | None = None) -> None:
    """Write ``arr`` as IDX (gzipped if ``compress`` or the name ends in .gz); for tests and tools."""
    path = os.fspath(path)
    arr = np.asarray(arr)
    codes = {v.newbyteorder("=") if v.itemsize > 1 else v: k for k, v in IDX_DTYPES.items()}
    native = arr.dtype.newbyteorder("=") if arr.dtype.itemsize > 1 else arr.dtype
    if native not in codes:
        raise TypeError(f"IDX cannot store dtype {arr.dtype}; use one of u8, i8, i16, i32, f32, f64")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {arr.ndim}")
    code = codes[native]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)
