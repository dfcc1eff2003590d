#!/usr/bin/python3
"""gen_conv.py - golden vectors for convolution, pooling, normalisation, the new activations and
the elementwise losses (tests/test_conv.c, tests/test_losses2.c).

Every case: float32 inputs (seeded), the op evaluated by PyTorch in float64 (so the reference
carries no float32 rounding of its own), a random upstream gradient gy, and the gradient of
sum(gy * out) for every input. Each case stores its arguments as an int32/float64 "args" entry
so the C tests need no second table. Run: /usr/bin/python3 tools/golden/gen_conv.py"""
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
torch.manual_seed(0)
warnings.filterwarnings("ignore", message="Using padding=.same. with even kernel")
g = Golden()


def put(name, value, dtype=None):
    """store float results as float32 (the tests' dtype) unless a dtype is given."""
    if dtype is None and hasattr(value, "dtype") and value.dtype == torch.float64:
        value = value.detach().float()
    g.add(name, value, dtype=dtype)


def rnd(*shape, scale=1.0):
    """float32 values (exactly representable), returned as float64."""
    return (torch.randn(tuple(shape)) * scale).float().double()


def leaf(t):
    return t.clone().requires_grad_(True)


def vjp(name, out, inputs):
    """store out, a random gy and the gradient of sum(gy * out) for each named input."""
    gy = rnd(*out.shape)
    out.backward(gy)
    put(name + ".y", out)
    put(name + ".gy", gy)
    for key, t in inputs.items():
        put(name + ".g" + key, t.grad)


# ---- convolution: args = [stride h, w, pad h, w, dil h, w, groups, same, bias, batched] -----
def conv_case(name, dims, N, C, size, O, k, stride=1, pad=0, dil=1, groups=1, same=False,
              bias=True, batched=True):
    pair = (lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims)
    shape = ((N,) if batched else ()) + (C,) + tuple(size)
    x = leaf(rnd(*shape))
    w = leaf(rnd(O, C // groups, *pair(k), scale=0.5))
    b = leaf(rnd(O)) if bias else None
    f = F.conv2d if dims == 2 else F.conv1d
    y = f(x, w, b, stride=pair(stride), padding="same" if same else pair(pad),
          dilation=pair(dil), groups=groups)
    st, pd, dl = pair(stride), pair(pad), pair(dil)
    if dims == 1:
        st, pd, dl = st + (1,), pd + (0,), dl + (1,)
    put(name + ".args", [st[0], st[1], pd[0], pd[1], dl[0], dl[1], groups, int(same),
                           int(bias), int(batched)], dtype="int32")
    put(name + ".x", x)
    put(name + ".w", w)
    ins = {"x": x, "w": w}
    if bias:
        put(name + ".b", b)
        ins["b"] = b
    vjp(name, y, ins)


CONV2D = ["c2_basic", "c2_stride_pad", "c2_dilation", "c2_groups", "c2_same_even", "c2_same_dil",
          "c2_depthwise", "c2_1x1", "c2_1x1_stride", "c2_unbatched", "c2_lenet1", "c2_lenet2",
          "c2_rows_dil"]
conv_case("c2_basic", 2, 2, 3, (7, 6), 4, 3)
conv_case("c2_stride_pad", 2, 2, 3, (7, 8), 4, (3, 2), stride=2, pad=1)
conv_case("c2_dilation", 2, 2, 2, (9, 8), 3, 3, stride=(1, 2), pad=(2, 1), dil=(2, 3))
conv_case("c2_groups", 2, 2, 4, (6, 6), 6, 3, pad=1, groups=2)
conv_case("c2_same_even", 2, 2, 3, (6, 7), 2, (4, 3), same=True, bias=False)
conv_case("c2_same_dil", 2, 1, 2, (7, 7), 3, 3, dil=2, same=True)
conv_case("c2_depthwise", 2, 2, 3, (6, 9), 6, 3, stride=(1, 2), pad=1, groups=3)
conv_case("c2_1x1", 2, 2, 4, (3, 5), 5, 1, bias=False)
conv_case("c2_1x1_stride", 2, 2, 3, (5, 5), 2, 1, stride=2)
conv_case("c2_unbatched", 2, 0, 3, (5, 6), 2, 3, pad=1, batched=False)
conv_case("c2_lenet1", 2, 2, 1, (12, 12), 6, 5, pad=2)
conv_case("c2_lenet2", 2, 2, 6, (14, 14), 16, 5)
conv_case("c2_rows_dil", 2, 2, 4, (12, 13), 4, 3, pad=(1, 2), dil=2, groups=2)
CONV1D = ["c1_basic", "c1_dil_groups", "c1_same", "c1_unbatched"]
conv_case("c1_basic", 1, 2, 3, (10,), 4, 3, stride=2, pad=1)
conv_case("c1_dil_groups", 1, 2, 3, (11,), 3, 3, dil=2, groups=3)
conv_case("c1_same", 1, 2, 2, (9,), 3, 4, same=True)
conv_case("c1_unbatched", 1, 0, 2, (8,), 3, 3, pad=2, batched=False)


# ---- pooling: args = [kh, kw, sh, sw, ph, pw, dh, dw, ceil, count_include_pad, divisor] ----
def pool_case(name, kind, shape, k, stride=None, pad=0, dil=1, ceil=False, cip=True, div=None,
              ties=False):
    pair = (lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v))
    x = rnd(*shape)
    if ties:  # ReLU-like data: many equal zeros, the tie rule matters
        x = x.clamp(min=0)
        x[..., 0:2, 0:2] = 0.5
    x = leaf(x)
    if kind == "max":
        y = F.max_pool2d(x, k, stride, pad, dil, ceil_mode=ceil)
    else:
        y = F.avg_pool2d(x, k, stride, pad, ceil_mode=ceil, count_include_pad=cip,
                         divisor_override=div)
    kk, ss, pp, dd = pair(k), pair(stride if stride is not None else 0), pair(pad), pair(dil)
    put(name + ".args", [kk[0], kk[1], ss[0], ss[1], pp[0], pp[1], dd[0], dd[1], int(ceil),
                           int(cip), div or 0], dtype="int32")
    put(name + ".x", x)
    vjp(name, y, {"x": x})


MAXPOOL = ["mp_2x2", "mp_2x2_odd", "mp_3s2p1", "mp_dil_ceil", "mp_ceil", "mp_unbatched"]
pool_case("mp_2x2", "max", (2, 3, 6, 8), 2, ties=True)
pool_case("mp_2x2_odd", "max", (1, 2, 7, 5), 2)
pool_case("mp_3s2p1", "max", (2, 2, 7, 7), 3, 2, 1, ties=True)
pool_case("mp_dil_ceil", "max", (1, 2, 9, 8), (3, 2), (2, 1), 1, 2, ceil=True)
pool_case("mp_ceil", "max", (1, 2, 7, 7), 3, 3, ceil=True)
pool_case("mp_unbatched", "max", (3, 5, 6), 2, 1)
AVGPOOL = ["ap_2x2", "ap_pad_incl", "ap_pad_excl", "ap_ceil", "ap_divisor"]
pool_case("ap_2x2", "avg", (2, 3, 6, 8), 2)
pool_case("ap_pad_incl", "avg", (2, 2, 7, 6), 3, 2, 1)
pool_case("ap_pad_excl", "avg", (2, 2, 7, 6), 3, 2, 1, cip=False)
pool_case("ap_ceil", "avg", (1, 2, 8, 7), 3, 2, 1, ceil=True, cip=False)
pool_case("ap_divisor", "avg", (1, 2, 6, 6), (2, 3), (2, 1), div=5)
ADAPTIVE = [("aap_down", (2, 3, 7, 9), (3, 4)), ("aap_global", (2, 3, 5, 6), (1, 1)),
            ("aap_none", (1, 2, 5, 7), (None, 3)), ("aap_up", (1, 2, 4, 3), (5, 4))]
for name, shape, out in ADAPTIVE:
    x = leaf(rnd(*shape))
    put(name + ".args", [-1 if v is None else v for v in out], dtype="int32")
    put(name + ".x", x)
    vjp(name, F.adaptive_avg_pool2d(x, out), {"x": x})


# ---- batch norm: several training steps, then eval --------------------------------------
# args = [dims, C, affine, track, steps, eval_steps]; momentum/eps as float64 "fargs"
def bn_case(name, dims, shape, momentum=0.1, eps=1e-5, affine=True, track=True, steps=3,
            evals=1):
    C = shape[1]
    bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(C, eps=eps, momentum=momentum,
                                                           affine=affine,
                                                           track_running_stats=track).double()
    put(name + ".args", [dims, C, int(affine), int(track), steps, evals], dtype="int32")
    put(name + ".fargs", [float("nan") if momentum is None else momentum, eps],
          dtype="float64")
    if affine:
        with torch.no_grad():
            bn.weight.copy_(rnd(C) * 0.5 + 1)
            bn.bias.copy_(rnd(C))
        put(name + ".weight", bn.weight)
        put(name + ".bias", bn.bias)
    for s in range(steps + evals):
        if s == steps:
            bn.eval()
        x = leaf(rnd(*shape, scale=1.5) + 0.3 * s)
        if affine:
            bn.weight.grad = bn.bias.grad = None
        y = bn(x)
        step = f"{name}.{s}"
        put(step + ".x", x)
        ins = {"x": x}
        if affine:
            ins.update({"weight": bn.weight, "bias": bn.bias})
        vjp(step, y, ins)
        if track:
            put(step + ".running_mean", bn.running_mean)
            put(step + ".running_var", bn.running_var)
            put(step + ".num_batches_tracked", [int(bn.num_batches_tracked)], dtype="int32")


BATCHNORM = ["bn2d", "bn2d_cma", "bn2d_plain", "bn1d", "bn1d_3d"]
bn_case("bn2d", 2, (4, 3, 5, 4))
bn_case("bn2d_cma", 2, (3, 2, 3, 3), momentum=None, eps=1e-3)
bn_case("bn2d_plain", 2, (2, 3, 4, 4), affine=False, track=False, steps=2, evals=1)
bn_case("bn1d", 1, (8, 5), momentum=0.3, steps=2, evals=2)
bn_case("bn1d_3d", 1, (4, 3, 6), steps=2)

# ---- layer norm: args = [nshape, affine, shape...] ---------------------------------------
LAYERNORM = [("ln_last", (2, 3, 5), (5,), True, 1e-5), ("ln_two", (2, 3, 4), (3, 4), True, 1e-5),
             ("ln_plain", (4, 6), (6,), False, 1e-3)]
for name, shape, ns, affine, eps in LAYERNORM:
    ln = nn.LayerNorm(ns, eps=eps, elementwise_affine=affine).double()
    put(name + ".args", [len(ns), int(affine)] + list(ns), dtype="int32")
    put(name + ".fargs", [eps], dtype="float64")
    x = leaf(rnd(*shape, scale=2.0) + 0.5)
    put(name + ".x", x)
    ins = {"x": x}
    if affine:
        with torch.no_grad():
            ln.weight.copy_(rnd(*ns) * 0.5 + 1)
            ln.bias.copy_(rnd(*ns))
        put(name + ".weight", ln.weight)
        put(name + ".bias", ln.bias)
        ins.update({"weight": ln.weight, "bias": ln.bias})
    vjp(name, ln(x), ins)

# ---- activations ------------------------------------------------------------------------
for name, f in [("elu", lambda x: F.elu(x)), ("elu_a05", lambda x: F.elu(x, alpha=0.5)),
                ("silu", F.silu)]:
    x = leaf(rnd(3, 7, scale=3.0))
    put(name + ".x", x)
    vjp(name, f(x), {"x": x})

# ---- elementwise losses: args fargs = [reduction(0 mean,1 sum,2 none,3 batchmean), param] --
RED = {"mean": 0, "sum": 1, "none": 2, "batchmean": 3}
LOSSES = []


def loss_case(name, fn, x, t, red, param=0.0, t_grad=True, extra=None):
    LOSSES.append(name)
    x, t = leaf(x), (leaf(t) if t_grad else t.clone())
    out = fn(x, t, red)
    put(name + ".fargs", [RED[red], param, int(t_grad)], dtype="float64")
    put(name + ".x", x)
    put(name + ".t", t)
    for k, v in (extra or {}).items():
        put(name + "." + k, v)
    vjp(name, out, {"x": x, "t": t} if t_grad else {"x": x})


for red in ["mean", "sum", "none"]:
    a, b = rnd(4, 5), rnd(4, 5)
    b[0, 0] = a[0, 0]  # a zero difference
    loss_case("l1_" + red, lambda x, t, r: F.l1_loss(x, t, reduction=r), a, b, red)
    a, b = rnd(4, 5, scale=1.5), rnd(4, 5)
    loss_case("smooth_l1_" + red, lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r), a, b, red,
              1.0)
    loss_case("smooth_l1_b05_" + red,
              lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.5), a, b, red, 0.5)
    loss_case("huber_" + red, lambda x, t, r: F.huber_loss(x, t, reduction=r), a, b, red, 1.0)
    loss_case("huber_d03_" + red, lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=0.3), a,
              b, red, 0.3)
    p, q = torch.sigmoid(rnd(3, 4)).float().double(), torch.rand(3, 4).double()
    q[0, 0], q[1, 1] = 0.0, 1.0
    loss_case("bce_" + red, lambda x, t, r: F.binary_cross_entropy(x, t, reduction=r), p, q, red)
    wt = torch.rand(4).double() + 0.5
    loss_case("bce_w_" + red, lambda x, t, r: F.binary_cross_entropy(x, t, weight=wt, reduction=r),
              p, q, red, extra={"weight": wt})
    z = rnd(3, 4, scale=3.0)
    loss_case("bcel_" + red, lambda x, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
              z, q, red)
    pw, wr = torch.rand(4).double() * 3, torch.rand(3, 1).double() + 0.5
    loss_case("bcel_pw_" + red, lambda x, t, r: F.binary_cross_entropy_with_logits(
        x, t, weight=wr, pos_weight=pw, reduction=r), z, q, red,
        extra={"weight": wr, "pos_weight": pw})
for red in ["mean", "sum", "none", "batchmean"]:
    lp = F.log_softmax(rnd(3, 5), 1).float().double()
    tp = F.softmax(rnd(3, 5), 1).float().double()
    loss_case("kl_" + red, lambda x, t, r: F.kl_div(x, t, reduction=r), lp, tp, red)
    lt = F.log_softmax(rnd(3, 5), 1).float().double()
    loss_case("kl_log_" + red, lambda x, t, r: F.kl_div(x, t, reduction=r, log_target=True), lp,
              lt, red, 1.0)
t0 = F.softmax(rnd(3, 5), 1).float().double()
t0[0, 1] = 0.0  # xlogy(0, 0) = 0: no target gradient there (PyTorch's would be NaN)
loss_case("kl_zero_sum", lambda x, t, r: F.kl_div(x, t, reduction=r), F.log_softmax(rnd(3, 5), 1)
          .float().double(), t0, "sum", t_grad=False)

# ---- cross_entropy with class weights (and label smoothing) --------------------------------
for name, kw in [("ce_weight", {}), ("ce_weight_smooth", {"label_smoothing": 0.2})]:
    x = leaf(rnd(6, 4, scale=2.0))
    y = torch.tensor([0, 3, 1, 1, 2, 3])
    wt = torch.rand(4).double() + 0.3
    put(name + ".x", x)
    put(name + ".target", y)
    put(name + ".weight", wt)
    put(name + ".fargs", [kw.get("label_smoothing", 0.0)], dtype="float64")
    loss = F.cross_entropy(x, y, weight=wt, **kw)
    loss.backward()
    put(name + ".y", loss.reshape(1))
    put(name + ".gx", x.grad)

path = os.path.join(OUT, "conv.nbg.gz")
g.save(path)
print("wrote", path, "with", len(g.entries), "entries")
