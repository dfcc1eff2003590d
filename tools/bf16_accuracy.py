#!/usr/bin/python3
"""bf16_accuracy.py - test accuracy after 5 epochs, bfloat16 autocast against float32, over seeds,
for nabla and for PyTorch 1.13 on the same recipe.

The acceptance of bf16 asks for the mean test accuracy of seeds 0-2 to be within 0.5 points of
float32's. On a recipe whose last epoch swings between seeds, that difference is mostly chance;
this prints, for both frameworks, every seed's accuracy, the mean difference over the first 3
and over all seeds, and for each window of 3 consecutive seeds whether it lands within 0.5.
Workloads (the CLI's recipes):
  a     784-128-10 ReLU MLP, SGD lr 0.1 momentum 0.9, batch 64
  b     784-256-128-10 ReLU MLP, Adam lr 1e-3, batch 128
nabla: `build/nabla train ... --epochs 5 --seed S --precision fp32|bf16` (the numbers do not
depend on --threads, so it uses 2). PyTorch: the protocol of bench-protocol/train_mlp.py (train
split in memory as x/255, a fresh seeded permutation each epoch, consecutive batches, default
init), the forward and the loss under torch.autocast("cpu", dtype=torch.bfloat16) for bf16, the
test split evaluated the same way; one thread, two runs at a time.

  /usr/bin/python3 tools/bf16_accuracy.py [--workload a] [--seeds 10] [--build build] [--no-torch]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")
RECIPES = {
    "a": ([784, 128, 10], "sgd", 0.1, 64, "--hidden 128 --optim sgd --lr 0.1 --momentum 0.9 --batch 64"),
    "b": ([784, 256, 128, 10], "adam", 1e-3, 128, "--hidden 256,128 --optim adam --lr 0.001 --batch 128"),
}
EPOCHS = 5


def torch_worker(a):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from bench_cnn import load_idx  # tools/ is on sys.path when this script runs

    torch.set_num_threads(1)

    def idx(name):
        return load_idx(os.path.join(a.data, name))

    def images(name):
        return torch.from_numpy(idx(name).astype(np.float32) / np.float32(255.0)).view(-1, 784)

    X, Y = images("train-images-idx3-ubyte"), torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    XT, YT = images("t10k-images-idx3-ubyte"), torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
    sizes, optim, lr, B, _ = RECIPES[a.workload]
    torch.manual_seed(a.seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    opt = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if optim == "sgd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    gen = torch.Generator().manual_seed(a.seed)
    for _ in range(EPOCHS):
        perm = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0], B):
            ix = perm[i:i + B]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                loss = F.cross_entropy(model(X[ix]), Y[ix])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        acc = (model(XT).float().argmax(1) == YT).float().mean().item()
    print(json.dumps({"acc": acc}))


def torch_run(a, seed, bf16):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--workload", a.workload, "--seed",
           str(seed), "--data", a.data] + (["--bf16"] if bf16 else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("PyTorch worker failed:\n" + p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])["acc"]


def nabla_run(a, seed, bf16):
    cmd = [os.path.join(a.build, "nabla"), "train", "--data", a.data, *RECIPES[a.workload][4].split(), "--epochs",
           str(EPOCHS), "--seed", str(seed), "--precision", "bf16" if bf16 else "fp32", "--threads", "2"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    last = [ln for ln in p.stdout.splitlines() if ln.startswith("epoch %d/%d" % (EPOCHS, EPOCHS))]
    if p.returncode != 0 or not last:
        raise RuntimeError("nabla train failed:\n" + p.stderr)
    return float(last[0].split("test_acc ")[1].split()[0])


def report(name, f, b):
    n = len(f)
    diff = [100 * (b[s] - f[s]) for s in range(n)]
    mean3 = statistics.mean(diff[:3])
    print("%s: float32 %s" % (name, " ".join("%.4f" % x for x in f)))
    print("%s: bf16    %s" % (name, " ".join("%.4f" % x for x in b)))
    print("%s: bf16 - float32, seeds 0-%d: %+.2f points; seeds 0-%d: %+.2f points (sd of one seed's %.2f)"
          % (name, min(n, 3) - 1, mean3, n - 1, statistics.mean(diff), statistics.stdev(diff) if n > 1 else 0))
    windows = [statistics.mean(diff[k:k + 3]) for k in range(n - 2)]
    print("%s: windows of 3 seeds within 0.5 points: %d of %d (%s)"
          % (name, sum(abs(w) <= 0.5 for w in windows), len(windows), " ".join("%+.2f" % w for w in windows)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workload", default="a", choices=sorted(RECIPES))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=DATA)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_worker:
        return torch_worker(a)
    seeds = range(a.seeds)
    f = [nabla_run(a, s, False) for s in seeds]
    b = [nabla_run(a, s, True) for s in seeds]
    report("nabla", f, b)
    if not a.no_torch:
        with ThreadPoolExecutor(2) as ex:
            f = list(ex.map(lambda s: torch_run(a, s, False), seeds))
            b = list(ex.map(lambda s: torch_run(a, s, True), seeds))
        report("PyTorch 1.13", f, b)


if __name__ == "__main__":
    main()
