#!/usr/bin/python3
"""convert_torch.py - move model weights between PyTorch and nabla.

  tools/convert_torch.py to-nabla  model.pt   model.nbw   # torch.save'd state_dict -> nabla
  tools/convert_torch.py to-nabla  run.pt run.ckpt --optim Adam   # + an optimizer's state_dict
  tools/convert_torch.py to-torch  run.ckpt   model.pt    # nabla checkpoint/weights -> state_dict

A nabla weights file is a gzip'd safetensors container (docs/checkpoint-format.md); tensor names
are the PyTorch state_dict names, so `model.load_state_dict(torch.load("model.pt"))` and
`nb_weights_load("model.nbw", model)` both just work. to-torch takes a full nabla checkpoint
too and keeps only the model's tensors (not optimizer.* / scheduler.*).

Plain Python + numpy + torch (Debian's /usr/bin/python3 with python3-torch); no other package.
to-nabla accepts a state_dict, a dict holding one under "state_dict" or "model_state_dict", or
a whole nn.Module. nabla holds float32, int32 and uint8: float64/float16/bfloat16 tensors become
float32 and int64 ones (BatchNorm's num_batches_tracked) int32, each with a note on stderr.

With `--optim NAME` (PyTorch's class name: a state_dict does not record it), src is a dict
{"model": model.state_dict(), "optimizer": opt.state_dict()} and dst a nabla checkpoint with
both (docs/checkpoint-format.md), which `nb_checkpoint_load` loads into a model and an
optimizer of that class: the optimizer's state_dict goes in as PyTorch wrote it (any version's
keys; nabla fills what an older PyTorch lacks and refuses what it does not know), translated
only where JSON and nabla's layout need it: None inside a list (Adafactor's eps) is NaN, and
LBFGS's history lists become [k, n] tensors (`al`, PyTorch's scratch list, is left out).
"""
import argparse
import collections
import gzip
import json
import math
import os
import struct
import sys

import numpy as np

FORMAT, VERSION = "nabla-checkpoint", 1
MAX_HEADER = 8 << 20
# safetensors dtype -> numpy dtype (little-endian)
NP = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8", "I16": "<i2",
      "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}


def read_container(path):
    """(header dict without __metadata__, metadata dict, data bytes) of a nabla file or any
    safetensors file, gzip'd or not."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    n = struct.unpack("<Q", raw[:8])[0]
    if n > MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} is out of range")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    fmt = meta.get("format")
    if fmt is not None and (fmt != FORMAT or int(meta.get("format_version", "0")) > VERSION):
        raise ValueError(f"{path}: format {fmt} version {meta.get('format_version')} is not one "
                         f"this script reads ({FORMAT} <= {VERSION})")
    return header, meta, raw[8 + n:]


def write_container(path, tensors, meta):
    """tensors: list of (name, numpy array); meta: dict of str -> str. Atomic write."""
    header = {"__metadata__": meta}
    chunks, at = [], 0
    for name, a in tensors:
        dt = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("uint8"): "U8",
              np.dtype("float64"): "F64", np.dtype("int64"): "I64", np.dtype("bool"): "BOOL"}[a.dtype]
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [at, at + len(b)]}
        chunks.append(b)
        at += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        with gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=6, mtime=0) as g:
            g.write(struct.pack("<Q", len(h)) + h)
            for b in chunks:
                g.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def to_nabla(src, dst):
    import torch
    obj = torch.load(src, map_location="cpu")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{src}: not a state_dict (a dict of tensors)")
    out = []
    for name, t in obj.items():
        t = t.detach().cpu().contiguous()
        if t.dtype in (torch.float64, torch.float16, torch.bfloat16):
            print(f"note: {name}: {t.dtype} converted to float32", file=sys.stderr)
            t = t.float()
        elif t.dtype == torch.int64:
            if t.numel() and (t.max() > 2**31 - 1 or t.min() < -2**31):
                raise ValueError(f"{name}: int64 values do not fit int32")
            print(f"note: {name}: int64 converted to int32", file=sys.stderr)
            t = t.int()
        elif t.dtype == torch.bool:
            t = t.to(torch.uint8)
        elif t.dtype not in (torch.float32, torch.int32, torch.uint8):
            raise ValueError(f"{name}: dtype {t.dtype} has no nabla equivalent")
        out.append((name, t.numpy()))
    model = {"type": "torch", "repr": None, "tensors": len(out)}
    meta = {"format": FORMAT, "format_version": str(VERSION), "content": "weights",
            "nabla_version": "convert_torch.py", "model": json.dumps(model),
            "user.source": os.path.basename(src)}
    write_container(dst, out, meta)
    return len(out)


def _optim_value(name, v, prefix, tensors):
    """A group or state value of a PyTorch optimizer state_dict as nabla's checkpoint JSON."""
    import torch
    if isinstance(v, torch.Tensor):
        tname = prefix + name
        t = v.detach().cpu().contiguous()
        if t.dtype != torch.float32:
            raise ValueError(f"{tname}: dtype {t.dtype}: nabla keeps float32 optimizer state")
        tensors.append((tname, t.numpy()))
        return {"tensor": tname}
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else ("NaN" if v != v else "Infinity" if v > 0 else "-Infinity")
    if isinstance(v, (list, tuple)) and all(x is None or isinstance(x, (int, float)) for x in v):
        return ["NaN" if x is None else x for x in v]
    raise ValueError(f"{prefix}{name}: a {type(v).__name__} has no nabla equivalent")


def optim_json(osd, tensors):
    """PyTorch's optimizer state_dict as the "optimizer" metadata of a nabla checkpoint."""
    import torch
    groups = []
    for g, grp in enumerate(osd["param_groups"]):
        j = {k: _optim_value(k, v, f"optimizer.param_groups.{g}.", tensors) for k, v in grp.items() if k != "params"}
        j["params"] = list(grp["params"])
        groups.append(j)
    state = {}
    for idx, st in osd["state"].items():
        st = dict(st)
        if "old_dirs" in st:  # LBFGS: history lists -> oldest-first tensors; al is scratch
            st.pop("al", None)
            for k in ("old_dirs", "old_stps"):
                st[k] = torch.stack(st[k]) if st[k] else torch.zeros(0, st["d"].numel())
            st["ro"] = torch.stack([torch.as_tensor(r, dtype=torch.float32).reshape(()) for r in st["ro"]]) \
                if st["ro"] else torch.zeros(0)
        state[str(idx)] = {k: _optim_value(k, v, f"optimizer.state.{idx}.", tensors) for k, v in st.items()}
    return {"param_groups": groups, "state": state}


def to_nabla_checkpoint(src, dst, optim):
    """{"model": state_dict, "optimizer": optimizer state_dict} -> a nabla checkpoint."""
    import torch
    obj = torch.load(src, map_location="cpu")
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict) or not isinstance(obj.get("optimizer"), dict):
        raise ValueError(f"{src}: expected a dict with 'model' and 'optimizer' state_dicts")
    out = [(k, v.detach().cpu().contiguous().numpy()) for k, v in obj["model"].items()]
    for name, a in out:
        if a.dtype != np.float32:
            raise ValueError(f"{name}: the model's tensors must be float32 here")
    o = optim_json(obj["optimizer"], out)
    o["type"] = optim
    meta = {"format": FORMAT, "format_version": str(VERSION), "content": "checkpoint",
            "nabla_version": "convert_torch.py", "optimizer": json.dumps(o),
            "model": json.dumps({"type": "torch", "repr": None, "tensors": len(obj["model"])}),
            "user.source": os.path.basename(src)}
    write_container(dst, out, meta)
    return len(out)


def to_torch(src, dst):
    import torch
    header, meta, data = read_container(src)
    sd = collections.OrderedDict()
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if name.startswith("optimizer.") or name.startswith("scheduler."):
            continue
        b, end = e["data_offsets"]
        if e["dtype"] == "BF16":
            a = np.frombuffer(data[b:end], dtype="<i2").reshape(e["shape"])
            sd[name] = torch.from_numpy(a.copy()).view(torch.bfloat16)
            continue
        a = np.frombuffer(data[b:end], dtype=NP[e["dtype"]]).reshape(e["shape"])
        sd[name] = torch.from_numpy(a.astype(a.dtype.newbyteorder("=")).copy())
    tmp = f"{dst}.tmp.{os.getpid()}"
    torch.save(sd, tmp)
    os.replace(tmp, dst)
    return len(sd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("direction", choices=["to-nabla", "to-torch"])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--optim", help="to-nabla: the optimizer class of src's 'optimizer' state_dict")
    a = ap.parse_args()
    try:
        if a.direction == "to-nabla" and a.optim:
            n = to_nabla_checkpoint(a.src, a.dst, a.optim)
        else:
            n = to_nabla(a.src, a.dst) if a.direction == "to-nabla" else to_torch(a.src, a.dst)
    except (ValueError, OSError, KeyError) as e:
        print(f"convert_torch: {e}", file=sys.stderr)
        return 1
    print(f"{a.src} -> {a.dst}: {n} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
