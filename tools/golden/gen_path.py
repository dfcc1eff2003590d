#!/usr/bin/python3
"""gen_path.py - golden optimizer paths for `nabla optim-path` (tests/test_plot.c).

Each case is PyTorch's loop on one 2-element parameter p from a start point:
    loss = f(p[0], p[1]); opt.zero_grad(); loss.backward(); opt.step()   (then sched.step())
and "<case>.path" holds the point before each step and after the last, shape [steps + 1, 2].
The functions are written with the same operations, in the same order, as
tools/cli/optim_path_cli.c; the optimizers are optim-path's names (momentum: SGD momentum 0.9,
nesterov: SGD momentum 0.9 Nesterov) with PyTorch's defaults except lr.

Run: /usr/bin/python3 tools/golden/gen_path.py   (PyTorch 1.13, Debian python3-torch)"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")


def rosenbrock(x, y):
    return (-x + 1) ** 2 + ((y - x ** 2) ** 2) * 100


def beale(x, y):
    s = None
    for k, c in enumerate((1.5, 2.25, 2.625)):
        yk = y if k == 0 else y ** (k + 1)
        t = ((-x + c) + x * yk) ** 2
        s = t if s is None else s + t
    return s


def himmelblau(x, y):
    return ((x ** 2 + y) + -11) ** 2 + ((x + y ** 2) + -7) ** 2


def quadratic(x, y):
    return x ** 2 + (y ** 2) * 10


def make(name, p, lr):
    O = torch.optim
    if name in ("sgd", "momentum", "nesterov"):
        return O.SGD([p], lr=lr, momentum=0.0 if name == "sgd" else 0.9, nesterov=name == "nesterov")
    return {"adam": O.Adam, "rmsprop": O.RMSprop, "adagrad": O.Adagrad}[name]([p], lr=lr)


def path(f, start, name, lr, steps, sched=None):
    p = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    opt = make(name, p, lr)
    s = sched(opt) if sched else None
    pts = [p.detach().clone()]
    for _ in range(steps):
        loss = f(p[0], p[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if s:
            s.step()
        pts.append(p.detach().clone())
    return torch.stack(pts)


def main():
    torch.set_num_threads(1)
    g = Golden()
    # the acceptance cases: SGD, Adam and RMSprop on Rosenbrock from (-1.5, 2), 100 steps, at
    # optim-path's default lrs (5e-4 for SGD, 0.05 for the others); the other three too
    for name in ("sgd", "adam", "rmsprop", "momentum", "nesterov", "adagrad"):
        lr = 5e-4 if name in ("sgd", "momentum", "nesterov") else 0.05
        g.add(f"rosenbrock_{name}.path", path(rosenbrock, [-1.5, 2.0], name, lr, 100))
    # the other functions at their default start and lrs, and a schedule (StepLR every 20 steps)
    g.add("beale_adam.path", path(beale, [1.0, 1.5], "adam", 0.05, 100))
    g.add("himmelblau_momentum.path", path(himmelblau, [0.0, 0.0], "momentum", 5e-3, 100))
    g.add("quadratic_nesterov.path", path(quadratic, [-4.0, 2.0], "nesterov", 0.02, 100))
    g.add("rosenbrock_adam_step.path", path(rosenbrock, [-1.5, 2.0], "adam", 0.05, 100,
                                            lambda o: torch.optim.lr_scheduler.StepLR(o, 20, 0.5)))
    g.save(os.path.join(OUT, "path.nbg.gz"))


if __name__ == "__main__":
    main()
