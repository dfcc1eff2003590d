#!/usr/bin/python3
"""bench_bf16.py - bfloat16 autocast against float32, nabla and PyTorch side by side in one run.

Four sides per workload, each in its own process, 1 thread each, alternating so that machine
noise hits them alike:
  nabla fp32     build/nabla train ... --threads 1
  nabla bf16     the same with --precision bf16 (matrix products on bfloat16 operands, float32
                 sums: AMX or AVX512_BF16 where the CPU has them)
  PyTorch fp32   the reference loop below (the protocol of bench-protocol/train_*.py)
  PyTorch bf16   the same loop with the forward and the loss under
                 torch.autocast("cpu", dtype=torch.bfloat16)
Protocol: the Fashion-MNIST train split in memory as x/255, a fresh seeded permutation every
epoch, consecutive batches (the last one partial), the framework's default init,
zero_grad(set_to_none=True), backward, step; OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1,
torch.set_num_threads(1); samples/s over the training loop of one epoch (no loading, no
evaluation). Figures are medians over the repetitions; the ratios are of the medians.
Workloads:
  b     784-256-128-10 ReLU MLP, Adam lr 1e-3, batch 128
  cnn   LeNet-5, Adam lr 1e-3, batch 64
  a     784-128-10 ReLU MLP, SGD lr 0.1 momentum 0.9, batch 64
  lstm  LSTM(28, 128) over the 28 rows + Linear(128, 10), Adam lr 1e-3, clip 1.0, batch 64
        (19,200 samples: 300 batches)

  /usr/bin/python3 tools/bench_bf16.py [--reps 5] [--workloads b,cnn] [--build build] [--markdown]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench_mlp import busy_cores, nabla_train, one_thread_env  # tools/ is on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")

WORKLOADS = {
    "b": ("784-256-128-10 Adam, B128", "--hidden 256,128 --optim adam --lr 0.001 --batch 128 --epochs 1"),
    "cnn": ("LeNet-5, Adam, B64", "--model cnn --optim adam --lr 0.001 --batch 64 --epochs 1"),
    "a": ("784-128-10 SGD m0.9, B64", "--hidden 128 --optim sgd --lr 0.1 --momentum 0.9 --batch 64 --epochs 1"),
    "lstm": ("LSTM 28-128, Adam, clip 1.0, B64 (19,200 samples)",
             "--model lstm --hidden 128 --optim adam --lr 0.001 --clip 1.0 --batch 64 --epochs 1 --limit 19200"),
}


# ---- the PyTorch side (its own process, 1 thread) ---------------------------------------------
def torch_worker(a):
    import gzip

    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)

    def idx(name):
        p = os.path.join(a.data, name)
        p = p + ".gz" if os.path.exists(p + ".gz") else p
        with (gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")) as f:
            raw = f.read()
        dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * raw[3]).reshape(dims)

    X = torch.from_numpy(idx("train-images-idx3-ubyte").astype(np.float32) / np.float32(255.0))
    Y = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    torch.manual_seed(a.seed)
    clip, limit = 0.0, 0
    if a.workload in ("a", "b"):
        sizes = [784, 128, 10] if a.workload == "a" else [784, 256, 128, 10]
        layers = []
        for i in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        model, X, B = nn.Sequential(*layers), X.view(-1, 784), 64 if a.workload == "a" else 128
    elif a.workload == "cnn":
        model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                              nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        X, B = X.view(-1, 1, 28, 28), 64
    else:
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn, self.fc = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)

            def forward(self, x):
                out, _ = self.rnn(x)
                return self.fc(out[:, -1])
        model, X, B, clip, limit = Net(), X.view(-1, 28, 28), 64, 1.0, 19200
    if a.workload == "a":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(a.seed)
    N = X.shape[0]
    perm = torch.randperm(N, generator=gen)
    seen, t0 = 0, time.perf_counter()
    for i in range(0, limit or N, B):
        ix = perm[i:i + B]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.cross_entropy(model(X[ix]), Y[ix])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        seen += ix.shape[0]
    dt = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": seen / dt, "threads": torch.get_num_threads(), "torch": torch.__version__}))


def torch_run(a, w, bf16):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--workload", w, "--seed", str(a.seed),
           "--data", a.data] + (["--bf16"] if bf16 else [])
    p = subprocess.run(cmd, env=one_thread_env(), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("PyTorch worker failed:\n" + p.stderr)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    if r["threads"] != 1:
        raise RuntimeError("torch ran with %d threads" % r["threads"])
    return r["samples_per_s"]


def nabla_run(a, w, bf16):
    args = WORKLOADS[w][1].split() + ["--threads", "1"] + (["--precision", "bf16"] if bf16 else [])
    return nabla_train(a, args)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--workloads", default="b,cnn")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", default="b", help=argparse.SUPPRESS)
    p.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_worker:
        return torch_worker(a)
    names = [w for w in a.workloads.split(",") if w]
    for w in names:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (%s)" % (w, ", ".join(WORKLOADS)))
    bf = subprocess.run([os.path.join(a.build, "nabla"), "version"], capture_output=True, text=True).stdout.strip()
    busy0, t0 = busy_cores(), time.time()
    print("%s; %.2f cores busy before the start; %d repetitions, 1 thread each" % (bf, busy0, a.reps), flush=True)
    rows = []
    for w in names:
        runs = {"nf": [], "nb": [], "tf": [], "tb": []}
        for r in range(a.reps):
            runs["nf"].append(nabla_run(a, w, False))
            runs["tf"].append(torch_run(a, w, False))
            runs["nb"].append(nabla_run(a, w, True))
            runs["tb"].append(torch_run(a, w, True))
            print("  %-4s rep %d: nabla fp32 %8.0f  bf16 %8.0f   PyTorch fp32 %8.0f  bf16 %8.0f samples/s" % (
                w, r + 1, runs["nf"][-1], runs["nb"][-1], runs["tf"][-1], runs["tb"][-1]), flush=True)
        m = {k: statistics.median(v) for k, v in runs.items()}
        rows.append((WORKLOADS[w][0], m))
    busy1 = busy_cores()
    print("%.2f cores busy after the end; %.0f s\n" % (busy1, time.time() - t0))
    if a.markdown:
        print("| workload | nabla fp32 | nabla bf16 | PyTorch fp32 | PyTorch bf16 | nabla bf16 / fp32 | "
              "nabla bf16 / PyTorch bf16 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for title, m in rows:
            print("| %s | %s | %s | %s | %s | **%.2f×** | **%.2f×** |" % (
                title, *("{:,.0f}".format(m[k]) for k in ("nf", "nb", "tf", "tb")), m["nb"] / m["nf"],
                m["nb"] / m["tb"]))
    else:
        print("%-40s %10s %10s %12s %12s %9s %12s" % ("median samples/s", "nabla fp32", "nabla bf16", "PyTorch fp32",
                                                     "PyTorch bf16", "bf16/fp32", "vs PyTorch"))
        for title, m in rows:
            print("%-40s %10.0f %10.0f %12.0f %12.0f %8.2fx %11.2fx" % (title, m["nf"], m["nb"], m["tf"], m["tb"],
                                                                     m["nb"] / m["nf"], m["nb"] / m["tb"]))
    if max(busy0, busy1) > 0.25:
        print("\nwarning: other work was running on the machine: figures are unreliable", file=sys.stderr)


if __name__ == "__main__":
    main()
