#!/usr/bin/python3
"""gen_sparse.py - row-sparse gradients from PyTorch 1.13 for tests/test_optim.c.

An nn.Embedding(20, 4, sparse=True) (PyTorch's init from a seed, stored), fed batches of 6
indices with repeats; the gradient of each batch's output is a fixed tensor (loss =
(emb(idx) * T).sum()), so the weight's sparse gradient has the rows of T in the batch's order.
Stored: the batches and T's, the uncoalesced indices/values PyTorch produces (one backward;
two accumulated, with padding_idx, as a dense sum: the order PyTorch leaves accumulated rows in
depends on the memory layout of the incoming gradient), and the weight after each of STEPS steps of SparseAdam,
SGD and Adagrad in several configurations (the optimizers of 1.13 that take sparse gradients),
and clip_grad_norm_'s total norm and clipped values for norm types 2, 1 and 3 (a sparse
gradient scaled as PyTorch 2.x scales it: 1.13 leaves it unscaled, see below).

Run: /usr/bin/python3 tools/golden/gen_sparse.py   (writes tests/golden/sparse.nbg.gz)"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "sparse.nbg.gz")
N, D, B, STEPS = 20, 4, 6, 8
torch.set_num_threads(1)
g = Golden()
rng = np.random.default_rng(3)
batches = [rng.integers(0, N, B) for _ in range(STEPS)]
for b in batches[:4]:  # repeats in every batch, several of them
    b[1] = b[0]
    b[4] = b[0]
targets = [torch.tensor(rng.standard_normal((B, D)), dtype=torch.float32) for _ in range(STEPS)]
g.add("steps", np.array([STEPS], dtype=np.int32))
for t in range(STEPS):
    g.add(f"idx.{t}", np.array(batches[t], dtype=np.int32))
    g.add(f"target.{t}", targets[t])


def embedding(padding_idx=None):
    torch.manual_seed(0)
    return torch.nn.Embedding(N, D, padding_idx=padding_idx, sparse=True)


g.add("init", embedding().weight)


def backward(emb, t):
    (emb(torch.tensor(batches[t])) * targets[t]).sum().backward()


# ---- the gradients themselves: one backward, two accumulated (with a padding row) ---------------
emb = embedding()
backward(emb, 0)
g.add("grad1.indices", emb.weight.grad._indices()[0])
g.add("grad1.values", emb.weight.grad._values())
emb = embedding(padding_idx=int(batches[1][2]))
backward(emb, 1)
backward(emb, 2)
g.add("grad2.padding_idx", np.array([batches[1][2]], dtype=np.int32))
g.add("grad2.indices", emb.weight.grad._indices()[0])
g.add("grad2.values", emb.weight.grad._values())
g.add("grad2.dense", emb.weight.grad.to_dense())

# ---- optimizers that take sparse gradients -------------------------------------------------------
O = torch.optim
CASES = {
    "sparse_adam": lambda p: O.SparseAdam(p),
    "sparse_adam_opts": lambda p: O.SparseAdam(p, lr=0.01, betas=(0.8, 0.95), eps=1e-6),
    "sparse_adam_maximize": lambda p: O.SparseAdam(p, lr=0.01, maximize=True),
    "sgd": lambda p: O.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: O.SGD(p, lr=0.1, momentum=0.9, dampening=0.1),
    "sgd_nesterov": lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "sgd_maximize": lambda p: O.SGD(p, lr=0.1, momentum=0.5, maximize=True),
    "adagrad": lambda p: O.Adagrad(p, lr=0.1),
    "adagrad_opts": lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.1, eps=1e-6),
    "adagrad_maximize": lambda p: O.Adagrad(p, lr=0.1, maximize=True),
}
for name, make in CASES.items():
    emb = embedding()
    opt = make(emb.parameters())
    for t in range(STEPS):
        opt.zero_grad(set_to_none=True)
        backward(emb, t)
        opt.step()
        g.add(f"{name}.{t}", emb.weight)

# ---- clip_grad_norm_ of a sparse gradient (with a dense one beside it) --------------------------
for nt in [2.0, 1.0, 3.0]:
    emb = embedding()
    dense = torch.nn.Parameter(torch.tensor(rng.standard_normal(5), dtype=torch.float32))
    backward(emb, 0)
    dense.grad = torch.tensor(np.linspace(-1, 1, 5), dtype=torch.float32)
    before = emb.weight.grad._values().clone()
    total = torch.nn.utils.clip_grad_norm_([emb.weight, dense], 0.5, nt)
    g.add(f"clip{int(nt)}.total", np.array([float(total)], dtype=np.float64))
    # 1.13 scales p.grad.detach(), a copy for a sparse tensor: its gradient stays unscaled. 2.x
    # scales it (g.mul_(clip_coef_clamped)), which nabla does: the expected values are 2.x's.
    assert torch.equal(emb.weight.grad._values(), before)
    g.add(f"clip{int(nt)}.values", before * torch.clamp(0.5 / (total + 1e-6), max=1.0))
    g.add(f"clip{int(nt)}.dense", dense.grad)

g.save(OUT)
print("wrote", OUT)
