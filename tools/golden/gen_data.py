#!/usr/bin/python3
"""gen_data.py - golden index lists for tests/test_data.c: torch.utils.data's random_split,
DistributedSampler and SubsetRandomSampler, which nabla must reproduce index for index.

  split.<i>.args      int32 [n, seed, chained]: dataset length, generator seed, and 1 when the
                      case splits part 0 of the previous case again with the same generator
                      (how `nabla train` takes a validation part after the test part)
  split.<i>.in        float64: the lengths or fractions given to random_split
  split.<i>.fraction  int32 [1]: 1 if `in` holds fractions
  split.<i>.lengths   int32: the lengths of the parts
  split.<i>.indices   int32: the parts' indices, one part after the other (long lists: a digest,
                      see below)
  dist.<i>.args       int32 [n, num_replicas, drop_last, shuffle, seed, epoch]
  dist.<i>.indices    int32 [num_replicas, num_samples]: list(sampler) for every rank
  subset.<i>.args     int32 [seed, epochs]
  subset.<i>.in       int32: the subset's indices
  subset.<i>.orders   int32 [epochs, len]: list(sampler), epoch after epoch, one generator
Lists longer than 2000 indices are stored as "<name>.digest" int32 [count, hash, first 32...]:
hash = fold of h = (h * 1000003 + v + 1) mod 2147483647 from h = 0 over the list, so the file
stays small (a random permutation does not compress) and the match stays exact.

Run: /usr/bin/python3 tools/golden/gen_data.py   (PyTorch 1.13, Debian python3-torch)"""
import os
import sys
import warnings

import numpy as np
import torch
from torch.utils.data import DistributedSampler, Subset, SubsetRandomSampler, random_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

warnings.filterwarnings("ignore")  # random_split warns about empty parts
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
g = Golden()
P = 2147483647


def add_list(name, values):
    """Add an index list (any shape), as it is or, when long, as a digest."""
    a = np.asarray(values, dtype=np.int64)
    if a.size <= 2000:
        g.add(name, a.astype(np.int32))
        return
    h = 0
    for v in a.reshape(-1).tolist():
        h = (h * 1000003 + v + 1) % P
    g.add(name + ".digest", [a.size, h] + a.reshape(-1)[:32].tolist(), np.int32)

# ---- random_split ------------------------------------------------------------------------------
SPLITS = [  # (n, lengths or fractions, seed, chained)
    (10, [3, 7], 42, 0),
    (10, [0.3, 0.3, 0.4], 42, 0),
    (30, [0.3, 0.3, 0.4], 42, 0),
    (5, [0.5, 0.5], 0, 0),
    (7, [0.5, 0.5], 3, 0),
    (17, [0.25, 0.25, 0.25, 0.25], 9, 0),
    (101, [1 / 3, 1 / 3, 1 / 3], 5, 0),
    (100, [0.8, 0.2], 0, 0),
    (100, [0.9, 0.1], 1, 0),
    (1000, [0.7, 0.15, 0.15], 12345, 0),
    (1, [1, 0], 0, 0),
    (3, [0, 3, 0], 2, 0),
    (60000, [54000, 6000], 0, 0),
    (60000, [0.9, 0.1], 7, 0),
    (150, [0.8, 0.2], 0, 0),  # nabla train --test-split 0.2 --val-split 0.1 --seed 0 on 150 rows:
    (120, [0.9, 0.1], 0, 1),  # ... then the validation part of the first part, same generator
    (178, [0.75, 0.25], 3, 0),
    (134, [0.8, 0.2], 3, 1),
]
gen = None
prev = None
for i, (n, lengths, seed, chained) in enumerate(SPLITS):
    if chained:
        ds = prev[0]  # the previous case's first part, split with the same generator
        assert len(ds) == n
    else:
        gen = torch.Generator().manual_seed(seed)
        ds = Subset(range(n), list(range(n)))
    parts = random_split(ds, lengths, generator=gen)
    prev = parts
    fraction = any(isinstance(x, float) for x in lengths)
    g.add(f"split.{i}.args", [n, seed, chained], np.int32)
    g.add(f"split.{i}.in", np.array(lengths, dtype=np.float64))
    g.add(f"split.{i}.fraction", [int(fraction)], np.int32)
    g.add(f"split.{i}.lengths", [len(p) for p in parts], np.int32)
    # a part's indices into the case's own dataset (positions 0..n-1)
    add_list(f"split.{i}.indices", [j for p in parts for j in p.indices])

# ---- DistributedSampler ------------------------------------------------------------------------
k = 0
for n in [0, 1, 5, 10, 11, 64, 101, 1000]:
    for R in [1, 2, 3, 4, 8]:
        for drop in [0, 1]:
            runs = [(1, seed, epoch) for seed in (0, 7) for epoch in (0, 1, 5)] + [(0, 0, 0)]
            for shuffle, seed, epoch in runs:
                ranks = []
                for r in range(R):
                    s = DistributedSampler(range(n), num_replicas=R, rank=r, shuffle=bool(shuffle), seed=seed,
                                           drop_last=bool(drop))
                    s.set_epoch(epoch)
                    ranks.append(list(s))
                g.add(f"dist.{k}.args", [n, R, drop, shuffle, seed, epoch], np.int32)
                g.add(f"dist.{k}.indices", np.array(ranks, dtype=np.int32).reshape(R, len(ranks[0])))
                k += 1

# ---- SubsetRandomSampler (and with range(n): nabla's random sampler) ---------------------------
SUBSETS = [(list(range(1)), 0, 2), (list(range(10)), 0, 3), (list(range(10)), 3, 3),
           (list(range(1000)), 11, 2), ([5, 3, 9, 100, 42, 7], 1, 4), (list(range(60000)), 0, 2)]
for i, (idx, seed, epochs) in enumerate(SUBSETS):
    s = SubsetRandomSampler(idx, generator=torch.Generator().manual_seed(seed))
    g.add(f"subset.{i}.args", [seed, epochs], np.int32)
    add_list(f"subset.{i}.in", idx)
    add_list(f"subset.{i}.orders", [list(s) for _ in range(epochs)])

g.save(os.path.join(OUT, "data.nbg.gz"))
print(f"data.nbg.gz: {len(SPLITS)} random_split cases, {k} DistributedSampler cases, "
      f"{len(SUBSETS)} SubsetRandomSampler cases")
