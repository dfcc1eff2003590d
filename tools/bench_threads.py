#!/usr/bin/python3
"""bench_threads.py - `nabla train --threads 2` against `--threads 1`, side by side in one run.

Each workload trains with `build/nabla train --metrics` at 1 and at 2 threads, alternately, so
that machine noise hits both alike; the figure is the median of samples/s over the
repetitions (the CLI's own clock: the training loop of each epoch, no loading or evaluation),
and the ratio is 2 threads / 1 thread. OpenBLAS is kept at one thread either way
(OPENBLAS_NUM_THREADS=1; nabla splits the work across its own pool).
Workloads:
  a     784-128-10 MLP, SGD lr 0.1 momentum 0.9, batch 64, 2 epochs
  a1    the same at batch 1, 20,000 samples
  b     784-256-128-10 MLP, Adam lr 1e-3, batch 128, 2 epochs
  lstm  LSTM 28->128 over the 28 rows, Adam lr 1e-3, clip 1.0, batch 64, 19,200 samples
  cnn   LeNet-5, Adam lr 1e-3, batch 64, 1 epoch
Run it on a quiet machine (see `uptime`): a second thread is only as good as the core it gets.

  /usr/bin/python3 tools/bench_threads.py [--reps 5] [--workloads a,a1,b,lstm,cnn]
                                          [--build build] [--data DIR] [--markdown]
"""
import argparse
import os
import statistics
import sys
import time

from bench_mlp import busy_cores, nabla_train  # tools/ is on sys.path when this script runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")

WORKLOADS = {
    "a": ("(a) 784-128-10 SGD m0.9, B64",
          "--hidden 128 --optim sgd --lr 0.1 --momentum 0.9 --batch 64 --epochs 2"),
    "a1": ("(a) at batch 1 (20,000 samples)",
           "--hidden 128 --optim sgd --lr 0.1 --momentum 0.9 --batch 1 --epochs 1 --limit 20000"),
    "b": ("(b) 784-256-128-10 Adam, B128", "--hidden 256,128 --optim adam --lr 0.001 --batch 128 --epochs 2"),
    "lstm": ("LSTM 28-128, Adam, clip 1.0, B64 (19,200 samples)",
             "--model lstm --hidden 128 --optim adam --lr 0.001 --clip 1.0 --batch 64 --epochs 1 --limit 19200"),
    "cnn": ("LeNet-5, Adam, B64", "--model cnn --optim adam --lr 0.001 --batch 64 --epochs 1"),
}


def train(a, args, threads):
    """samples/s of one `nabla train` run, over all its epochs."""
    return nabla_train(a, [*args.split(), "--threads", str(threads)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--workloads", default="a,a1,b,lstm,cnn")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true", help="print the results as a Markdown table")
    a = p.parse_args()
    names = [w for w in a.workloads.split(",") if w]
    for w in names:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (%s)" % (w, ", ".join(WORKLOADS)))
    busy0, t0 = busy_cores(), time.time()
    print("%.2f cores busy before the start; %d repetitions" % (busy0, a.reps), flush=True)
    rows = []
    for name in names:
        title, args = WORKLOADS[name]
        one, two = [], []
        for r in range(a.reps):
            one.append(train(a, args, 1))
            two.append(train(a, args, 2))
            print("  %-4s rep %d: 1 thread %9.0f  2 threads %9.0f samples/s" % (name, r + 1, one[-1], two[-1]),
                  flush=True)
        rows.append(dict(title=title, one=statistics.median(one), two=statistics.median(two),
                         ratios=sorted(y / x for x, y in zip(one, two))))
    busy1 = busy_cores()
    print("%.2f cores busy after the end; %.0f s" % (busy1, time.time() - t0))
    print()
    if a.markdown:
        print("| workload | 1 thread | 2 threads | 2 / 1 | range of 2 / 1 |")
        print("|---|---:|---:|---:|---|")
        for r in rows:
            print("| %s | %s | %s | **%.2f×** | %.2f–%.2f |" % (r["title"], "{:,.0f}".format(r["one"]),
                                                             "{:,.0f}".format(r["two"]), r["two"] / r["one"],
                                                             r["ratios"][0], r["ratios"][-1]))
    else:
        print("%-52s %12s %12s %7s" % ("median samples/s", "1 thread", "2 threads", "2 / 1"))
        for r in rows:
            print("%-52s %12.0f %12.0f %6.2fx" % (r["title"], r["one"], r["two"], r["two"] / r["one"]))
    if max(busy0, busy1) > 0.25:
        print("\nwarning: other work was running on the machine: figures are unreliable", file=sys.stderr)


if __name__ == "__main__":
    main()
