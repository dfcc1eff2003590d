#!/usr/bin/python3
"""bench_rnn.py - nabla vs PyTorch training throughput of row-by-row RNN / LSTM / GRU classifiers
on Fashion-MNIST, side by side, same protocol (that of the PyTorch reference below):

  model : nn.RNN(28, H) (tanh) / nn.LSTM / nn.GRU, batch_first, 1 layer, zero initial state;
          logits = Linear(H, 10)(output at the last of the 28 steps); PyTorch default init
  step  : F.cross_entropy, zero_grad(set_to_none=True), backward, clip_grad_norm_(1.0),
          Adam(lr 1e-3) step; batch 64 of a seeded permutation, all data in memory as x/255
  timing: --warmup-steps untimed steps, then --steps timed steps (loading excluded)
  threads: 1 each (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1))

Each repetition runs nabla then PyTorch in fresh processes; the medians over --repeat runs and
their ratio are printed. The machine must be quiet (check `uptime`): compare ratios, not
absolute numbers from different runs.

  /usr/bin/python3 tools/bench_rnn.py                    # rnn and lstm, 5 repetitions
  /usr/bin/python3 tools/bench_rnn.py --cell gru --repeat 3
  /usr/bin/python3 tools/bench_rnn.py --torch-only --cell lstm   # the reference alone
Needs build/bench_rnn (ninja -C build) and, for the reference, /usr/bin/python3 with torch."""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The PyTorch side, run as `python3 -c REFERENCE args...` so this file is the whole benchmark.
REFERENCE = r'''
import gzip, json, os, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
cell, H, B, steps, warmup, seed, data = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
torch.set_num_threads(1)
def read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    nd = int.from_bytes(buf[0:4], "big") & 0xFF
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
X = torch.from_numpy(read_idx(os.path.join(data, "train-images-idx3-ubyte.gz")).reshape(-1, 784).astype(np.float32) / np.float32(255.0))
Y = torch.from_numpy(read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz")).astype(np.int64))
N = X.shape[0]
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](28, H, batch_first=True)
        self.fc = nn.Linear(H, 10)
    def forward(self, x):
        out, _ = self.rnn(x.view(-1, 28, 28))
        return self.fc(out[:, -1])
torch.manual_seed(seed)
model = Net()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
params = list(model.parameters())
perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
def step(idx):
    loss = F.cross_entropy(model(X[idx]), Y[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    opt.step()
for s in range(warmup):
    step(perm[s * B:(s + 1) * B])
t0 = time.perf_counter()
for s in range(warmup, warmup + steps):
    i = (s * B) % (N - B)
    step(perm[i:i + B])
dt = time.perf_counter() - t0
print(json.dumps({"impl": "torch", "torch": torch.__version__, "samples_per_s": round(steps * B / dt, 1), "ms_per_step": round(dt / steps * 1e3, 3)}))
'''


def run(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cell", action="append", choices=["rnn", "lstm", "gru"],
                   help="rnn, lstm or gru (repeatable; default rnn and lstm)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup-steps", type=int, default=20)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist"))
    p.add_argument("--nabla", default=os.path.join(ROOT, "build", "bench_rnn"), help="path of bench_rnn")
    p.add_argument("--python", default="/usr/bin/python3", help="a python3 with torch")
    p.add_argument("--torch-only", action="store_true")
    p.add_argument("--nabla-only", action="store_true")
    a = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cells = a.cell or ["rnn", "lstm"]
    if not a.torch_only and not os.path.exists(a.nabla):
        sys.exit(f"bench_rnn.py: {a.nabla} not found (build it: ninja -C build)")
    print(f"{'cell':5} {'nabla samples/s':>16} {'torch samples/s':>16} {'ratio':>6}   "
          f"(hidden {a.hidden}, batch {a.batch}, {a.steps} steps after {a.warmup_steps}, "
          f"1 thread, median of {a.repeat})")
    results = {}
    for cell in cells:
        nb, pt = [], []
        for _ in range(a.repeat):
            if not a.torch_only:
                nb.append(run([a.nabla, "--cell", cell, "--hidden", str(a.hidden), "--batch", str(a.batch),
                               "--steps", str(a.steps), "--warmup-steps", str(a.warmup_steps),
                               "--threads", "1", "--seed", str(a.seed), "--data", a.data], env)["samples_per_s"])
            if not a.nabla_only:
                pt.append(run([a.python, "-c", REFERENCE, cell, str(a.hidden), str(a.batch), str(a.steps),
                               str(a.warmup_steps), str(a.seed), a.data], env)["samples_per_s"])
        mn = statistics.median(nb) if nb else float("nan")
        mp = statistics.median(pt) if pt else float("nan")
        results[cell] = {"nabla": nb, "torch": pt}
        print(f"{cell:5} {mn:16,.0f} {mp:16,.0f} {mn / mp if nb and pt else float('nan'):5.2f}x", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
