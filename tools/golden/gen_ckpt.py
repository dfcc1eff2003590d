#!/usr/bin/python3
"""gen_ckpt.py - PyTorch <-> nabla weight interop (tests/test_io.c, tools/convert_torch.py).

PyTorch -> nabla (golden, checked by the C test without torch): a 784-32-10 MLP trained a few
Adam steps in PyTorch is torch.save'd, converted with tools/convert_torch.py to
tests/golden/torch_mlp.nbw, and its logits on a fixed batch go to tests/golden/ckpt_interop.nbg.gz;
nabla must reproduce them to 1e-5.

nabla -> PyTorch (checked here, needs a build): `nabla train` trains a model and saves a
checkpoint, `nabla eval --logits` writes its test logits, convert_torch.py turns the checkpoint
into a state_dict, and PyTorch's logits for the same images must match to 1e-5. Also checks
that torch -> nabla -> torch gives back identical tensors, and that the gunzip'd nabla file
parses as safetensors (with the `safetensors` package when installed).

Run: /usr/bin/python3 tools/golden/gen_ckpt.py [--build build]"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from nbgold import Golden  # noqa: E402
import convert_torch  # noqa: E402

OUT = os.path.join(ROOT, "tests", "golden")


def mlp(hidden):
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def torch_to_nabla(tmp):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = mlp(32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):
        x, y = torch.rand(32, 784), torch.randint(0, 10, (32,))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    pt = os.path.join(tmp, "torch_mlp.pt")
    torch.save(model.state_dict(), pt)
    nbw = os.path.join(OUT, "torch_mlp.nbw")
    convert_torch.to_nabla(pt, nbw)
    x = torch.rand(16, 784)
    with torch.no_grad():
        logits = model(x)
    g = Golden()
    g.add("x", x)
    g.add("logits", logits)
    g.save(os.path.join(OUT, "ckpt_interop.nbg.gz"))
    # round trip torch -> nabla -> torch: identical tensors
    back = os.path.join(tmp, "back.pt")
    convert_torch.to_torch(nbw, back)
    sd, sd2 = model.state_dict(), torch.load(back)
    assert list(sd) == list(sd2), (list(sd), list(sd2))
    for k in sd:
        assert torch.equal(sd[k], sd2[k]), k
    print(f"torch -> nabla: {nbw} ({os.path.getsize(nbw)} bytes); round trip identical")
    return nbw


def check_safetensors(path):
    """The gunzip'd file is a safetensors file: parse it by the spec (and with the package)."""
    raw = gzip.decompress(open(path, "rb").read())
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    spans = sorted(e["data_offsets"] for e in header.values())
    at = 0
    for b, e in spans:
        assert b == at, (b, at)
        at = e
    assert at == len(raw) - 8 - n
    try:
        from safetensors.numpy import load
        load(raw)
        how = "safetensors package"
    except ImportError:
        how = "plain python (no safetensors package)"
    print(f"gunzip {os.path.basename(path)}: valid safetensors ({len(header)} tensors, checked with {how})")


def nabla_to_torch(build, tmp):
    exe = os.path.join(build, "nabla")
    if not os.access(exe, os.X_OK):
        print(f"skipped nabla -> torch: no {exe} (build first)")
        return
    data = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")
    ck, npy, pt = (os.path.join(tmp, n) for n in ("nb.ckpt", "logits.npy", "nb.pt"))
    subprocess.run([exe, "train", "--data", data, "--hidden", "48", "--optim", "adam", "--epochs", "1",
                    "--limit", "3000", "--save", ck], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([exe, "eval", "--data", data, "--load", ck, "--logits", npy], check=True,
                   stdout=subprocess.DEVNULL)
    check_safetensors(ck)
    convert_torch.to_torch(ck, pt)
    model = mlp(48)
    model.load_state_dict(torch.load(pt))
    with gzip.open(os.path.join(data, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        images = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 784)
    with torch.no_grad():
        logits = model(torch.from_numpy(images.astype(np.float32)) / 255).numpy()
    ref = np.load(npy)
    # |diff| <= 1e-5 * max(1, |logit|): float32 sums in another order differ by rounding only
    err = np.max(np.abs(logits - ref) / np.maximum(np.abs(ref), 1.0))
    assert err <= 1e-5, f"nabla -> torch logits differ: max err {err:.3g}"
    print(f"nabla -> torch: logits of {len(ref)} test images agree, max |diff|/max(1,|logit|) {err:.2g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nbw = torch_to_nabla(tmp)
        check_safetensors(nbw)
        nabla_to_torch(a.build, tmp)


if __name__ == "__main__":
    main()
