#!/usr/bin/python3
"""gen_loss.py - golden vectors for the losses (tests/test_loss.c).

Each case stores "<case>.input", "<case>.target" (int32 class indices or float32
probabilities / regression targets), optionally "<case>.weight", an upstream gradient
"<case>.w" of the loss's shape, the loss "<case>.y" and the gradients "<case>.g_input" (and
"<case>.g_target" for mse_loss, where the target is differentiable too). PyTorch computes in
float64 from the float32 values. Run: /usr/bin/python3 tools/golden/gen_loss.py"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
torch.manual_seed(99)
G = Golden()
N, C = 6, 5


def unif(*shape, lo=-2.0, hi=2.0):
    return (torch.rand(tuple(shape)) * (hi - lo) + lo).float()


def case(name, loss, x, t, weight=None, target_grad=False):
    G.add(f"{name}.input", x)
    G.add(f"{name}.target", t.int() if not t.is_floating_point() else t)
    if weight is not None:
        G.add(f"{name}.weight", weight)
    xd = x.double().requires_grad_()
    td = t.double().requires_grad_(target_grad) if t.is_floating_point() else t.long()
    wd = weight.double() if weight is not None else None
    y = loss(xd, td, wd)
    w = unif(*y.shape, lo=-1, hi=1).double()
    G.add(f"{name}.w", w.float())
    G.add(f"{name}.y", y.float())
    ins = [xd] + ([td] if target_grad else [])
    grads = torch.autograd.grad(y, ins, w)
    G.add(f"{name}.g_input", grads[0].float())
    if target_grad:
        G.add(f"{name}.g_target", grads[1].float())


labels = torch.tensor([1, 0, 4, 2, 4, 3])
ignored = torch.tensor([1, -100, 4, 2, -100, 3])
ignored2 = torch.tensor([1, 2, 4, 2, 0, 2])  # ignore_index=2: a real class ignored
probs = torch.softmax(unif(N, C) * 2, 1).float()
weight = torch.tensor([0.5, 2.0, 1.0, 0.25, 1.5])


def ce(**kw):
    return lambda x, t, w: F.cross_entropy(x, t, weight=w, **kw)


def nll(**kw):
    return lambda x, t, w: F.nll_loss(x, t, weight=w, **kw)


for red in ["mean", "sum", "none"]:
    case(f"ce_{red}", ce(reduction=red), unif(N, C), labels)
    case(f"ce_ignore_{red}", ce(reduction=red), unif(N, C), ignored)
    case(f"ce_smooth_{red}", ce(reduction=red, label_smoothing=0.1), unif(N, C), labels)
    case(f"ce_weight_{red}", ce(reduction=red), unif(N, C), labels, weight)
    case(f"ce_prob_{red}", ce(reduction=red), unif(N, C), probs)
    case(f"ce_all_{red}", ce(reduction=red, label_smoothing=0.2, ignore_index=2), unif(N, C),
         ignored2, weight)
    case(f"ce_prob_all_{red}", ce(reduction=red, label_smoothing=0.3), unif(N, C), probs, weight)
    case(f"nll_{red}", nll(reduction=red), F.log_softmax(unif(N, C), 1).float(), labels)
    case(f"nll_all_{red}", nll(reduction=red, ignore_index=2), F.log_softmax(unif(N, C), 1).float(),
         ignored2, weight)
    case(f"mse_{red}", lambda x, t, w, red=red: F.mse_loss(x, t, reduction=red), unif(3, 4, 2),
         unif(3, 4, 2), target_grad=True)
case("ce_ignore_custom", ce(ignore_index=2), unif(N, C), ignored2)
case("ce_smooth_ignore", ce(label_smoothing=0.25), unif(N, C), ignored)
case("ce_smooth_one", ce(label_smoothing=1.0), unif(N, C), labels)
case("ce_weight_ignore", ce(), unif(N, C), ignored, weight)
case("ce_weight_smooth", ce(label_smoothing=0.15), unif(N, C), labels, weight)
case("ce_prob_smooth", ce(label_smoothing=0.2), unif(N, C), probs)
case("ce_prob_weight", ce(), unif(N, C), probs, weight)
case("ce_big", ce(label_smoothing=0.1), unif(N, C, lo=4990, hi=5000), labels, weight)
case("ce_prob_big", ce(), unif(N, C, lo=-5000, hi=-4990), probs)
case("nll_ignore", nll(), F.log_softmax(unif(N, C), 1).float(), ignored)
case("nll_weight", nll(), F.log_softmax(unif(N, C), 1).float(), labels, weight)

G.save(os.path.join(OUT, "loss.nbg.gz"))
print("wrote", os.path.join(OUT, "loss.nbg.gz"), len(G.entries), "entries")
