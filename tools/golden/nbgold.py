"""nbgold.py - write golden vectors for nabla's tests (format NBG1, gzip-compressed).

Layout (little-endian): b"NBG1", u32 count, then per entry:
  u16 name length, name (utf-8), u8 dtype (0 float32, 1 int32, 2 float64), u8 ndim,
  u32 dims[ndim], raw data.
Read by tests/common.c (golden_load). Used by the gen_*.py scripts in this folder, which run
with Debian's /usr/bin/python3 and python3-torch; the tests themselves never need torch."""
import gzip
import struct

import numpy as np

_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 1, np.dtype(np.float64): 2}


class Golden:
    def __init__(self):
        self.entries = []

    def add(self, name, value, dtype=None):
        """Add a tensor, numpy array, list or scalar under name (float32 unless dtype given)."""
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        a = np.asarray(value)
        if dtype is not None:
            a = a.astype(dtype)
        elif a.dtype.kind == "f" and a.dtype != np.float64:
            a = a.astype(np.float32)
        elif a.dtype.kind in "iub":
            a = a.astype(np.int32)
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        if name in (n for n, _ in self.entries):
            raise KeyError(f"duplicate golden entry {name}")
        self.entries.append((name, np.array(a, order="C")))  # keeps 0-d (ascontiguousarray makes 1-d)

    def save(self, path):
        out = [b"NBG1", struct.pack("<I", len(self.entries))]
        for name, a in self.entries:
            nb = name.encode()
            out.append(struct.pack("<H", len(nb)) + nb)
            out.append(struct.pack("<BB", _DTYPES[a.dtype], a.ndim))
            out.append(struct.pack(f"<{a.ndim}I", *a.shape))
            out.append(a.astype(a.dtype.newbyteorder("<")).tobytes())
        with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: reproducible bytes
            f.write(b"".join(out))
