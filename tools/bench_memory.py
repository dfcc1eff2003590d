#!/usr/bin/python3
"""bench_memory.py - peak RSS of `nabla train` on the reference workloads: one epoch with the test
evaluation, as a user runs it, in float32 and bf16 autocast, on 1 and 2 threads.

The figure is the process's peak resident set (getrusage ru_maxrss of the finished child, as
/usr/bin/time -v reports it): the Fashion-MNIST arrays (uint8, ~55 MiB), the model, the step
arena, the evaluation batches (256 at a time), the thread pool. Memory does not depend on the
machine's load, so one run per configuration is enough.

  /usr/bin/python3 tools/bench_memory.py [--build build] [--data DIR] [--markdown]
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")

WORKLOADS = [
    ("784-128-10 SGD m0.9, B64", "--hidden 128 --optim sgd --lr 0.1 --momentum 0.9 --batch 64"),
    ("784-128-10 SGD m0.9, batch 1", "--hidden 128 --optim sgd --lr 0.01 --momentum 0.9 --batch 1"),
    ("784-256-128-10 Adam, B128", "--hidden 256,128 --optim adam --lr 0.001 --batch 128"),
    ("RNN(tanh) 28-128, Adam, clip 1.0, B64", "--model rnn --hidden 128 --optim adam --lr 0.001 --clip 1.0 --batch 64"),
    ("LSTM 28-128, Adam, clip 1.0, B64", "--model lstm --hidden 128 --optim adam --lr 0.001 --clip 1.0 --batch 64"),
    ("LeNet-5, Adam, B64", "--model cnn --optim adam --lr 0.001 --batch 64"),
]
CONFIGS = [("fp32, 1 thread", []), ("bf16, 1 thread", ["--precision", "bf16"]),
           ("fp32, 2 threads", ["--threads", "2"]), ("bf16, 2 threads", ["--precision", "bf16", "--threads", "2"])]


def peak_rss_mib(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), p.stderr.read().decode()))
    return usage.ru_maxrss / 1024.0  # KiB on Linux


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=DATA)
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    nabla = os.path.join(a.build, "nabla")
    rows = []
    for title, args in WORKLOADS:
        extra = ["--limit", "20000"] if "batch 1" in title else []  # batch 1: a third of an epoch
        mib = [peak_rss_mib([nabla, "train", "--data", a.data, "--epochs", "1", *args.split(), *extra, *c])
               for _, c in CONFIGS]
        rows.append((title + (" (20,000 samples)" if extra else ""), mib))
        print("  %-48s %s" % (rows[-1][0], "  ".join("%6.1f" % m for m in mib)), file=sys.stderr, flush=True)
    if a.markdown:
        print("| workload (1 epoch + test evaluation) | " + " | ".join(c for c, _ in CONFIGS) + " |")
        print("|---|" + "---:|" * len(CONFIGS))
        for title, mib in rows:
            print("| %s | %s |" % (title, " | ".join("%.1f MiB" % m for m in mib)))
    else:
        print("%-50s %s" % ("peak RSS (MiB)", "".join("%17s" % c for c, _ in CONFIGS)))
        for title, mib in rows:
            print("%-50s %s" % (title, "".join("%17.1f" % m for m in mib)))


if __name__ == "__main__":
    main()
