#!/usr/bin/python3
"""bench_cnn.py - LeNet-5 training speed, nabla against PyTorch, 1 thread each.

  /usr/bin/python3 tools/bench_cnn.py [--runs 5] [--nabla build/nabla] [--data DIR]

Both sides run the same protocol (that of the PyTorch baseline train_cnn.py): Fashion-MNIST in
memory as x/255; LeNet-5 (Conv2d(1,6,5,padding=2) ReLU MaxPool2d(2) Conv2d(6,16,5) ReLU
MaxPool2d(2) Flatten Linear(400,120) ReLU Linear(120,84) ReLU Linear(84,10)) with the
framework's default init; Adam lr 1e-3; batch 64; F.cross_entropy; a fresh seeded permutation
per epoch, the last batch partial; zero_grad(set_to_none=True), backward, step. One epoch;
the timing covers the training loop only (not loading, not the test evaluation).
OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(1).

The runs alternate nabla, PyTorch, nabla, ... so that both see the same machine load; the
script prints every run, then the medians and their ratio. `--reference` runs only the
PyTorch side once and prints one JSON line (what the alternation calls)."""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")


def load_idx(path):
    import numpy as np
    opener = gzip.open if os.path.exists(path + ".gz") else open
    with opener(path + ".gz" if os.path.exists(path + ".gz") else path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def reference(args):
    """The PyTorch side: one epoch of LeNet-5, as bench-protocol/train_cnn.py."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(1)
    xtr = torch.from_numpy(load_idx(os.path.join(args.data, "train-images-idx3-ubyte")).copy())
    ytr = torch.from_numpy(load_idx(os.path.join(args.data, "train-labels-idx1-ubyte")).copy())
    xte = torch.from_numpy(load_idx(os.path.join(args.data, "t10k-images-idx3-ubyte")).copy())
    yte = torch.from_numpy(load_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte")).copy())
    xtr = (xtr.float() / 255).view(-1, 1, 28, 28)
    xte = (xte.float() / 255).view(-1, 1, 28, 28)
    ytr, yte = ytr.long(), yte.long()
    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                          nn.Linear(84, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    n, b = xtr.shape[0], 64
    perm = torch.randperm(n, generator=gen)
    t0 = time.perf_counter()
    for i in range(0, n, b):
        idx = perm[i:i + b]
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        acc = (torch.cat([model(xte[j:j + 1000]) for j in range(0, 10000, 1000)]).argmax(1) == yte)
    print(json.dumps({"samples_per_s": n / dt, "test_acc": acc.float().mean().item()}), flush=True)


def run_nabla(args, env):
    with tempfile.TemporaryDirectory() as tmp:
        metrics = os.path.join(tmp, "m.json")
        cmd = [args.nabla, "train", "--model", "cnn", "--optim", "adam", "--lr", "1e-3",
               "--batch", "64", "--epochs", "1", "--threads", "1", "--seed", str(args.seed),
               "--data", args.data, "--metrics", metrics]
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        with open(metrics) as f:
            m = next(r for r in map(json.loads, f) if "train_loss" in r)  # the epoch line
    return m["samples_per_sec"], m["test_acc"]


def run_torch(args, env):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--reference", "--data",
                          args.data, "--seed", str(args.seed)], env=env, check=True,
                         capture_output=True, text=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    return m["samples_per_s"], m["test_acc"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each side (default 5)")
    p.add_argument("--nabla", default=os.path.join(ROOT, "build", "nabla"), help="the nabla binary")
    p.add_argument("--data", default=DATA, help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.reference:
        reference(args)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    print(f"LeNet-5, Adam 1e-3, batch 64, 1 epoch, 1 thread; load average {os.getloadavg()[0]:.2f}")
    nb, pt = [], []
    for r in range(args.runs):
        s, a = run_nabla(args, env)
        nb.append(s)
        print(f"  run {r + 1}: nabla   {s:9.1f} samples/s  (test acc {a:.4f})", flush=True)
        s, a = run_torch(args, env)
        pt.append(s)
        print(f"  run {r + 1}: PyTorch {s:9.1f} samples/s  (test acc {a:.4f})", flush=True)
    mn, mp = statistics.median(nb), statistics.median(pt)
    print(f"median: nabla {mn:.1f} samples/s, PyTorch {mp:.1f} samples/s, ratio {mn / mp:.2f}x "
          f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
