#!/usr/bin/env python3
"""gen_tiny_idx.py - the tiny IDX fixtures of the tests (datasets/tiny/).

Writes an MNIST-style split pair: 100 train and 40 test 28x28 images of 10 synthetic classes
(class k: a bright horizontal or vertical bar whose position depends on k, on a dark
background with sparse noise), so that a model learns them in a few steps. Labels are (7*i + 3) % 10 for sample i. Each file is
written gzip-compressed in datasets/tiny/ and raw in datasets/tiny/raw/; the gzip files have
no name and mtime 0, so re-running the script gives the same bytes.
Plain Python 3, no numpy: python3 tools/gen_tiny_idx.py"""
import gzip
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "datasets", "tiny")
ROWS = COLS = 28


def label(i):
    return (7 * i + 3) % 10


def image(k, rng):
    px = bytearray(ROWS * COLS)
    for r in range(ROWS):
        for c in range(COLS):
            if k < 5:
                on = abs(r - (4 + 5 * k)) <= 1          # horizontal bars
            else:
                on = abs(c - (4 + 5 * (k - 5))) <= 1    # vertical bars
            v = 200 + rng.randrange(56) if on else (rng.randrange(60) if rng.random() < 0.1 else 0)
            px[r * COLS + c] = v
    return bytes(px)


def idx(dims, payload):
    return struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + struct.pack(">%dI" % len(dims), *dims) + payload


def write(name, data):
    os.makedirs(os.path.join(ROOT, "raw"), exist_ok=True)
    with open(os.path.join(ROOT, "raw", name), "wb") as f:
        f.write(data)
    with open(os.path.join(ROOT, name + ".gz"), "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))


def main():
    rng = random.Random(0)
    for prefix, n in (("train", 100), ("t10k", 40)):
        labels = bytes(label(i) for i in range(n))
        images = b"".join(image(label(i), rng) for i in range(n))
        write(prefix + "-images-idx3-ubyte", idx([n, ROWS, COLS], images))
        write(prefix + "-labels-idx1-ubyte", idx([n], labels))


if __name__ == "__main__":
    main()
