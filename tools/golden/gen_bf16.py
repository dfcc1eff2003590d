#!/usr/bin/python3
"""gen_bf16.py - golden vectors of PyTorch 1.13's CPU bfloat16 autocast (tests/test_bf16.c).

Each case runs one module under torch.autocast("cpu", dtype=torch.bfloat16), forward and
backward, as a training step does: float32 inputs and parameters (not bfloat16-representable:
the casts are part of what is compared), the output in bfloat16, an upstream gradient that is
exactly representable in bfloat16 (so both sides start the backward from the same numbers),
and the float32 gradients of the input and the parameters. Cases: a Linear, the two
convolutions of LeNet-5 (stride 1: nabla's direct path) and a strided one (im2col).
Run: /usr/bin/python3 tools/golden/gen_bf16.py"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
torch.manual_seed(0)
torch.set_num_threads(1)
g = Golden()


def case(name, module, x_shape, kind, args):
    x = torch.randn(x_shape).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x)
    assert y.dtype == torch.bfloat16, y.dtype
    gy = torch.randn(y.shape).to(torch.bfloat16)
    y.backward(gy)
    g.add(name + ".kind", [kind], dtype="int32")
    g.add(name + ".args", args, dtype="int32")
    g.add(name + ".x", x)
    g.add(name + ".w", module.weight)
    g.add(name + ".b", module.bias)
    g.add(name + ".y", y.float())
    g.add(name + ".gy", gy.float())
    g.add(name + ".gx", x.grad)
    g.add(name + ".gw", module.weight.grad)
    g.add(name + ".gb", module.bias.grad)


# kind 0: Linear(in, out) on [rows, in]
case("lin", nn.Linear(70, 37), (24, 70), 0, [70, 37])
case("lin2", nn.Linear(300, 48), (40, 300), 0, [300, 48])
# kind 1: Conv2d(C, O, k, stride, padding) on [N, C, H, W]
case("conv1", nn.Conv2d(1, 6, 5, padding=2), (4, 1, 28, 28), 1, [1, 6, 5, 1, 2])
case("conv2", nn.Conv2d(6, 16, 5), (4, 6, 14, 14), 1, [6, 16, 5, 1, 0])
case("conv3", nn.Conv2d(3, 8, 3, stride=2, padding=1), (4, 3, 11, 11), 1, [3, 8, 3, 2, 1])
g.save(os.path.join(OUT, "bf16.nbg.gz"))
print("wrote", os.path.join(OUT, "bf16.nbg.gz"), torch.__version__)
