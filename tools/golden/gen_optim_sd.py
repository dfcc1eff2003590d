#!/usr/bin/python3
"""gen_optim_sd.py - optimizer state_dicts written by PyTorch, for tests/test_io.c.

For every optimizer of PyTorch 1.13: nn.Linear(4, 3) from a seed, a few steps with options
off their defaults (gradient g = (p*p - 0.5)*p + c, float32, as the C test computes it), then
torch.save({"model": ..., "optimizer": opt.state_dict()}) and tools/convert_torch.py turns it
into a nabla checkpoint: tests/golden/torch_optim/v1_13/<Class>.ckpt, the state_dict exactly as
1.13 wrote it (1.13's keys: NAdam and RAdam without decoupled_weight_decay or maximize, Adadelta's
and RMSprop's step as Python ints, ...). The same state_dict with the keys PyTorch 2.x documents
for each class added (foreach, capturable, differentiable, fused, maximize,
decoupled_weight_decay; Adam/AdamW's decoupled_weight_decay of 2.7+) and the step counts 2.x
keeps as float32 tensors goes to v2/<Class>.ckpt; PyTorch 2.5's Adafactor, which 1.13 lacks,
is written from gen_optim.py's reference implementation with 2.5's keys. v2/Adam_unknown.ckpt
has one key no PyTorch has ("lookahead"): nabla must refuse it by name.

PyTorch 1.13 then continues each run for a few more steps: optim_sd.nbg.gz holds the gradient
constants and the parameters after each of those steps, which nabla must reproduce after
loading either file (1e-5; LBFGS's closure returns the double sum of the float32 loss terms).

Run: /usr/bin/python3 tools/golden/gen_optim_sd.py   (needs tools/convert_torch.py)"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
from nbgold import Golden  # noqa: E402
from gen_optim import Adafactor  # noqa: E402

OUT = os.path.join(ROOT, "tests", "golden", "torch_optim")
BEFORE, AFTER = 3, 3
torch.set_num_threads(1)
O = torch.optim

# class -> constructor with options away from the defaults (what the files must carry)
CASES = {
    "SGD": lambda p: O.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": lambda p: O.Adam(p, lr=0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.1),
    "AdamW": lambda p: O.AdamW(p, lr=0.01, weight_decay=0.05),
    "RMSprop": lambda p: O.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "Adagrad": lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "Adadelta": lambda p: O.Adadelta(p, lr=0.5, rho=0.8),
    "Adamax": lambda p: O.Adamax(p, lr=0.01, betas=(0.85, 0.99)),
    "NAdam": lambda p: O.NAdam(p, lr=0.01, momentum_decay=0.01),
    "RAdam": lambda p: O.RAdam(p, lr=0.01, weight_decay=0.1),
    "ASGD": lambda p: O.ASGD(p, lr=0.05, t0=2, lambd=0.01),
    "Rprop": lambda p: O.Rprop(p, lr=0.05, etas=(0.4, 1.3)),
    "LBFGS": lambda p: O.LBFGS(p, lr=0.5, max_iter=4, history_size=3, line_search_fn="strong_wolfe"),
    "Adafactor": lambda p: Adafactor(p, lr=0.05, weight_decay=0.1),
}

# the keys PyTorch 2.x documents for each class that 1.13 did not write, with their defaults
V2_KEYS = {
    "SGD": dict(maximize=False, foreach=None, differentiable=False, fused=None),
    "Adam": dict(maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False),
    "AdamW": dict(maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                  decoupled_weight_decay=True),
    "RMSprop": dict(capturable=False, foreach=None, maximize=False, differentiable=False),
    "Adagrad": dict(foreach=None, maximize=False, differentiable=False, fused=None),
    "Adadelta": dict(maximize=False, capturable=False, foreach=None, differentiable=False),
    "Adamax": dict(foreach=None, maximize=False, differentiable=False, capturable=False),
    "NAdam": dict(decoupled_weight_decay=False, maximize=False, foreach=None, capturable=False,
                  differentiable=False),
    "RAdam": dict(foreach=None, maximize=False, capturable=False, decoupled_weight_decay=False,
                  differentiable=False),
    "ASGD": dict(foreach=None, maximize=False, differentiable=False, capturable=False),
    "Rprop": dict(foreach=None, maximize=False, differentiable=False, capturable=False),
    "LBFGS": dict(),
    "Adafactor": dict(foreach=None, maximize=False),
}
STEP_AS_TENSOR = {"Adadelta", "RMSprop", "Rprop"}  # a Python int in 1.13, a float32 tensor in 2.x


def grad_of(p, c):
    return (p * p - 0.5) * p + c


def loss_of(params, consts):
    """sum(p^4/4 - p^2/4 + c p) of the float32 terms, summed in double: its gradient is grad_of."""
    total = 0.0
    for p, c in zip(params, consts):
        with torch.no_grad():
            q = p * p
            terms = q * q / 4 - q / 4 + c * p
        total += float(terms.double().sum())
    return total


def step(opt, params, consts, lbfgs):
    def closure():
        opt.zero_grad()
        for p, c in zip(params, consts):
            p.grad = grad_of(p.detach(), c)
        return loss_of(params, consts)
    if lbfgs:
        opt.step(closure)
    else:
        closure()
        opt.step()


def as_v2(name, sd):
    sd = {"state": {i: dict(s) for i, s in sd["state"].items()},
          "param_groups": [dict(g) for g in sd["param_groups"]]}
    for g in sd["param_groups"]:
        for k, v in V2_KEYS[name].items():
            g.setdefault(k, v)
    if name in STEP_AS_TENSOR:
        for s in sd["state"].values():
            s["step"] = torch.tensor(float(s["step"]))
    return sd


def convert(obj, name, dst):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "run.pt")
        torch.save(obj, src)
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_torch.py"), "to-nabla", src, dst,
                        "--optim", name], check=True, stdout=subprocess.DEVNULL)


def main():
    os.makedirs(os.path.join(OUT, "v1_13"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "v2"), exist_ok=True)
    g = Golden()
    g.add("before", np.array([BEFORE], dtype=np.int32))
    g.add("after", np.array([AFTER], dtype=np.int32))
    for k, (name, make) in enumerate(CASES.items()):
        torch.manual_seed(k)
        model = torch.nn.Linear(4, 3)
        params = [model.weight, model.bias]
        consts = [torch.randn_like(p) * 0.1 for p in params]
        g.add(f"{name}.c.weight", consts[0])
        g.add(f"{name}.c.bias", consts[1])
        opt = make(params)
        lbfgs = name == "LBFGS"
        for _ in range(BEFORE):
            step(opt, params, consts, lbfgs)
        sd = opt.state_dict()
        both = {"model": model.state_dict(), "optimizer": sd}
        if name != "Adafactor":  # PyTorch 1.13 has no Adafactor
            convert(both, name, os.path.join(OUT, "v1_13", f"{name}.ckpt"))
        convert({"model": model.state_dict(), "optimizer": as_v2(name, sd)}, name,
                os.path.join(OUT, "v2", f"{name}.ckpt"))
        if name == "Adam":
            bad = as_v2(name, sd)
            bad["param_groups"][0]["lookahead"] = 5
            convert({"model": model.state_dict(), "optimizer": bad}, name, os.path.join(OUT, "v2", "Adam_unknown.ckpt"))
        for t in range(AFTER):
            step(opt, params, consts, lbfgs)
            g.add(f"{name}.after{t}.weight", model.weight)
            g.add(f"{name}.after{t}.bias", model.bias)
    path = os.path.join(ROOT, "tests", "golden", "optim_sd.nbg.gz")
    g.save(path)
    print("wrote", path, "and", OUT)


if __name__ == "__main__":
    main()
