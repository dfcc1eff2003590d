#!/usr/bin/env python3
"""check_safetensors.py NABLA DATA - a checkpoint written by `nabla train --save`, once
gunzip'd, is a valid safetensors file (checked with the `safetensors` package when installed,
else by the specification in plain Python): 8-byte little-endian header length, a JSON header
whose __metadata__ maps strings to strings, tensors with known dtypes whose data_offsets tile
the data exactly. No torch, no numpy needed."""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4,
         "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def check(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    assert 8 + n <= len(raw), "header past the end"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    assert (8 + n) % 8 == 0, "data not 8-byte aligned"
    meta = header.pop("__metadata__")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    assert meta["format"] == "nabla-checkpoint" and meta["format_version"] == "1"
    for key in ("model", "optimizer", "position", "rng", "loader"):
        json.loads(meta[key])  # structured entries are JSON text
    spans = []
    for name, e in header.items():
        assert set(e) == {"dtype", "shape", "data_offsets"}, name
        numel = 1
        for d in e["shape"]:
            numel *= d
        b, end = e["data_offsets"]
        assert end - b == numel * SIZES[e["dtype"]], name
        spans.append((b, end))
    at = 0
    for b, end in sorted(spans):
        assert b == at, f"hole or overlap at {at}"
        at = end
    assert at == len(raw) - 8 - n, "trailing bytes"
    assert "0.weight" in header and "optimizer.state.0.momentum_buffer" in header
    try:
        from safetensors import safe_open  # noqa: F401
        from safetensors.numpy import load
        load(raw)
        return "the safetensors package"
    except ImportError:
        return "plain Python (no safetensors package installed)"


def main():
    nabla, data = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        ck = os.path.join(tmp, "run.ckpt")
        subprocess.run([nabla, "train", "--data", data, "--epochs", "1", "--hidden", "16",
                        "--save", ck], check=True, stdout=subprocess.DEVNULL)
        with open(ck, "rb") as f:
            raw = gzip.decompress(f.read())
        how = check(raw)
    print(f"gunzip'd checkpoint is valid safetensors (checked with {how})")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
