#!/usr/bin/python3
"""gen_sched.py - golden lr sequences for tests/test_sched.c (every lr_scheduler schedule).

Each case builds an optimizer with two param groups of different initial lr (SGD lr 0.1/0.05
with momentum 0.9, or Adam lr 0.01/0.002), a schedule, and records every group's lr (float64)
right after construction and after each of the following steps: "<case>.lr" has shape
[steps, 2]. Schedules that cycle momentum also give "<case>.mom" (SGD momentum or Adam beta1).
Inputs that drive a case (epochs for step(epoch), metrics for ReduceLROnPlateau, parameter
sequences for the averaged copy) are stored too, so the C test replays exactly the same.

Run: /usr/bin/python3 tools/golden/gen_sched.py   (PyTorch 1.13, Debian python3-torch)"""
import math
import os
import sys
import warnings

import numpy as np
import torch
from torch.optim import SGD, Adam
from torch.optim import lr_scheduler as L
from torch.optim import swa_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

warnings.filterwarnings("ignore")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
N = 120  # values per case: construction + 119 steps
g = Golden()


def sgd(momentum=0.9):
    p1, p2 = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    return SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.05}], lr=0.1, momentum=momentum)


def adam():
    p1, p2 = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    return Adam([{"params": [p1], "lr": 0.01}, {"params": [p2], "lr": 0.002}], lr=0.01)


def mom_of(opt):
    return [grp["betas"][0] if "betas" in grp else grp["momentum"] for grp in opt.param_groups]


def record(name, opt, sched, steps=N, drive=None, mom=False):
    """drive(i) performs the i-th step (i >= 1); default sched.step()."""
    lrs, moms = [], []
    for i in range(steps):
        if i > 0:
            opt.step()
            if drive:
                drive(i)
            else:
                sched.step()
        lrs.append([grp["lr"] for grp in opt.param_groups])
        moms.append(mom_of(opt))
        if sched is not None and hasattr(sched, "_last_lr") and hasattr(sched, "get_last_lr"):
            assert sched.get_last_lr() == lrs[-1], name
    g.add(name + ".lr", np.array(lrs), dtype=np.float64)
    if mom:
        g.add(name + ".mom", np.array(moms), dtype=np.float64)


# ---- chainable schedules with defaults and variants -----------------------------------------
o = sgd(); record("step", o, L.StepLR(o, step_size=30))
o = sgd(); record("step_g", o, L.StepLR(o, step_size=7, gamma=0.5))
o = sgd(); record("multistep", o, L.MultiStepLR(o, milestones=[30, 80]))
o = sgd(); record("multistep_dup", o, L.MultiStepLR(o, milestones=[0, 10, 10, 40, 75], gamma=0.5))
o = sgd(); record("constant", o, L.ConstantLR(o))
o = sgd(); record("constant_40", o, L.ConstantLR(o, factor=0.5, total_iters=40))
o = sgd(); record("linear", o, L.LinearLR(o))
o = sgd(); record("linear_40", o, L.LinearLR(o, start_factor=0.05, total_iters=40))
o = sgd(); record("linear_down", o, L.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=60))
o = sgd(); record("exponential", o, L.ExponentialLR(o, gamma=0.95))
o = sgd(); record("polynomial", o, L.PolynomialLR(o))
o = sgd(); record("polynomial_50", o, L.PolynomialLR(o, total_iters=50, power=0.9))
o = sgd(); record("polynomial_p2", o, L.PolynomialLR(o, total_iters=100, power=2.0))
o = sgd(); record("cosine", o, L.CosineAnnealingLR(o, T_max=50))
o = sgd(); record("cosine_eta", o, L.CosineAnnealingLR(o, T_max=30, eta_min=0.001))
o = sgd(); record("cawr", o, L.CosineAnnealingWarmRestarts(o, T_0=10))
o = sgd(); record("cawr_mult", o, L.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4))

# step(epoch + i / iters) once per batch, fractional epochs (iters = 7 batches per epoch)
o = sgd(); s = L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001)
record("cawr_frac", o, s, drive=lambda i: s.step(i // 7 + (i % 7) / 7))
# PyTorch's interleaving example: 20 step()s, step(26), step()s again
o = sgd(); s = L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2)
record("cawr_jump", o, s, steps=40, drive=lambda i: s.step(26) if i == 21 else s.step())

# LambdaLR / MultiplicativeLR: the C test has the same functions
o = sgd(); record("lambda", o, L.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e))
o = sgd(); record("lambda_groups", o, L.LambdaLR(o, lr_lambda=[lambda e: 1.0 / (1.0 + 0.1 * e), lambda e: 0.95 ** e]))
o = sgd(); record("multiplicative", o, L.MultiplicativeLR(o, lr_lambda=lambda e: 0.95))
o = sgd(); record("multiplicative_groups", o, L.MultiplicativeLR(
    o, lr_lambda=[lambda e: 0.97, lambda e: 0.5 if e % 10 == 0 else 1.0]))

# ---- OneCycleLR: lr and momentum / beta1 ------------------------------------------------------
o = sgd(); record("onecycle", o, L.OneCycleLR(o, max_lr=[0.1, 0.05], total_steps=N), mom=True)
o = sgd(); record("onecycle_lin3", o, L.OneCycleLR(
    o, max_lr=0.2, epochs=10, steps_per_epoch=12, pct_start=0.25, anneal_strategy="linear",
    div_factor=10.0, final_div_factor=100.0, three_phase=True, base_momentum=[0.8, 0.7],
    max_momentum=[0.9, 0.95]), mom=True)
o = sgd(); record("onecycle_3cos", o, L.OneCycleLR(o, max_lr=[0.3, 0.1], total_steps=N + 1, three_phase=True), mom=True)
o = adam(); record("onecycle_adam", o, L.OneCycleLR(o, max_lr=[0.01, 0.002], total_steps=N), mom=True)
o = adam(); record("onecycle_nomom", o, L.OneCycleLR(o, max_lr=0.01, total_steps=N - 1, cycle_momentum=False,
                                                     pct_start=0.4), mom=True)
try:  # stepping past total_steps: the message the C test expects
    o = sgd(); s = L.OneCycleLR(o, max_lr=0.1, total_steps=10)
    for _ in range(11):
        s.step()
    raise SystemExit("OneCycleLR did not fail")
except ValueError as e:
    assert str(e) == "Tried to step 12 times. The specified number of total steps is 10", str(e)

# ---- CyclicLR: lr and momentum ------------------------------------------------------------------
o = sgd(); record("cyclic", o, L.CyclicLR(o, base_lr=[0.01, 0.005], max_lr=[0.1, 0.05], step_size_up=10), mom=True)
o = sgd(); record("cyclic_tri2", o, L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=8, step_size_down=12,
                                               mode="triangular2", base_momentum=[0.8, 0.85],
                                               max_momentum=[0.9, 0.99]), mom=True)
o = sgd(); record("cyclic_exp", o, L.CyclicLR(o, base_lr=0.001, max_lr=0.1, step_size_up=15, mode="exp_range",
                                              gamma=0.98), mom=True)
o = sgd(); record("cyclic_fn_cycle", o, L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=6,
                                                   scale_fn=lambda x: 0.5 * (1 + math.sin(x * math.pi / 2)),
                                                   scale_mode="cycle"), mom=True)
o = sgd(); record("cyclic_fn_iter", o, L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=6,
                                                  scale_fn=lambda x: 1 / (1 + 0.01 * x), scale_mode="iterations"),
                  mom=True)
o = adam(); record("cyclic_adam_nomom", o, L.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=5,
                                                      cycle_momentum=False), mom=True)
# Adam's beta1 with cycle_momentum (PyTorch 2.x; 1.13 refuses it): the same numbers as SGD's
# momentum, written to betas[0] - recorded from SGD, compared with Adam's beta1 in C.
o = sgd(); record("cyclic_beta1", o, L.CyclicLR(o, base_lr=[0.001, 0.0005], max_lr=[0.01, 0.005], step_size_up=9,
                                                base_momentum=0.85, max_momentum=0.95), mom=True)

# ---- full loops: every OneCycleLR variant to its last allowed step (step == total_steps, where
# the linear anneal extrapolates past min_lr to a negative lr that PyTorch writes unchecked), and
# every CyclicLR mode over whole cycles ----------------------------------------------------------
FULL_T = 20
for anneal in ["cos", "linear"]:
    for phases, three in [("2", False), ("3", True)]:
        for kind in ["sgd", "adam", "nomom"]:
            o = adam() if kind == "adam" else sgd()
            max_lr = [0.01, 0.002] if kind == "adam" else [0.1, 0.05]
            record(f"full_onecycle_{anneal}_{phases}_{kind}", o,
                   L.OneCycleLR(o, max_lr=max_lr, total_steps=FULL_T, anneal_strategy=anneal, three_phase=three,
                                cycle_momentum=kind != "nomom"), steps=FULL_T + 1, mom=True)
for mode in ["triangular", "triangular2", "exp_range"]:
    o = sgd(); record(f"full_cyclic_{mode}_sgd", o, L.CyclicLR(o, base_lr=[0.01, 0.005], max_lr=[0.1, 0.05],
                                                             step_size_up=4, step_size_down=6, mode=mode, gamma=0.9),
                      steps=31, mom=True)
    o = adam(); record(f"full_cyclic_{mode}_adam", o, L.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=4,
                                                               step_size_down=6, mode=mode, gamma=0.9,
                                                               cycle_momentum=False), steps=31, mom=True)

# ---- ReduceLROnPlateau: fixed metric sequences -------------------------------------------------
rng = np.random.default_rng(5)
t = np.arange(N)
metric_min = 1.0 / (1 + 0.15 * t) + 0.02 * rng.standard_normal(N)
metric_min[60:] = metric_min[60] + 0.005 * rng.standard_normal(N - 60)  # a plateau
metric_max = 1.0 - metric_min
g.add("plateau.metric_min", metric_min, dtype=np.float64)
g.add("plateau.metric_max", metric_max, dtype=np.float64)
plateau_cases = {
    "plateau": dict(),
    "plateau_min_rel": dict(mode="min", factor=0.5, patience=3, cooldown=2, min_lr=[0.01, 0.004]),
    "plateau_min_abs": dict(mode="min", factor=0.3, patience=2, threshold=0.01, threshold_mode="abs", cooldown=4),
    "plateau_max_rel": dict(mode="max", factor=0.5, patience=4, threshold=0.05, cooldown=1, min_lr=0.001),
    "plateau_max_abs": dict(mode="max", factor=0.7, patience=0, threshold=0.002, threshold_mode="abs",
                            cooldown=3, eps=1e-3),
}
for name, kw in plateau_cases.items():
    o = sgd(); s = L.ReduceLROnPlateau(o, **kw)
    m = metric_max if kw.get("mode") == "max" else metric_min
    record(name, o, s, drive=lambda i: s.step(m[i - 1]))  # value i: after i metrics

# ---- step(epoch): the closed forms --------------------------------------------------------------
epochs = rng.integers(0, 150, N)
g.add("closed.epochs", epochs, dtype=np.float64)
closed_cases = {
    "closed_step": lambda o: L.StepLR(o, step_size=10, gamma=0.5),
    "closed_multistep": lambda o: L.MultiStepLR(o, milestones=[10, 10, 40, 75], gamma=0.5),
    "closed_constant": lambda o: L.ConstantLR(o, factor=0.5, total_iters=40),
    "closed_linear": lambda o: L.LinearLR(o, start_factor=0.05, total_iters=40),
    "closed_exponential": lambda o: L.ExponentialLR(o, gamma=0.97),
    "closed_polynomial": lambda o: L.PolynomialLR(o, total_iters=100, power=0.9),
    "closed_cosine": lambda o: L.CosineAnnealingLR(o, T_max=50, eta_min=0.001),
    "closed_lambda": lambda o: L.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e),
    "closed_cawr": lambda o: L.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2),
}
for name, make in closed_cases.items():
    o = sgd(); s = make(o)
    record(name, o, s, drive=lambda i: s.step(int(epochs[i - 1])))
# chainable steps after step(epoch) jumps: mixes both forms
o = sgd(); s = L.CosineAnnealingLR(o, T_max=40)
record("cosine_mixed", o, s, drive=lambda i: s.step(i + 7) if i % 25 == 0 else s.step())

# ---- SequentialLR and ChainedScheduler ----------------------------------------------------------
o = sgd(); s = L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=50)],
                              milestones=[5])
record("sequential", o, s)
o = sgd(); s = L.SequentialLR(o, [L.ConstantLR(o, factor=0.1, total_iters=10), L.ExponentialLR(o, gamma=0.9),
                                  L.StepLR(o, step_size=10, gamma=0.5)], milestones=[10, 40])
record("sequential3", o, s)
o = sgd(); s = L.SequentialLR(o, [L.ExponentialLR(o, gamma=0.9),
                                  L.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e)], milestones=[30])
record("sequential_lambda", o, s)
o = sgd(); s = L.ChainedScheduler([L.ConstantLR(o, factor=0.1, total_iters=20), L.ExponentialLR(o, gamma=0.9)])
record("chained", o, s)
o = sgd(); s = L.ChainedScheduler([L.LinearLR(o, start_factor=0.2, total_iters=10),
                                   L.MultiStepLR(o, milestones=[40, 80], gamma=0.3),
                                   L.CosineAnnealingLR(o, T_max=100, eta_min=0.0)])
record("chained3", o, s)

# ---- SWALR --------------------------------------------------------------------------------------
o = sgd(); record("swalr", o, swa_utils.SWALR(o, swa_lr=0.05))
o = sgd(); record("swalr_lin", o, swa_utils.SWALR(o, swa_lr=[0.02, 0.01], anneal_epochs=5, anneal_strategy="linear"))
o = sgd(); record("swalr_0", o, swa_utils.SWALR(o, swa_lr=0.03, anneal_epochs=0))
# PyTorch's recipe: cosine until swa_start, then SWALR (both built at the start)
o = sgd(); cos_s = L.CosineAnnealingLR(o, T_max=100); swa_s = swa_utils.SWALR(o, swa_lr=0.01, anneal_epochs=10)
record("swa_recipe", o, None, drive=lambda i: swa_s.step() if i > 60 else cos_s.step())

# ---- lr-plot (one group, SGD lr 0.1 momentum 0.9, 100 steps) -------------------------------------
def one_group():
    return SGD([torch.zeros(2, requires_grad=True)], lr=0.1, momentum=0.9)
o = one_group(); record("plot_onecycle", o, L.OneCycleLR(o, max_lr=0.1, total_steps=100), steps=100)
o = one_group(); record("plot_cawr", o, L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2), steps=100)

# ---- averaged copies (AveragedModel with SWA and EMA averaging) ---------------------------------
K = 12
seq = [[torch.tensor(rng.standard_normal(5), dtype=torch.float32),
        torch.tensor(rng.standard_normal((2, 3)), dtype=torch.float32)] for _ in range(K)]
for k in range(K):
    g.add(f"avg.p0.{k}", seq[k][0])
    g.add(f"avg.p1.{k}", seq[k][1])
model = torch.nn.Module()
model.a = torch.nn.Parameter(seq[0][0].clone())
model.b = torch.nn.Parameter(seq[0][1].clone())
for name, fn in [("swa", None),
                 ("ema", lambda avg, p, n: torch.lerp(avg, p, 1 - 0.9)),
                 ("ema_low", lambda avg, p, n: torch.lerp(avg, p, 1 - 0.3))]:
    am = swa_utils.AveragedModel(model, avg_fn=fn)
    for k in range(K):
        with torch.no_grad():
            model.a.copy_(seq[k][0])
            model.b.copy_(seq[k][1])
        am.update_parameters(model)
        g.add(f"avg.{name}.0.{k}", am.module.a)
        g.add(f"avg.{name}.1.{k}", am.module.b)

path = os.path.join(OUT, "sched.nbg.gz")
g.save(path)
print("wrote", path, len(g.entries), "entries")
