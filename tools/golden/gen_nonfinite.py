#!/usr/bin/python3
"""gen_nonfinite.py - NaN and +-Inf through every op, forward and backward (tests/test_nonfinite.c).

Each case is recorded twice, in float32 as the C side computes:
  "<case>"    inputs with NaN, +Inf and -Inf planted in them, a finite upstream gradient;
  "<case>~w"  finite inputs, NaN, +Inf and -Inf planted in the upstream gradient.
Entries: inputs "<tag>.x0", ... (float32, or int32 for indices), the upstream gradient "<tag>.w",
the output "<tag>.y" and the gradient of sum(w * y) for each float input "<tag>.g0", ...; for a
module case also its parameters "<tag>.p0", ... and their gradients "<tag>.q0", ... . The test
compares the kind of every element (NaN, +Inf, -Inf, finite) exactly and finite values loosely:
non-finite values must propagate where PyTorch propagates them, and nowhere else.
Run: /usr/bin/python3 tools/golden/gen_nonfinite.py"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
torch.manual_seed(4321)
torch.backends.mkldnn.enabled = False  # the reference im2col path: padding zeros times the weights
G = Golden()
NAN, INF = float("nan"), float("inf")


def unif(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(tuple(shape)) * (hi - lo) + lo).float()


def poisoned(x, every=5):
    """x with NaN, +Inf and -Inf in turn at one element of every `every`, the offset shifting
    so that rows and channels get different kinds."""
    f = x.clone().reshape(-1)
    kinds = [NAN, INF, -INF]
    for i in range(0, f.numel(), every):
        j = i + (i // every) % every
        if j < f.numel():
            f[j] = kinds[(i // every) % 3]
    return f.reshape(x.shape)


def record(tag, fn, xs, w, params=()):
    leaves = []
    for i, x in enumerate(xs):
        if x.dtype in (torch.int32, torch.int64):
            G.add(f"{tag}.x{i}", x.int())
            leaves.append(x.long())
        else:
            G.add(f"{tag}.x{i}", x.float())
            leaves.append(x.float().clone().requires_grad_())
    for i, p in enumerate(params):
        G.add(f"{tag}.p{i}", p.detach().float())
    y = fn(*leaves)
    G.add(f"{tag}.w", w.float())
    G.add(f"{tag}.y", y.detach().float())
    floats = [x for x in leaves if x.is_floating_point()] + list(params)
    grads = torch.autograd.grad(y, floats, w, allow_unused=True) if y.requires_grad else [None] * len(floats)
    k = 0
    for i, x in enumerate(leaves):
        if x.is_floating_point():
            g = grads[k] if grads[k] is not None else torch.zeros_like(x)
            G.add(f"{tag}.g{i}", g.float())
            k += 1
    for i, p in enumerate(params):
        g = grads[k + i] if grads[k + i] is not None else torch.zeros_like(p)
        G.add(f"{tag}.q{i}", g.float())


def case(name, fn, *inputs, poison_inputs=None, params=()):
    """Record name (poisoned float inputs; poison_inputs: which ones, default all) and name~w
    (clean inputs, poisoned upstream gradient)."""
    y = fn(*[x.long() if x.dtype in (torch.int32, torch.int64) else x for x in inputs])
    which = range(len(inputs)) if poison_inputs is None else poison_inputs
    bad = [poisoned(x) if i in which and x.is_floating_point() else x for i, x in enumerate(inputs)]
    record(name, fn, bad, unif(*y.shape), params)
    w = poisoned(unif(*y.shape), every=3) if y.dim() else torch.tensor(NAN)
    record(name + "~w", fn, inputs, w, params)


# ---- elementwise ------------------------------------------------------------------------------
# 32 elements: PyTorch's vectorised loops cover them all (its scalar tail can differ: elu's
# backward passes the gradient of a NaN input there, and gives NaN in the vector part)
for op, f in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div)]:
    case(op, f, unif(4, 8), unif(4, 8))
    case(op + "_bcast", f, unif(4, 8), unif(8))
case("div_zero", torch.div, unif(2, 3), torch.tensor([0.0, -0.0, 1.0]), poison_inputs=[0])
case("add_scalar", lambda a: a + 0.75, unif(4, 8))
case("mul_scalar", lambda a: a * -1.5, unif(4, 8))
case("mul_scalar_0", lambda a: a * 0.0, unif(4, 8))
case("neg", torch.neg, unif(4, 8))
case("exp", torch.exp, unif(4, 8, lo=-2, hi=2))
case("exp_big", torch.exp, unif(4, 8, lo=80, hi=100))
case("log", torch.log, torch.tensor([[0.5, 0.0, -1.0, 2.0, 1e-30]]).repeat(4, 2)[:, :8])
case("sqrt", torch.sqrt, torch.tensor([[0.5, 0.0, -1.0, 2.0, 3.0]]).repeat(4, 2)[:, :8])
case("abs", torch.abs, unif(4, 8))
for tag, e in [("2", 2.0), ("3", 3.0), ("half", 0.5), ("m1", -1.0), ("0", 0.0), ("1", 1.0), ("m1p5", -1.5)]:
    case("pow_" + tag, lambda a, e=e: torch.pow(a, e), unif(4, 8, lo=-2, hi=2))
case("clamp", lambda a: torch.clamp(a, -0.5, 0.7), unif(4, 8, lo=-2, hi=2))
case("clamp_min", lambda a: torch.clamp(a, min=-0.25), unif(4, 8, lo=-2, hi=2))
case("clamp_max", lambda a: torch.clamp(a, max=0.3), unif(4, 8, lo=-2, hi=2))

# ---- activations ----------------------------------------------------------------------------
case("relu", F.relu, unif(4, 8))
case("leaky_relu", lambda a: F.leaky_relu(a, 0.1), unif(4, 8))
case("tanh", torch.tanh, unif(4, 8, lo=-3, hi=3))
case("sigmoid", torch.sigmoid, unif(4, 8, lo=-3, hi=3))
case("gelu", F.gelu, unif(4, 8, lo=-3, hi=3))
case("elu", lambda a: F.elu(a, 1.0), unif(4, 8, lo=-3, hi=3))
case("silu", F.silu, unif(4, 8, lo=-3, hi=3))
case("softmax", lambda a: F.softmax(a, 1), unif(6, 5, lo=-2, hi=2))
case("softmax_0", lambda a: F.softmax(a, 0), unif(6, 5, lo=-2, hi=2))
case("log_softmax", lambda a: F.log_softmax(a, 1), unif(6, 5, lo=-2, hi=2))
case("log_softmax_0", lambda a: F.log_softmax(a, 0), unif(6, 5, lo=-2, hi=2))

# ---- linear algebra, layout -----------------------------------------------------------------
case("matmul", torch.matmul, unif(4, 6), unif(6, 5))
case("matmul_batched", torch.matmul, unif(2, 4, 6), unif(2, 6, 3))
case("linear", F.linear, unif(5, 6), unif(4, 6), unif(4))
case("transpose", lambda a: a.transpose(0, 1), unif(4, 5))
case("reshape", lambda a: a.reshape(5, 4), unif(4, 5))
case("flatten", lambda a: a.flatten(1, 2), unif(2, 3, 4))

# ---- reductions -----------------------------------------------------------------------------
case("sum", torch.sum, unif(4, 5))
case("sum_inf", torch.sum, unif(4, 5).index_put_((torch.tensor([1, 3]), torch.tensor([2, 0])), torch.tensor([INF, INF])),
     poison_inputs=[])
case("mean", torch.mean, unif(4, 5))
case("sum_dim", lambda a: a.sum(1), unif(6, 5))
case("sum_dim0", lambda a: a.sum(0, keepdim=True), unif(6, 5))
case("mean_dim", lambda a: a.mean(1), unif(6, 5))
case("max", torch.max, unif(4, 5))
case("max_inf", torch.max, unif(4, 5).index_put_((torch.tensor([2]), torch.tensor([1])), torch.tensor([INF])),
     poison_inputs=[])
case("max_ninf", torch.max, torch.full((2, 3), -INF), poison_inputs=[])
case("max_dim", lambda a: a.max(1).values, unif(6, 5))
case("max_dim0", lambda a: a.max(0, keepdim=True).values, unif(6, 5))

# ---- indexing and joining -------------------------------------------------------------------
case("index_select", lambda a, i: a.index_select(0, i), unif(5, 4), torch.tensor([4, 0, 4, 2, 1]))
case("gather", lambda a, i: a.gather(0, i), unif(5, 3), torch.tensor([[3, 0, 1], [4, 4, 2], [0, 1, 2]]))
case("select", lambda a: a.select(1, 2), unif(5, 4))
case("embedding", lambda i, w: F.embedding(i, w), torch.tensor([[1, 3, 0], [3, 2, 4]]), unif(5, 4))
case("cat", lambda a, b: torch.cat([a, b], 1), unif(4, 3), unif(4, 2))
case("stack", lambda a, b: torch.stack([a, b], 0), unif(4, 3), unif(4, 3))
case("slice", lambda a: a[:, 1:4], unif(4, 5))

# ---- convolution, pooling, normalisation ----------------------------------------------------
case("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), unif(2, 2, 5, 5), unif(3, 2, 3, 3), unif(3))
case("conv1d", lambda x, w, b: F.conv1d(x, w, b, padding=1), unif(2, 2, 7), unif(3, 2, 3), unif(3))
# one non-finite value: the gradients must stay finite wherever the convolution has no term
# with it (a wide-grid column or padding of dy multiplied in gives NaN there)
x = unif(2, 2, 5, 5)
x[0, 1, 2, 4] = INF
case("conv2d_edge", lambda x, w, b: F.conv2d(x, w, b, padding=1), x, unif(3, 2, 3, 3), unif(3), poison_inputs=[])
w = unif(3, 2, 3, 3)
w[1, 0, 0, 0] = NAN
case("conv2d_wnan", lambda x, w, b: F.conv2d(x, w, b, padding=1), unif(2, 2, 5, 5), w, unif(3), poison_inputs=[])
case("max_pool2d", lambda x: F.max_pool2d(x, 2), unif(2, 3, 6, 6))
case("max_pool2d_ninf", lambda x: F.max_pool2d(x, 2), torch.full((1, 1, 2, 4), -INF), poison_inputs=[])
case("avg_pool2d", lambda x: F.avg_pool2d(x, 2), unif(2, 3, 6, 6))
case("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 3)), unif(2, 3, 5, 7))
case("batch_norm", lambda x, w, b: F.batch_norm(x, torch.zeros(4), torch.ones(4), w, b, True, 0.1, 1e-5),
     unif(6, 4), unif(4), unif(4))
case("batch_norm_eval", lambda x, w, b: F.batch_norm(x, torch.full((4,), 0.25), torch.full((4,), 2.0), w, b,
                                                     False, 0.1, 1e-5), unif(6, 4), unif(4), unif(4))
case("batch_norm_2d", lambda x, w, b: F.batch_norm(x, torch.zeros(3), torch.ones(3), w, b, True, 0.1, 1e-5),
     unif(2, 3, 4, 4), unif(3), unif(3))
case("layer_norm", lambda x, w, b: F.layer_norm(x, (5,), w, b, 1e-5), unif(6, 5), unif(5), unif(5))

# ---- losses ---------------------------------------------------------------------------------
tgt = torch.tensor([1, 0, 4, 2, 3, 1])
case("cross_entropy", lambda x, t: F.cross_entropy(x, t), unif(6, 5, lo=-2, hi=2), tgt)
case("cross_entropy_none", lambda x, t: F.cross_entropy(x, t, reduction="none"), unif(6, 5, lo=-2, hi=2), tgt)
case("nll_loss", lambda x, t: F.nll_loss(x, t, reduction="none"), unif(6, 5, lo=-3, hi=0), tgt)
case("mse_loss", lambda a, b: F.mse_loss(a, b, reduction="none"), unif(4, 5), unif(4, 5))
case("l1_loss", lambda a, b: F.l1_loss(a, b, reduction="none"), unif(4, 5), unif(4, 5))
case("smooth_l1_loss", lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=0.5), unif(4, 5), unif(4, 5))
case("huber_loss", lambda a, b: F.huber_loss(a, b, reduction="none", delta=0.5), unif(4, 5), unif(4, 5))
# F.binary_cross_entropy refuses an input outside [0, 1] (NaN included): the target only
case("binary_cross_entropy", lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
     unif(4, 5, lo=0.05, hi=0.95), unif(4, 5, lo=0, hi=1), poison_inputs=[1])
case("bce_with_logits", lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"),
     unif(4, 5, lo=-3, hi=3), unif(4, 5, lo=0, hi=1))
case("kl_div", lambda a, b: F.kl_div(a, b, reduction="none"), unif(4, 5, lo=-3, hi=0), unif(4, 5, lo=0, hi=1))
case("kl_div_log", lambda a, b: F.kl_div(a, b, reduction="none", log_target=True), unif(4, 5, lo=-3, hi=0),
     unif(4, 5, lo=-3, hi=0))

# ---- recurrent layers: the fused kernels of src/kernels/rnn.c -------------------------------
for kind, cls in [("rnn_tanh", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)]:
    m = cls(3, 4, batch_first=True)
    params = list(m.parameters())
    case(kind, lambda x, m=m: m(x)[0], unif(2, 5, 3), params=params)
m = torch.nn.RNN(3, 4, batch_first=True, nonlinearity="relu")
case("rnn_relu", lambda x, m=m: m(x)[0], unif(2, 5, 3), params=list(m.parameters()))

G.save(os.path.join(OUT, "nonfinite.nbg.gz"))
print("wrote", os.path.join(OUT, "nonfinite.nbg.gz"), len(G.entries), "entries")
