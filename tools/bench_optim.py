#!/usr/bin/python3
"""bench_optim.py - one optimizer step over a 784-256-128-10 MLP (235,146 parameters), nabla
against PyTorch, every optimizer, 1 thread each.

PyTorch side (this script, Debian's python3-torch): nn.Sequential of Linear/ReLU with its default
init, fixed random gradients (normal, std 0.01), each optimizer with PyTorch's defaults (SGD:
lr 0.1, momentum 0.9), 20 warm-up steps, then `runs` timings of `steps` steps; the median
microseconds per step. LBFGS's step runs a closure that copies the fixed gradients into .grad
and returns a constant loss (two closure calls per step, as in nabla's benchmark).
nabla side: build/bench_optim (tools/bench/bench_optim.c) measures the same on its own slab.

The two sides alternate, optimizer by optimizer, `reps` times, so that both see the same load
on a shared machine; each figure is the median over the repetitions of the per-run medians.

PyTorch is measured twice, in separate processes: with glibc's default malloc settings, where
each step's large temporaries (800 KB for the first layer's weight) come from fresh mmap'd pages
(about 400 page faults per Adam step here), and with MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ raised so that they are reused (the faster PyTorch, which the speed-up
is computed against).

  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_optim.py \\
      [--nabla build/bench_optim] [--reps 5] [--runs 5] [--steps 100] [--only adam]

Prints a table: optimizer, nabla us, PyTorch us (tuned malloc), PyTorch us (default malloc),
speed-up (PyTorch tuned / nabla)."""
import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

NAMES = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam",
         "asgd", "rprop", "lbfgs", "adafactor"]


def make(name, params):
    O = torch.optim
    if name == "sgd":
        return O.SGD(params, lr=0.1, momentum=0.9)
    if name == "adafactor":
        if not hasattr(O, "Adafactor"):
            return None  # PyTorch >= 2.5
        return O.Adafactor(params)
    cls = {"adam": O.Adam, "adamw": O.AdamW, "rmsprop": O.RMSprop, "adagrad": O.Adagrad,
           "adadelta": O.Adadelta, "adamax": O.Adamax, "nadam": O.NAdam, "radam": O.RAdam,
           "asgd": O.ASGD, "rprop": O.Rprop, "lbfgs": O.LBFGS}[name]
    return cls(params)


def bench_torch(name, runs, steps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    params = list(model.parameters())
    grads = [torch.randn_like(p) * 0.01 for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt = make(name, params)
    if opt is None:
        return None

    def closure():
        for p, g in zip(params, grads):
            p.grad.copy_(g)
        return torch.tensor(1.0)

    step = (lambda: opt.step(closure)) if name == "lbfgs" else opt.step
    for _ in range(20):
        step()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t0) / steps * 1e6)
    return statistics.median(times)


TUNED = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def bench_torch_process(name, runs, steps, tuned):
    """bench_torch in a fresh interpreter (glibc reads MALLOC_* at start-up)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if tuned:
        env.update(TUNED)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--torch-worker", name,
                          "--runs", str(runs), "--steps", str(steps)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return None if out.strip() == "None" else float(out)


def bench_nabla(exe, runs, steps, only):
    cmd = [exe, "--runs", str(runs), "--steps", str(steps)] + (["--only", only] if only else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        name, median, _ = line.split()
        res[name] = float(median)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    ap.add_argument("--nabla", default=os.path.join(root, "build", "bench_optim"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--only", default=None)
    ap.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.torch_worker:
        print(bench_torch(a.torch_worker, a.runs, a.steps))
        return
    if not os.path.exists(a.nabla):
        sys.exit(f"bench_optim.py: {a.nabla} not found (ninja -C build bench_optim)")
    print(f"# one step over 235,146 parameters (784-256-128-10 MLP), 1 thread; median of {a.reps} "
          f"alternating repetitions, each the median of {a.runs} x {a.steps} steps; "
          f"PyTorch {torch.__version__}")
    print(f"{'optimizer':<10} {'nabla us':>9} {'PyTorch us':>11} {'(default malloc)':>17} {'speed-up':>9}")
    for name in NAMES:
        if a.only and name != a.only:
            continue
        ns, ts, tds, ratios = [], [], [], []
        for _ in range(a.reps):
            n = bench_nabla(a.nabla, a.runs, a.steps, name)[name]
            t = bench_torch_process(name, a.runs, a.steps, True)
            td = bench_torch_process(name, a.runs, a.steps, False)
            ns.append(n)
            if t is not None:
                ts.append(t)
                tds.append(td)
                ratios.append(t / n)
        n = statistics.median(ns)
        tcol = f"{statistics.median(ts):11.1f}" if ts else f"{'n/a':>11}"
        tdcol = f"{statistics.median(tds):17.1f}" if tds else f"{'n/a':>17}"
        rcol = f"{statistics.median(ratios):8.2f}x" if ratios else f"{'-':>9}"
        print(f"{name:<10} {n:9.1f} {tcol} {tdcol} {rcol}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
