#!/usr/bin/python3
"""bench_csv.py - how long a 60,000 x 785 CSV takes to load: nabla against numpy.loadtxt.

The Fashion-MNIST training split written the way it is published as CSV (Kaggle's
fashion-mnist_train.csv: a header line "label,pixel1,...,pixel784", then one row per image,
the label first; 133 MB), raw and gzip'd. Each side loads it into float32 arrays:

  nabla: build/bench_csv FILE --skip-rows 1 --target-col 0   (nb_dataset_csv: libcsv, one pass,
         every field checked, features [60000, 784] float32 + labels int32)
  numpy: numpy.loadtxt(FILE, dtype=float32, delimiter=",", skiprows=1)   (what a PyTorch user
         without pandas writes before torch.from_numpy), gzip'd files through its own gzip reader

Repetitions alternate the two sides; the figures are medians. 1 thread each. Run it on a quiet
machine (see `uptime`); the CSV files are written to --dir (default: a temporary folder).

  /usr/bin/python3 tools/bench_csv.py [--reps 5] [--build build] [--dir DIR] [--data DIR]"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    nd = buf[3]
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(buf, np.uint8, offset=4 + 4 * nd).reshape(dims)


def write_csv(data, path):
    x = read_idx(os.path.join(data, "train-images-idx3-ubyte.gz")).reshape(60000, -1)
    y = read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))
    with open(path, "w") as f:
        f.write("label," + ",".join(f"pixel{i + 1}" for i in range(784)) + "\n")
        for i in range(len(y)):
            f.write(f"{y[i]}," + ",".join(map(str, x[i].tolist())) + "\n")
    with open(path, "rb") as f, gzip.open(path + ".gz", "wb", compresslevel=6) as g:
        g.write(f.read())


def nabla_load(build, path):
    out = subprocess.run([os.path.join(build, "tools", "bench", "bench_csv"), path, "--skip-rows", "1",
                          "--target-col", "0"], capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")).stdout.splitlines()
    first, last = json.loads(out[0]), json.loads(out[-1])
    assert first["rows"] == 60000 and first["features"] == 784, first
    return first["seconds"], last["peak_rss_mib"]


def numpy_load(path):
    code = ("import sys, time, resource, numpy as np; t = time.monotonic(); "
            "a = np.loadtxt(sys.argv[1], dtype=np.float32, delimiter=',', skiprows=1); "
            "print(time.monotonic() - t, a.shape[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")).stdout.split()
    assert int(out[1]) == 60000
    return float(out[0]), float(out[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--dir", default=None)
    ap.add_argument("--data", default=os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--write", help=argparse.SUPPRESS)  # internal: write the files and exit
    a = ap.parse_args()
    if a.write:
        return write_csv(a.data, a.write)
    with tempfile.TemporaryDirectory() as tmp:
        d = a.dir or tmp
        path = os.path.join(d, "fashion-mnist_train.csv")
        if not os.path.exists(path + ".gz"):  # in a child: Linux keeps a process's peak RSS across
            # fork and exec, so the children that measure must not be forked from a big parent
            subprocess.run([sys.executable, __file__, "--write", path, "--data", a.data], check=True)
        print(f"uptime: {os.getloadavg()[0]:.2f} (1-minute load average)")
        print(f"{path}: {os.path.getsize(path) / 1e6:.0f} MB, .gz {os.path.getsize(path + '.gz') / 1e6:.0f} MB")
        print("| file | nabla s | numpy.loadtxt s | ratio | peak RSS nabla / numpy MiB |")
        print("|---|---:|---:|---:|---|")
        for f in (path, path + ".gz"):
            ns, ps, nr, pr = [], [], 0, 0
            for _ in range(a.reps):
                t, nr = nabla_load(a.build, f)
                ns.append(t)
                t, pr = numpy_load(f)
                ps.append(t)
            n, p = statistics.median(ns), statistics.median(ps)
            print(f"| {os.path.basename(f)} | {n:.2f} | {p:.2f} | {p / n:.2f}x | {nr:.0f} / {pr:.0f} |")


if __name__ == "__main__":
    main()
