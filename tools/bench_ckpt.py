#!/usr/bin/python3
"""bench_ckpt.py - checkpoint save/load time and file size, nabla vs PyTorch.

The 784-256-128-10 ReLU MLP with Adam state after one step on a random batch of 128 (what a
resumable checkpoint of benchmark (b) holds: weights, exp_avg, exp_avg_sq, step), one thread.

  nabla:   build/bench_ckpt (nb_checkpoint_save: gzip, fsync, rename, fsync of the folder;
           nb_checkpoint_load: every check, then the copy into the live model and optimizer)
  PyTorch: torch.save({"model": ..., "optimizer": ...}) to a file (plain, and with flush+fsync
           like nabla), torch.load + load_state_dict of both.

Medians of --reps runs, nabla and PyTorch measured in the same invocation (the machine is
shared: compare the ratios). Run: /usr/bin/python3 tools/bench_ckpt.py [--build build]"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_side(tmp, reps):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(128, 784), torch.randint(0, 10, (128,))
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
    path = os.path.join(tmp, "torch.pt")
    save, save_sync, load = [], [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
        t1 = time.perf_counter()
        with open(path + ".s", "wb") as f:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".s", path + ".synced")
        t2 = time.perf_counter()
        sd = torch.load(path)
        model.load_state_dict(sd["model"])
        opt.load_state_dict(sd["optimizer"])
        t3 = time.perf_counter()
        save.append((t1 - t0) * 1e3)
        save_sync.append((t2 - t1) * 1e3)
        load.append((t3 - t2) * 1e3)
    return {"save_ms": statistics.median(save), "save_fsync_ms": statistics.median(save_sync),
            "load_ms": statistics.median(load), "bytes": os.path.getsize(path)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--reps", type=int, default=21)
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench_ckpt")
    with tempfile.TemporaryDirectory(dir=os.path.join(a.build)) as tmp:
        nb = {lvl: json.loads(subprocess.run([exe, tmp, str(a.reps), str(lvl)], check=True,
                                             capture_output=True, text=True).stdout)
              for lvl in (0, -1, 1, 6)}
        pt = torch_side(tmp, a.reps)
    raw = nb[0]["tensor_bytes"]
    print(f"784-256-128-10 MLP + Adam state ({raw} bytes of float32 tensors), medians of {a.reps} runs\n")
    print("| | save (ms) | load (ms) | file size (bytes) | size / raw |")
    print("|---|---:|---:|---:|---:|")
    names = {0: "nabla (default: RLE+Huffman gzip, fsync)", -1: "nabla level -1 (gzip, stored, fsync)",
             1: "nabla level 1 (deflate -1, fsync)", 6: "nabla level 6 (deflate -6, fsync)"}
    for lvl in (0, -1, 1, 6):
        r = nb[lvl]
        print(f"| {names[lvl]} | {r['save_ms']:.1f} | {r['load_ms']:.1f} | {r['bytes']} | {r['bytes'] / raw:.3f} |")
    print(f"| torch.save / torch.load + load_state_dict | {pt['save_ms']:.1f} | {pt['load_ms']:.1f} | "
          f"{pt['bytes']} | {pt['bytes'] / raw:.3f} |")
    print(f"| torch.save + flush + fsync + rename | {pt['save_fsync_ms']:.1f} | | | |")


if __name__ == "__main__":
    main()
