#!/usr/bin/python3
"""bench_mlp.py - MLP training speed, nabla against PyTorch, side by side in one run.

Both sides follow one protocol (PyTorch's reference, carried below as torch_worker):
  data    : the Fashion-MNIST train split, all in memory, x/255, flattened to 784, class labels
  order   : a fresh seeded permutation every epoch, consecutive batches, the last one partial
  model   : Linear/ReLU stack with PyTorch's default init
  step    : out = model(x); loss = F.cross_entropy(out, y); opt.zero_grad(set_to_none=True);
            loss.backward(); opt.step()
  threads : 1 each: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1),
            nabla --threads 1 (nabla keeps OpenBLAS at 1 thread anyway)
  timing  : monotonic clock around the training loop of each epoch; loading, warm-up steps
            and evaluation excluded
Workloads:
  a    784-128-10, SGD lr 0.1 momentum 0.9, batch 64, 2 epochs
  a1   the same at batch 1: 5000 samples timed after 500 warm-up steps
  b    784-256-128-10, Adam lr 1e-3, batch 128, 2 epochs
nabla runs as build/bench_mlp (tools/bench/bench_mlp.c, same loop as models/mlp.c) and, for a
and b, also as `build/nabla train --metrics` (the CLI users run). Repetitions alternate the two
sides so that machine noise hits both alike; the figures are medians of samples/s over the
repetitions, and the ratio is nabla / PyTorch. Run it on a quiet machine (see `uptime`).

  /usr/bin/python3 tools/bench_mlp.py [--reps 5] [--workloads a,a1,b] [--build build]
                                      [--data DIR] [--markdown]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")

WORKLOADS = {
    "a": dict(title="(a) 784-128-10 SGD m0.9, B64", arch="a", batch=64, epochs=2, max_samples=0, warmup=0),
    "a1": dict(title="(a) at batch 1 (5000 samples after 500 warm-up steps)", arch="a", batch=1, epochs=1,
               max_samples=5000, warmup=500),
    "b": dict(title="(b) 784-256-128-10 Adam, B128", arch="b", batch=128, epochs=2, max_samples=0, warmup=0),
}


# ---- the PyTorch side (runs in its own process, 1 thread) ------------------------------------
def torch_worker(a):
    import gzip

    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)

    def read_idx(path):
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            buf = f.read()
        nd = buf[3]
        dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
        return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

    def idx(name):
        p = os.path.join(a.data, name)
        return read_idx(p + ".gz" if os.path.exists(p + ".gz") else p)

    X = torch.from_numpy(idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / np.float32(255.0))
    Y = torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    N = X.shape[0]
    sizes = [784, 128, 10] if a.arch == "a" else [784, 256, 128, 10]
    torch.manual_seed(a.seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    if a.arch == "a":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(a.seed)
    B = a.batch

    def step(xb, yb):
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    total, seconds = 0, 0.0
    for ep in range(1, a.epochs + 1):
        perm = torch.randperm(N, generator=gen)
        start = 0
        if ep == 1 and a.warmup:
            for s in range(a.warmup):
                idx_ = perm[s * B:(s + 1) * B]
                step(X[idx_], Y[idx_])
            start = a.warmup * B
        timed = 0
        t0 = time.perf_counter()
        for i in range(start, N, B):
            idx_ = perm[i:i + B]
            step(X[idx_], Y[idx_])
            timed += idx_.shape[0]
            if a.max_samples and timed >= a.max_samples:
                break
        seconds += time.perf_counter() - t0
        total += timed
        if a.max_samples:
            break
    print(json.dumps({"summary": True, "samples": total, "seconds": seconds, "samples_per_s": total / seconds,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


# ---- the driver ---------------------------------------------------------------------------------
def one_thread_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON in output:\n" + text)


def run(cmd):
    p = subprocess.run(cmd, env=one_thread_env(), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def nabla_bench(a, w):
    out = run([os.path.join(a.build, "tools", "bench", "bench_mlp"), "--arch", w["arch"], "--batch", str(w["batch"]),
               "--epochs", str(w["epochs"]), "--max-samples", str(w["max_samples"]), "--warmup-steps",
               str(w["warmup"]), "--threads", "1", "--seed", str(a.seed), "--data", a.data])
    return last_json(out)["samples_per_s"]


def nabla_train(a, args):
    """samples/s of one `nabla train` run (the CLI's own clock, from --metrics), over all its epochs."""
    with tempfile.TemporaryDirectory() as d:
        m = os.path.join(d, "m.jsonl")
        run([os.path.join(a.build, "nabla"), "train", "--data", a.data, *args, "--seed", str(a.seed),
             "--metrics", m])
        with open(m) as f:
            recs = [r for r in map(json.loads, f) if "train_loss" in r]  # epoch lines
    samples = sum(r["samples_per_sec"] * r["seconds"] for r in recs)
    return samples / sum(r["seconds"] for r in recs)


def nabla_cli(a, w):
    hidden = "128" if w["arch"] == "a" else "256,128"
    optim = ["--optim", "sgd", "--lr", "0.1", "--momentum", "0.9"] if w["arch"] == "a" else \
        ["--optim", "adam", "--lr", "0.001"]
    return nabla_train(a, ["--hidden", hidden, *optim, "--batch", str(w["batch"]), "--epochs", str(w["epochs"]),
                           "--threads", "1"])


def torch_bench(a, w):
    out = run([sys.executable, os.path.abspath(__file__), "--torch-worker", "--arch", w["arch"], "--batch",
               str(w["batch"]), "--epochs", str(w["epochs"]), "--max-samples", str(w["max_samples"]),
               "--warmup", str(w["warmup"]), "--seed", str(a.seed), "--data", a.data])
    r = last_json(out)
    if r["threads"] != 1:
        raise RuntimeError("torch ran with %d threads" % r["threads"])
    return r["samples_per_s"]


def busy_cores(seconds=1.0):
    """CPU cores busy with other work, from /proc/stat over a short interval (nan if unknown)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except OSError:
        return float("nan")
    return (os.cpu_count() or 1) * (1 - (i1 - i0) / max(t1 - t0, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--workloads", default="a,a1,b")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cli", action="store_true", help="skip the `nabla train` runs")
    p.add_argument("--markdown", action="store_true", help="print the results as a Markdown table")
    # the PyTorch worker (internal)
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--arch", default="a", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--max-samples", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_worker:
        return torch_worker(a)

    names = [w for w in a.workloads.split(",") if w]
    for w in names:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (%s)" % (w, ", ".join(WORKLOADS)))
    busy0, t0 = busy_cores(), time.time()
    print("%.2f cores busy before the start; %d repetitions, 1 thread each" % (busy0, a.reps), flush=True)
    rows = []
    for name in names:
        w = WORKLOADS[name]
        nb, cli, th = [], [], []
        for r in range(a.reps):
            nb.append(nabla_bench(a, w))
            th.append(torch_bench(a, w))
            if not a.no_cli and w["max_samples"] == 0:
                cli.append(nabla_cli(a, w))
            print("  %-3s rep %d: nabla %9.0f  %sPyTorch %9.0f samples/s" % (
                name, r + 1, nb[-1], ("nabla train %9.0f  " % cli[-1]) if cli else "", th[-1]), flush=True)
        row = dict(name=name, title=w["title"], nabla=statistics.median(nb), torch=statistics.median(th),
                   cli=statistics.median(cli) if cli else None,
                   ratios=sorted(x / y for x, y in zip(nb, th)))
        row["ratio"] = row["nabla"] / row["torch"]
        rows.append(row)
    busy1 = busy_cores()
    print("%.2f cores busy after the end; %.0f s" % (busy1, time.time() - t0))
    print()
    if a.markdown:
        print("| workload | nabla (bench_mlp) | nabla train | PyTorch 1 thread | ratio | ratio range |")
        print("|---|---:|---:|---:|---:|---|")
        for r in rows:
            print("| %s | %s | %s | %s | **%.2f×** | %.2f–%.2f |" % (
                r["title"], "{:,.0f}".format(r["nabla"]), "{:,.0f}".format(r["cli"]) if r["cli"] else "–",
                "{:,.0f}".format(r["torch"]), r["ratio"], r["ratios"][0], r["ratios"][-1]))
    else:
        print("%-58s %12s %12s %12s %7s" % ("median samples/s", "nabla", "nabla train", "PyTorch", "ratio"))
        for r in rows:
            print("%-58s %12.0f %12s %12.0f %6.2fx" % (r["title"], r["nabla"],
                                                       "%.0f" % r["cli"] if r["cli"] else "-", r["torch"],
                                                       r["ratio"]))
    if max(busy0, busy1) > 0.25:
        print("\nwarning: other work was running on the machine: figures are unreliable", file=sys.stderr)


if __name__ == "__main__":
    main()
