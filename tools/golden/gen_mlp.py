#!/usr/bin/python3
"""gen_mlp.py - golden vectors for the 784-128-10 MLP parity test (tests/test_nn.c).

PyTorch's default init (seed 0), a fixed batch of 64 inputs in [0, 1) and labels; saves the
weights, logits, loss and the gradient of every parameter. Run: /usr/bin/python3 gen_mlp.py"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
x = torch.rand(64, 784)
y = torch.randint(0, 10, (64,))
logits = model(x)
loss = F.cross_entropy(logits, y)
loss.backward()

g = Golden()
for name, p in model.named_parameters():
    g.add(name, p)
    g.add("grad." + name, p.grad)
g.add("x", x)
g.add("y", y)
g.add("logits", logits)
g.add("loss", loss.reshape(1))
g.save(os.path.join(OUT, "mlp.nbg.gz"))
print("wrote", os.path.join(OUT, "mlp.nbg.gz"))
