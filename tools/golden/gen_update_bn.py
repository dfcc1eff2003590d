#!/usr/bin/python3
"""gen_update_bn.py - torch.optim.swa_utils.update_bn from PyTorch 1.13 for tests/test_nn.c.

Three small models with BatchNorm (BatchNorm1d on [B, C] and on [B, C, L], BatchNorm2d after a
Conv2d), their running statistics first set to arbitrary values, num_batches_tracked to 7 and
the model to eval mode; then update_bn over a loader of uint8 images scaled x/255 (as nabla's
loader does), batches of 5 of 23 samples (the last one partial), not shuffled. Stored: the
images, each model's parameters, and every BatchNorm's buffers after update_bn.

Run: /usr/bin/python3 tools/golden/gen_update_bn.py   (writes tests/golden/update_bn.nbg.gz)"""
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "update_bn.nbg.gz")
N, B = 23, 5
torch.set_num_threads(1)
torch.manual_seed(0)
g = Golden()
rng = np.random.default_rng(5)
images = rng.integers(0, 256, (N, 1, 3, 4)).astype(np.uint8)
g.add("images", images.astype(np.int32))
g.add("batch", np.array([B], dtype=np.int32))

models = {
    # name: (model, input view of the [b, 1, 3, 4] images)
    "flat": (nn.Sequential(nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 5),
                           nn.BatchNorm1d(5, momentum=0.3)), lambda x: x.reshape(x.shape[0], 12)),
    "seq": (nn.Sequential(nn.BatchNorm1d(3, momentum=None), nn.ReLU()), lambda x: x.reshape(x.shape[0], 3, 4)),
    "conv": (nn.Sequential(nn.Conv2d(1, 2, 2), nn.BatchNorm2d(2), nn.ReLU()), lambda x: x),
}
for name, (model, view) in models.items():
    for k, v in model.state_dict().items():
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            g.add(f"{name}.{k}", v)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-2, 2)
            m.running_var.uniform_(0.5, 3)
            m.num_batches_tracked.fill_(7)
    model.eval()
    x = torch.tensor(images).float() / 255
    loader = [(view(x[i:i + B]), torch.zeros(min(B, N - i), dtype=torch.long)) for i in range(0, N, B)]
    update_bn(loader, model)
    assert not model.training
    for k, v in model.state_dict().items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            g.add(f"{name}.{k}", v)
g.save(OUT)
print("wrote", OUT, len(g.entries), "entries")
