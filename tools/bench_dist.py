#!/usr/bin/python3
"""bench_dist.py - data-parallel training speed: nabla on MPI against PyTorch DDP, side by side.

For each workload, one repetition runs, one after the other (so that machine noise hits them
alike), over the same Fashion-MNIST epoch(s):
  1p1t   build/nabla train --threads 1                       (1 process, 1 thread, batch B)
  1p2t   build/nabla train --threads 2                       (1 process, 2 threads, batch B)
  2p1t   mpirun -np 2 build/nabla train --threads 1          (2 processes x batch B/2: the same
                                                               global batch, as DDP users scale)
  2p1tw  mpirun -np 2 ... --batch B                          (2 processes x batch B: each process
                                                               keeps the workload's batch)
  ddp1   PyTorch 1.13, 1 process, batch B (1 thread)
  ddp2   PyTorch DistributedDataParallel, gloo, 2 processes x batch B/2 (1 thread each)
nabla's figures are its CLI's own clock (--metrics: the training loop of each epoch, global
samples over rank 0's seconds) and, for 2p1t, the time rank 0 spent in MPI calls for the
gradient allreduce per step (allreduce_ms_per_step). PyTorch's side (carried below as
torch_worker) follows the same protocol: the whole train split in memory as x/255, each process
on its DistributedSampler(shuffle=True, seed) shard with set_epoch per epoch, consecutive
batches, PyTorch's default init, zero_grad(set_to_none=True), backward, (clip), step; the clock
runs around each epoch's loop between two barriers. Everything is one thread per process
(OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)).
Workloads (as bench_threads.py):
  a     784-128-10 MLP, SGD lr 0.1 momentum 0.9, batch 64, 2 epochs
  b     784-256-128-10 MLP, Adam lr 1e-3, batch 128, 2 epochs
  lstm  LSTM 28->128 over the 28 rows, Adam lr 1e-3, clip 1.0, batch 64, 19,200 samples
  cnn   LeNet-5, Adam lr 1e-3, batch 64, 1 epoch
Both cores must be free for the 2-process and 2-thread figures to mean anything: the script
prints how busy the machine was before and after; run it when `uptime` shows a load near 0.

  /usr/bin/python3 tools/bench_dist.py [--reps 3] [--workloads a,b,lstm,cnn] [--build build]
                                       [--data DIR] [--no-torch] [--markdown]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench_mlp import busy_cores  # tools/ is on sys.path when this script runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")

WORKLOADS = {
    "a": dict(title="(a) 784-128-10 SGD m0.9, B64", batch=64, epochs=2, limit=0,
              args="--hidden 128 --optim sgd --lr 0.1 --momentum 0.9"),
    "b": dict(title="(b) 784-256-128-10 Adam, B128", batch=128, epochs=2, limit=0,
              args="--hidden 256,128 --optim adam --lr 0.001"),
    "lstm": dict(title="LSTM 28-128, Adam, clip 1.0, B64", batch=64, epochs=1, limit=19200,
                 args="--model lstm --hidden 128 --optim adam --lr 0.001 --clip 1.0"),
    "cnn": dict(title="LeNet-5, Adam, B64", batch=64, epochs=1, limit=0,
                args="--model cnn --optim adam --lr 0.001"),
}


# ---- the PyTorch side: one process per rank, gloo, 1 thread ---------------------------------
def torch_worker(a):
    import gzip

    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    w = WORKLOADS[a.workload]
    if a.world > 1:
        dist.init_process_group("gloo", rank=a.rank, world_size=a.world)

    def read_idx(name):
        p = os.path.join(a.data, name)
        p = p + ".gz" if os.path.exists(p + ".gz") else p
        with (gzip.open(p, "rb") if p.endswith(".gz") else open(p, "rb")) as f:
            buf = f.read()
        nd = buf[3]
        dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
        return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

    X = torch.from_numpy(read_idx("train-images-idx3-ubyte").reshape(-1, 784).astype(np.float32) / np.float32(255))
    Y = torch.from_numpy(read_idx("train-labels-idx1-ubyte").astype(np.int64))
    if w["limit"]:
        X, Y = X[:w["limit"]], Y[:w["limit"]]
    torch.manual_seed(a.seed)
    if a.workload == "cnn":
        X = X.view(-1, 1, 28, 28)
        model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                              nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    elif a.workload == "lstm":
        X = X.view(-1, 28, 28)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.LSTM(28, 128)
                self.fc = nn.Linear(128, 10)

            def forward(self, x):
                out, _ = self.rnn(x.transpose(0, 1))
                return self.fc(out[-1])
        model = Net()
    else:
        sizes = [784, 128, 10] if a.workload == "a" else [784, 256, 128, 10]
        layers = []
        for i in range(len(sizes) - 1):
            layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        model = nn.Sequential(*layers)
    net = nn.parallel.DistributedDataParallel(model) if a.world > 1 else model
    if a.workload == "a":
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sampler = torch.utils.data.DistributedSampler(range(X.shape[0]), num_replicas=a.world, rank=a.rank,
                                                  shuffle=True, seed=a.seed)
    B = a.batch
    samples = seconds = 0.0
    for epoch in range(w["epochs"]):
        sampler.set_epoch(epoch)
        idx = torch.tensor(list(iter(sampler)))
        if a.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        for s in range(0, len(idx), B):
            i = idx[s:s + B]
            loss = F.cross_entropy(net(X[i]), Y[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.workload == "lstm":
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        if a.world > 1:
            dist.barrier()
        seconds += time.perf_counter() - t0
        samples += len(idx) * a.world
    if a.rank == 0:
        print(json.dumps({"samples_per_s": samples / seconds, "threads": torch.get_num_threads()}), flush=True)
    if a.world > 1:
        dist.destroy_process_group()


# ---- the driver ---------------------------------------------------------------------------------
def env():
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if os.getuid() == 0:  # Open MPI refuses root unless told twice
        e.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return e


def run(cmd):
    p = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def nabla(a, w, procs, threads, batch):
    """(samples/s, allreduce ms per step) of one `nabla train` run, from its --metrics file."""
    with tempfile.TemporaryDirectory() as d:
        m = os.path.join(d, "m.jsonl")
        cmd = [os.path.join(a.build, "nabla"), "train", "--data", a.data, *w["args"].split(), "--batch", str(batch),
               "--epochs", str(w["epochs"]), "--limit", str(w["limit"]), "--threads", str(threads), "--seed",
               str(a.seed), "--metrics", m]
        if procs > 1:
            cmd = [a.mpirun, "-np", str(procs), "--bind-to", "none"] + cmd
        run(cmd)
        with open(m) as f:
            recs = [r for r in map(json.loads, f) if "seconds" in r]  # the epoch lines
    secs = sum(r["seconds"] for r in recs)
    samples = sum(r["samples_per_sec"] * r["seconds"] for r in recs)
    ar = [r.get("allreduce_ms_per_step") for r in recs]
    return samples / secs, (statistics.mean(ar) if None not in ar else None)


def torch_ddp(a, name, world, batch):
    port = str(29500 + os.getpid() % 1000)
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--torch-worker", "--workload", name,
                               "--world", str(world), "--rank", str(r), "--batch", str(batch), "--seed",
                               str(a.seed), "--data", a.data],
                              env=dict(env(), MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]
    outs = [p.communicate() for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError("PyTorch DDP failed:\n" + "".join(o + e for o, e in outs))
    r = json.loads(outs[0][0].strip().splitlines()[-1])
    if r["threads"] != 1:
        raise RuntimeError("torch ran with %d threads" % r["threads"])
    return r["samples_per_s"]


COLUMNS = [("1p1t", "1 proc x 1 thread"), ("1p2t", "1 proc x 2 threads"), ("2p1t", "2 procs x B/2"),
           ("2p1tw", "2 procs x B"), ("ddp1", "PyTorch 1 proc"), ("ddp2", "PyTorch DDP 2 x B/2")]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--workloads", default="a,b,lstm,cnn")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--data", default=DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mpirun", default=shutil.which("mpirun") or "mpirun")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch runs")
    p.add_argument("--markdown", action="store_true", help="print the results as Markdown tables")
    # the PyTorch worker (internal)
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--workload", default="a", help=argparse.SUPPRESS)
    p.add_argument("--world", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_worker:
        return torch_worker(a)
    names = [w for w in a.workloads.split(",") if w]
    for w in names:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (%s)" % (w, ", ".join(WORKLOADS)))
    busy0, t0 = busy_cores(), time.time()
    print("%.2f cores busy before the start; %d repetitions; load average %s" % (
        busy0, a.reps, " ".join("%.2f" % x for x in os.getloadavg())), flush=True)
    rows = []
    for name in names:
        w = WORKLOADS[name]
        B = w["batch"]
        got = {k: [] for k, _ in COLUMNS}
        allreduce = []
        for r in range(a.reps):
            got["1p1t"].append(nabla(a, w, 1, 1, B)[0])
            got["1p2t"].append(nabla(a, w, 1, 2, B)[0])
            sps, ar = nabla(a, w, 2, 1, B // 2)
            got["2p1t"].append(sps)
            allreduce.append(ar)
            got["2p1tw"].append(nabla(a, w, 2, 1, B)[0])
            if not a.no_torch:
                got["ddp1"].append(torch_ddp(a, name, 1, B))
                got["ddp2"].append(torch_ddp(a, name, 2, B // 2))
            print("  %-4s rep %d: %s  allreduce %.3f ms/step" % (
                name, r + 1, "  ".join("%s %7.0f" % (k, v[-1]) for k, v in got.items() if v), allreduce[-1]),
                flush=True)
        med = {k: statistics.median(v) for k, v in got.items() if v}
        ratios = sorted(y / x for x, y in zip(got["1p1t"], got["2p1t"]))
        rows.append(dict(title=w["title"], med=med, allreduce=statistics.median(allreduce), ratios=ratios))
    busy1 = busy_cores()
    print("%.2f cores busy after the end; %.0f s; load average %s" % (
        busy1, time.time() - t0, " ".join("%.2f" % x for x in os.getloadavg())))
    print()
    cols = [(k, t) for k, t in COLUMNS if k in rows[0]["med"]]
    if a.markdown:
        print("| workload | " + " | ".join(t for _, t in cols) + " | allreduce ms/step | 2p / 1p | range |")
        print("|---|" + "---:|" * len(cols) + "---:|---:|---|")
        for r in rows:
            print("| %s | %s | %.3f | **%.2f×** | %.2f–%.2f |" % (
                r["title"], " | ".join("{:,.0f}".format(r["med"][k]) for k, _ in cols), r["allreduce"],
                r["med"]["2p1t"] / r["med"]["1p1t"], r["ratios"][0], r["ratios"][-1]))
    else:
        print("%-36s" % "median samples/s" + "".join("%20s" % t for _, t in cols) + "  allreduce ms  2p/1p")
        for r in rows:
            print("%-36s" % r["title"] + "".join("%20.0f" % r["med"][k] for k, _ in cols) +
                  "  %11.3f  %5.2fx" % (r["allreduce"], r["med"]["2p1t"] / r["med"]["1p1t"]))
    if max(busy0, busy1) > 0.25:
        print("\nwarning: other work was running on the machine: figures are unreliable", file=sys.stderr)


if __name__ == "__main__":
    main()
