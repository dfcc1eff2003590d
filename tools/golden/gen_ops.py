#!/usr/bin/python3
"""gen_ops.py - golden vectors for the op catalogue (tests/test_ops.c).

For every case: its inputs (float32, or int32 for indices) "<case>.x0", "<case>.x1", ...,
an upstream gradient "<case>.w", the output "<case>.y" and the gradient of sum(w * y) with
respect to each float input "<case>.g0", ... . PyTorch computes in float64 from the float32
inputs (so the goldens carry no float32 rounding of their own); values are stored as float32.
Inputs are drawn away from kinks (relu/abs at 0, clamp bounds, ties of max) so the C test can
also run a finite-difference gradcheck on them; the "tie" cases exist for the goldens only.
Run: /usr/bin/python3 tools/golden/gen_ops.py"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
torch.manual_seed(1234)
G = Golden()


def unif(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(tuple(shape)) * (hi - lo) + lo).float()


def signed(*shape, lo=0.1, hi=1.5):
    """Magnitudes in [lo, hi] with random signs: away from 0."""
    s = torch.where(torch.rand(tuple(shape)) < 0.5, -1.0, 1.0)
    return (unif(*shape, lo=lo, hi=hi) * s).float()


def away(*shape, lo, hi, kinks, margin=0.05):
    """Uniform in [lo, hi) but at least margin away from every kink."""
    x = unif(*shape, lo=lo, hi=hi)
    for k in kinks:
        close = (x - k).abs() < margin
        x = torch.where(close, x + 2 * margin * torch.sign(x - k + 1e-9), x)
    return x.float()


def distinct(*shape, spacing=0.1):
    """A random permutation of well separated values (no near-ties), shifted around 0."""
    n = 1
    for s in shape:
        n *= s
    v = torch.randperm(n).double() * spacing - spacing * n / 2 + unif(n, lo=0, hi=spacing / 10).double()
    return v.reshape(*shape).float()


def case(name, fn, *inputs):
    """Record inputs, output and input gradients of fn (evaluated in float64)."""
    xs = []
    for i, x in enumerate(inputs):
        if x.dtype in (torch.int32, torch.int64):
            G.add(f"{name}.x{i}", x.int())
            xs.append(x.long())
        else:
            G.add(f"{name}.x{i}", x.float())
            xs.append(x.double().requires_grad_())
    y = fn(*xs)
    w = unif(*y.shape).double()
    G.add(f"{name}.w", w.float())
    G.add(f"{name}.y", y.float())
    floats = [x for x in xs if x.is_floating_point()]
    if y.requires_grad:
        grads = torch.autograd.grad(y, floats, w, allow_unused=True)
    else:
        grads = [None] * len(floats)
    k = 0
    for i, x in enumerate(xs):
        if x.is_floating_point():
            g = grads[k] if grads[k] is not None else torch.zeros_like(x)
            G.add(f"{name}.g{i}", g.float())
            k += 1


# ---- elementwise with broadcasting ------------------------------------------------------------
for op, f, bgen in [("add", torch.add, unif), ("sub", torch.sub, unif), ("mul", torch.mul, unif),
                    ("div", torch.div, lambda *s: signed(*s, lo=0.5, hi=2.0))]:
    case(f"{op}_same", f, unif(3, 4), bgen(3, 4))
    case(f"{op}_row", f, unif(3, 4), bgen(4))
    case(f"{op}_col", f, unif(3, 4), bgen(3, 1))
    case(f"{op}_lead", f, unif(4), bgen(3, 4))
    case(f"{op}_0d", f, unif(3, 4), bgen())
    case(f"{op}_both", f, unif(2, 1, 3, 1), bgen(4, 1, 5))
    case(f"{op}_mid", f, unif(2, 3, 4), bgen(2, 1, 4))
case("mul_self", lambda a: a * a, unif(3, 4))
case("add_scalar", lambda a: a + 0.75, unif(3, 4))
case("mul_scalar", lambda a: a * -1.5, unif(3, 4))

# ---- unary ---------------------------------------------------------------------------------
case("neg", torch.neg, unif(3, 4))
case("exp", torch.exp, unif(3, 4, lo=-2, hi=2))
case("log", torch.log, unif(3, 4, lo=0.2, hi=3))
case("sqrt", torch.sqrt, unif(3, 4, lo=0.2, hi=3))
case("abs", torch.abs, signed(3, 4))
for tag, e, x in [("2", 2.0, unif(3, 4, lo=-2, hi=2)), ("3", 3.0, unif(3, 4, lo=-2, hi=2)),
                  ("half", 0.5, unif(3, 4, lo=0.2, hi=3)), ("m1", -1.0, signed(3, 4, lo=0.5)),
                  ("mhalf", -0.5, unif(3, 4, lo=0.3, hi=3)), ("m2", -2.0, signed(3, 4, lo=0.5)),
                  ("2p5", 2.5, unif(3, 4, lo=0.2, hi=2)), ("0", 0.0, unif(3, 4)),
                  ("1", 1.0, unif(3, 4)), ("m1p5", -1.5, unif(3, 4, lo=0.3, hi=2))]:
    case(f"pow_{tag}", lambda a, e=e: torch.pow(a, e), x)
case("clamp", lambda a: torch.clamp(a, -0.5, 0.7), away(4, 5, lo=-2, hi=2, kinks=[-0.5, 0.7]))
case("clamp_min", lambda a: torch.clamp(a, min=-0.25), away(4, 5, lo=-2, hi=2, kinks=[-0.25]))
case("clamp_max", lambda a: torch.clamp(a, max=0.3), away(4, 5, lo=-2, hi=2, kinks=[0.3]))

# ---- activations (existing ops) -------------------------------------------------------------
case("relu", F.relu, signed(3, 5))
case("leaky_relu", lambda a: F.leaky_relu(a, 0.1), signed(3, 5))
case("tanh", torch.tanh, unif(3, 5, lo=-2, hi=2))
case("sigmoid", torch.sigmoid, unif(3, 5, lo=-3, hi=3))
case("gelu", F.gelu, unif(3, 5, lo=-3, hi=3))
case("softmax_1", lambda a: F.softmax(a, 1), unif(3, 5, lo=-2, hi=2))
case("softmax_0", lambda a: F.softmax(a, 0), unif(3, 5, lo=-2, hi=2))
case("softmax_3d", lambda a: F.softmax(a, 1), unif(2, 3, 4, lo=-2, hi=2))
case("log_softmax_1", lambda a: F.log_softmax(a, 1), unif(3, 5, lo=-2, hi=2))
case("log_softmax_0", lambda a: F.log_softmax(a, 0), unif(3, 5, lo=-2, hi=2))
case("log_softmax_3d", lambda a: F.log_softmax(a, -1), unif(2, 3, 4, lo=-2, hi=2))
# large logits: x - max - log(sum) must not round max + log(sum) first (pytorch#11752)
case("softmax_big", lambda a: F.softmax(a, 1), unif(3, 5, lo=4990, hi=5000))
case("log_softmax_big", lambda a: F.log_softmax(a, 1), unif(3, 5, lo=4990, hi=5000))
case("log_softmax_big_0", lambda a: F.log_softmax(a, 0), unif(5, 3, lo=4990, hi=5000))
case("linear", F.linear, unif(3, 5), unif(4, 5), unif(4))
case("linear_nobias", lambda x, w: F.linear(x, w), unif(3, 5), unif(4, 5))
case("linear_3d", F.linear, unif(2, 3, 5), unif(4, 5), unif(4))
ce_t = torch.tensor([1, 0, 4, 2])
case("cross_entropy", lambda x, t: F.cross_entropy(x, t), unif(4, 5, lo=-2, hi=2), ce_t)

# ---- linear algebra and layout --------------------------------------------------------------
case("matmul", torch.matmul, unif(3, 4), unif(4, 5))
case("matmul_batched", torch.matmul, unif(2, 3, 4), unif(2, 4, 5))
case("matmul_self", lambda a: a @ a, unif(4, 4))
case("transpose_01", lambda a: a.transpose(0, 1), unif(3, 4))
case("transpose_02", lambda a: a.transpose(0, 2), unif(2, 3, 4))
case("transpose_13", lambda a: a.transpose(1, 3), unif(2, 3, 4, 5))
case("transpose_neg", lambda a: a.transpose(-1, -2), unif(2, 3, 4))
case("transpose_same", lambda a: a.transpose(1, 1), unif(2, 3))
case("reshape", lambda a: a.reshape(2, 6), unif(3, 4))
case("reshape_infer", lambda a: a.reshape(-1, 3), unif(3, 4))
case("view", lambda a: a.view(4, 3), unif(2, 6))
case("flatten_12", lambda a: a.flatten(1, 2), unif(2, 3, 4))
case("flatten_all", lambda a: a.flatten(), unif(2, 3, 4))

# ---- reductions ----------------------------------------------------------------------------
case("sum", torch.sum, unif(3, 4))
case("mean", torch.mean, unif(3, 4))
case("sum_dim0", lambda a: a.sum(0), unif(3, 4))
case("sum_dim1_keep", lambda a: a.sum(1, keepdim=True), unif(3, 4))
case("sum_dim_3d", lambda a: a.sum(-2), unif(2, 3, 4))
case("mean_dim_3d", lambda a: a.mean(1), unif(2, 3, 4))
case("mean_dim_keep", lambda a: a.mean(-1, keepdim=True), unif(2, 3, 4))
case("max", torch.max, distinct(3, 4))
case("max_tie", torch.max, torch.tensor([[0.5, 2.0, -1.0], [2.0, 1.5, 2.0]]))
case("max_dim1", lambda a: a.max(1).values, distinct(3, 5))
case("max_dim0_keep", lambda a: a.max(0, keepdim=True).values, distinct(3, 2, 4))
case("max_dim_3d", lambda a: a.max(1).values, distinct(2, 3, 4))
case("max_dim_tie", lambda a: a.max(1).values, torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5]]))

# ---- indexing and joining -------------------------------------------------------------------
case("index_select", lambda a, i: a.index_select(0, i), unif(5, 3), torch.tensor([4, 0, 4, 2]))
case("index_select_3d", lambda a, i: a.index_select(0, i), unif(4, 2, 3), torch.tensor([3, 1]))
case("gather", lambda a, i: a.gather(0, i), unif(4, 3), torch.tensor([[3, 0, 1], [3, 3, 2]]))
case("gather_small", lambda a, i: a.gather(0, i), unif(4, 3), torch.tensor([[1, 2], [0, 0], [3, 1]]))
case("gather_3d", lambda a, i: a.gather(0, i), unif(3, 2, 4),
     torch.tensor([[[2, 0, 1], [1, 1, 0]], [[0, 2, 2], [2, 0, 1]]]))
case("cat_0", lambda a, b: torch.cat([a, b], 0), unif(2, 3), unif(4, 3))
case("cat_1", lambda a, b, c: torch.cat([a, b, c], 1), unif(2, 3), unif(2, 1), unif(2, 2))
case("cat_3d", lambda a, b: torch.cat([a, b], -1), unif(2, 3, 2), unif(2, 3, 3))
case("cat_self", lambda a: torch.cat([a, a], 0), unif(2, 3))
case("stack_0", lambda a, b, c: torch.stack([a, b, c], 0), unif(2, 3), unif(2, 3), unif(2, 3))
case("stack_1", lambda a, b: torch.stack([a, b], 1), unif(2, 3), unif(2, 3))
case("stack_last", lambda a, b: torch.stack([a, b], -1), unif(2, 3), unif(2, 3))
case("slice_1", lambda a: a[:, 1:4], unif(4, 5))
case("slice_neg", lambda a: a.narrow(0, 1, 2), unif(4, 5))
case("slice_3d", lambda a: a[:, 1:3, :], unif(2, 4, 3))
case("split_0", lambda a: torch.cat([c * (i + 1) for i, c in enumerate(a.split(2, 0))], 0), unif(5, 4))
case("split_1", lambda a: torch.cat([c * (i + 1) for i, c in enumerate(a.split(3, 1))], 1), unif(2, 7))

G.save(os.path.join(OUT, "ops.nbg.gz"))
print("wrote", os.path.join(OUT, "ops.nbg.gz"), len(G.entries), "entries")
