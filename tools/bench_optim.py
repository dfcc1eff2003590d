#!/usr/bin/python3
"""bench_optim.py - one optimizer step over a 784-256-128-10 MLP (235,146 parameters), nabla
against PyTorch, every optimizer, 1 thread each; SparseAdam over an Embedding(50000, 64,
sparse=True) whose gradient has 500 rows (1 %); Muon (nabla only: PyTorch 1.13 has none) over
the MLP's three weight matrices. With --threads N: nabla on N threads against nabla on 1.

PyTorch side (this script, Debian's python3-torch): nn.Sequential of Linear/ReLU with its default
init, fixed random gradients (normal, std 0.01), each optimizer with PyTorch's defaults (SGD:
lr 0.1, momentum 0.9), 20 warm-up steps, then `runs` timings of `steps` steps; the median
microseconds per step. LBFGS's step runs a closure that copies the fixed gradients into .grad
and returns a constant loss (two closure calls per step, as in nabla's benchmark). SparseAdam's
gradient is a fixed uncoalesced sparse tensor of 500 random rows (repeats allowed), as an
embedding backward gives it; each step coalesces it, on both sides.
nabla side: build/bench_optim (tools/bench/bench_optim.c) measures the same on its own slab.

The two sides alternate, optimizer by optimizer, `reps` times, so that both see the same load
on a shared machine; each figure is the median over the repetitions of the per-run medians.

PyTorch is measured twice, in separate processes: with glibc's default malloc settings, where
each step's large temporaries (800 KB for the first layer's weight) come from fresh mmap'd pages
(about 400 page faults per Adam step here), and with MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ raised so that they are reused (the faster PyTorch, which the speed-up
is computed against).

  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_optim.py \\
      [--nabla build/bench_optim] [--reps 5] [--runs 5] [--steps 100] [--only adam] [--threads 2]

Prints a table: optimizer, nabla us, PyTorch us (tuned malloc), PyTorch us (default malloc),
speed-up (PyTorch tuned / nabla). With --threads N (no PyTorch): optimizer, nabla us on 1
thread, on N threads, and their ratio, the two alternating."""
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
         "asgd", "rprop", "lbfgs", "sparseadam", "adafactor", "muon"]
EMB_ROWS, EMB_DIM, EMB_TOUCHED = 50000, 64, 500


def make(name, params):
    O = torch.optim
    if name == "sgd":
        return O.SGD(params, lr=0.1, momentum=0.9)
    if name in ("adafactor", "muon"):
        cls = getattr(O, {"adafactor": "Adafactor", "muon": "Muon"}[name], None)
        return cls(params) if cls else None  # PyTorch >= 2.5, >= 2.9
    if name == "sparseadam":
        return O.SparseAdam(params)
    cls = {"adam": O.Adam, "adamw": O.AdamW, "rmsprop": O.RMSprop, "adagrad": O.Adagrad,
           "adadelta": O.Adadelta, "adamax": O.Adamax, "nadam": O.NAdam, "radam": O.RAdam,
           "asgd": O.ASGD, "rprop": O.Rprop, "lbfgs": O.LBFGS}[name]
    return cls(params)


def bench_torch(name, runs, steps):
    torch.manual_seed(0)
    if name == "sparseadam":
        emb = nn.Embedding(EMB_ROWS, EMB_DIM, sparse=True)
        idx = torch.randint(0, EMB_ROWS, (EMB_TOUCHED,))
        emb(idx).backward(torch.randn(EMB_TOUCHED, EMB_DIM) * 0.01)
        params, grads = [emb.weight], [emb.weight.grad]
    else:
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 10))
        params = list(model.parameters())
        if name == "muon":
            params = [p for p in params if p.ndim == 2]
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


def bench_nabla(exe, runs, steps, only, threads=1):
    cmd = [exe, "--runs", str(runs), "--steps", str(steps), "--threads", str(threads)]
    cmd += ["--only", only] if only else []
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
    ap.add_argument("--threads", type=int, default=1, help="compare nabla on N threads with 1")
    ap.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.torch_worker:
        print(bench_torch(a.torch_worker, a.runs, a.steps))
        return
    if not os.path.exists(a.nabla):
        sys.exit(f"bench_optim.py: {a.nabla} not found (ninja -C build bench_optim)")
    if a.threads > 1:
        return threads_table(a)
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


def threads_table(a):
    """nabla on a.threads threads against 1 thread, alternating, every optimizer."""
    print(f"# nabla, one step (784-256-128-10 MLP; sparseadam: Embedding 50000 x 64, 500 rows), "
          f"1 thread against {a.threads}; median of {a.reps} alternating repetitions, each the median "
          f"of {a.runs} x {a.steps} steps")
    print(f"{'optimizer':<10} {'1 thread us':>12} {f'{a.threads} threads us':>13} {'ratio':>7}")
    for name in NAMES:
        if a.only and name != a.only:
            continue
        ones, ns, ratios = [], [], []
        for _ in range(a.reps):
            one = bench_nabla(a.nabla, a.runs, a.steps, name, 1)[name]
            n = bench_nabla(a.nabla, a.runs, a.steps, name, a.threads)[name]
            ones.append(one)
            ns.append(n)
            ratios.append(one / n)
        print(f"{name:<10} {statistics.median(ones):12.1f} {statistics.median(ns):13.1f} "
              f"{statistics.median(ratios):6.2f}x")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
