#!/usr/bin/python3
"""gen_optim.py - golden trajectories of every torch.optim optimizer for tests/test_optim.c.

Small parameters (W [4,3], b [3]; Adafactor also K [2,2,3]) start from fixed values; at every
step the gradient is a float32 function of the parameters that the C test computes the same
way, op by op:  g = (p*p - 0.5)*p + c  (c a fixed tensor per parameter). Each case runs 20
steps of one optimizer configuration (defaults, then each non-default option, then two param
groups with different lr) and saves the parameters after every step. Clipping cases run SGD
with clip_grad_norm_ (norms 2, 1, inf, 3) or clip_grad_value_ before each step. LBFGS runs on
the Rosenbrock function (gradient written out in float32, same in C), with and without
strong_wolfe.

PyTorch 1.13 has no Adafactor, no Muon (2.9) and no maximize / decoupled_weight_decay for
NAdam and RAdam (PyTorch 2.x); for those the script carries reference implementations written
from PyTorch 2.x's documented algorithms and single-tensor code with 1.13's tensor ops, checked
against torch.optim where both exist. Muon's cases use 2-D parameters only (W [4, 3], M [3, 5]).

Run: /usr/bin/python3 tools/golden/gen_optim.py   (writes tests/golden/optim.nbg.gz)"""
import math
import os
import sys

import numpy as np
import torch
from torch.optim import Optimizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nbgold import Golden  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")
STEPS = 20
torch.set_num_threads(1)


# ---- PyTorch 2.x features on 1.13's tensor ops -----------------------------------------------
class Reference(Optimizer):
    """Base of the reference optimizers below."""

    def each_param(self):
        """(group, param, gradient (negated under maximize), state) of each param with a gradient."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    yield group, param, param.grad if not group["maximize"] else -param.grad, self.state[param]


def weight_decay(group, param, grad):
    """2.x's weight decay of NAdam and RAdam: decoupled (param *= 1 - lr * wd, done here) or
    added to the gradient (returned)."""
    lr, wd = group["lr"], group["weight_decay"]
    if wd != 0:
        if group["decoupled_weight_decay"]:
            param.mul_(1 - lr * wd)
        else:
            grad = grad.add(param, alpha=wd)
    return grad


class NAdam2(Reference):
    """torch.optim.NAdam of PyTorch 1.13 plus 2.x's maximize and decoupled_weight_decay
    (placed where 2.x places them; the rest of the arithmetic is 1.13's)."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      momentum_decay=momentum_decay, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @torch.no_grad()
    def step(self):
        for group, param, grad, state in self.each_param():
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            if len(state) == 0:
                state["step"] = torch.tensor(0.)
                state["mu_product"] = torch.tensor(1.)
                state["exp_avg"] = torch.zeros_like(param)
                state["exp_avg_sq"] = torch.zeros_like(param)
            exp_avg, exp_avg_sq, mu_product = state["exp_avg"], state["exp_avg_sq"], state["mu_product"]
            state["step"] += 1
            step = state["step"].item()
            bias_correction2 = 1 - beta2 ** step
            grad = weight_decay(group, param, grad)
            mu = beta1 * (1. - 0.5 * (0.96 ** (step * group["momentum_decay"])))
            mu_next = beta1 * (1. - 0.5 * (0.96 ** ((step + 1) * group["momentum_decay"])))
            mu_product *= mu
            mu_product_next = mu_product * mu * mu_next
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
            param.addcdiv_(grad, denom, value=-lr * (1. - mu) / (1. - mu_product.item()))
            param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1. - mu_product_next.item()))


class RAdam2(Reference):
    """torch.optim.RAdam of PyTorch 1.13 plus 2.x's maximize and decoupled_weight_decay."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @torch.no_grad()
    def step(self):
        for group, param, grad, state in self.each_param():
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            if len(state) == 0:
                state["step"] = torch.tensor(0.)
                state["exp_avg"] = torch.zeros_like(param)
                state["exp_avg_sq"] = torch.zeros_like(param)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            state["step"] += 1
            step = state["step"].item()
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            grad = weight_decay(group, param, grad)
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_corrected_exp_avg = exp_avg / bias_correction1
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
            if rho_t > 5.:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                                 ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                adaptive_lr = math.sqrt(bias_correction2) / exp_avg_sq.sqrt().add_(eps)
                param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
            else:
                param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)


class Adafactor(Reference):
    """torch.optim.Adafactor (PyTorch 2.5, single-tensor path) on 1.13's tensor ops."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, maximize=False):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
                                      weight_decay=weight_decay, maximize=maximize))

    @torch.no_grad()
    def step(self):
        for group, param, grad, state in self.each_param():
            eps1, eps2 = group["eps"]
            lr, wd, d = group["lr"], group["weight_decay"], group["d"]
            if len(state) == 0:
                state["step"] = torch.tensor(0.0)
                if grad.dim() > 1:
                    row_shape = list(grad.shape)
                    row_shape[-1] = 1
                    state["row_var"] = grad.new_zeros(row_shape)
                    col_shape = list(grad.shape)
                    col_shape[-2] = 1
                    state["col_var"] = grad.new_zeros(col_shape)
                else:
                    state["variance"] = torch.zeros_like(grad)
            if eps1 is None:
                eps1 = torch.finfo(param.dtype).eps
            state["step"] += 1
            step_float = state["step"].item()
            one_minus_beta2_t = step_float ** group["beta2_decay"]
            rho_t = min(lr, 1 / (step_float ** 0.5))
            alpha = max(eps2, param.norm(2).item() / (param.numel() ** 0.5)) * rho_t
            if wd != 0:
                param.mul_(1 - lr * wd)
            if grad.dim() > 1:
                row_var, col_var = state["row_var"], state["col_var"]
                row_mean = torch.linalg.vector_norm(grad, dim=-1, keepdim=True).square_().div_(grad.size(-1))
                row_var.lerp_(row_mean, one_minus_beta2_t)
                col_mean = torch.linalg.vector_norm(grad, dim=-2, keepdim=True).square_().div_(grad.size(-2))
                col_var.lerp_(col_mean, one_minus_beta2_t)
                var_estimate = row_var @ col_var
                var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
            else:
                variance = state["variance"]
                grad_squared = grad * grad
                variance.lerp_(grad_squared, one_minus_beta2_t)
                var_estimate = variance.clone()
            update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_()
            update.mul_(grad)
            denom = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))
            param.add_(update, alpha=-alpha / denom)


class Muon(Reference):
    """torch.optim.Muon (PyTorch 2.9) written from its documented algorithm and its source
    (torch/optim/_muon.py) on 1.13's tensor ops. One difference, nabla's too: the Newton-Schulz
    iteration runs in float32 (PyTorch's in bfloat16)."""

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
                                      adjust_lr_fn=adjust_lr_fn))

    @staticmethod
    def orthogonalize(grad, coefficients, steps, eps):
        a, b, c = coefficients
        x = grad.clone()
        if grad.size(0) > grad.size(1):
            x = x.T
        x = x.div(x.norm().clamp(min=eps))
        for _ in range(steps):
            gram = x @ x.T
            update = b * gram + c * (gram @ gram)
            x = a * x + update @ x
        return x.T if grad.size(0) > grad.size(1) else x

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, mu = group["lr"], group["weight_decay"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad, state = param.grad, self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buf = state["momentum_buffer"]
                buf.lerp_(grad, 1 - mu)
                update = grad.lerp(buf, mu) if group["nesterov"] else buf
                update = self.orthogonalize(update, group["ns_coefficients"], group["ns_steps"], group["eps"])
                rows, cols = param.shape[:2]
                if group["adjust_lr_fn"] == "match_rms_adamw":
                    adjusted = lr * 0.2 * math.sqrt(max(rows, cols))
                else:
                    adjusted = lr * math.sqrt(max(1, rows / cols))
                param.mul_(1 - lr * wd)
                param.add_(update, alpha=-adjusted)


O = torch.optim
ALGOS = {
    "sgd": (O.SGD, {"lr": 1e-3}),  # lr: PyTorch 2.x's default (1.13 requires it)
    "adam": (O.Adam, {}),
    "adamw": (O.AdamW, {}),
    "rmsprop": (O.RMSprop, {}),
    "adagrad": (O.Adagrad, {}),
    "adadelta": (O.Adadelta, {}),
    "adamax": (O.Adamax, {}),
    "nadam": (NAdam2, {}),
    "radam": (RAdam2, {}),
    "asgd": (O.ASGD, {}),
    "rprop": (O.Rprop, {}),
    "adafactor": (Adafactor, {}),
}

# case name -> (algorithm, options). Each non-default option gets its own case (with the
# options it needs to matter, e.g. dampening with momentum).
CASES = {
    "sgd": {}, "sgd_lr": {"lr": 0.05}, "sgd_momentum": {"momentum": 0.9},
    "sgd_dampening": {"momentum": 0.9, "dampening": 0.3},
    "sgd_nesterov": {"momentum": 0.9, "nesterov": True}, "sgd_weight_decay": {"weight_decay": 0.1},
    "sgd_maximize": {"momentum": 0.5, "maximize": True},
    "adam": {}, "adam_lr": {"lr": 0.01}, "adam_betas": {"betas": (0.8, 0.9)}, "adam_eps": {"eps": 1e-3},
    "adam_weight_decay": {"weight_decay": 0.1}, "adam_amsgrad": {"amsgrad": True},
    "adam_maximize": {"maximize": True},
    "adamw": {}, "adamw_lr": {"lr": 0.01}, "adamw_betas": {"betas": (0.8, 0.9)},
    "adamw_eps": {"eps": 1e-3}, "adamw_weight_decay": {"weight_decay": 0.5},
    "adamw_amsgrad": {"amsgrad": True}, "adamw_maximize": {"maximize": True},
    "rmsprop": {}, "rmsprop_lr": {"lr": 0.001}, "rmsprop_alpha": {"alpha": 0.9},
    "rmsprop_eps": {"eps": 1e-3}, "rmsprop_weight_decay": {"weight_decay": 0.1},
    "rmsprop_momentum": {"momentum": 0.9}, "rmsprop_centered": {"centered": True},
    "rmsprop_centered_momentum": {"centered": True, "momentum": 0.5},
    "rmsprop_maximize": {"maximize": True},
    "adagrad": {}, "adagrad_lr": {"lr": 0.1}, "adagrad_lr_decay": {"lr_decay": 0.1},
    "adagrad_weight_decay": {"weight_decay": 0.1},
    "adagrad_initial_accumulator_value": {"initial_accumulator_value": 0.5},
    "adagrad_eps": {"eps": 1e-3}, "adagrad_maximize": {"maximize": True},
    "adadelta": {}, "adadelta_lr": {"lr": 0.5}, "adadelta_rho": {"rho": 0.5},
    "adadelta_eps": {"eps": 1e-3}, "adadelta_weight_decay": {"weight_decay": 0.1},
    "adadelta_maximize": {"maximize": True},
    "adamax": {}, "adamax_lr": {"lr": 0.01}, "adamax_betas": {"betas": (0.8, 0.9)},
    "adamax_eps": {"eps": 1e-2}, "adamax_weight_decay": {"weight_decay": 0.1},
    "adamax_maximize": {"maximize": True},
    "nadam": {}, "nadam_lr": {"lr": 0.01}, "nadam_betas": {"betas": (0.8, 0.9)},
    "nadam_eps": {"eps": 1e-3}, "nadam_weight_decay": {"weight_decay": 0.1},
    "nadam_momentum_decay": {"momentum_decay": 0.05},
    "nadam_decoupled_weight_decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "nadam_maximize": {"maximize": True},
    "radam": {}, "radam_lr": {"lr": 0.01}, "radam_betas": {"betas": (0.8, 0.9)},
    "radam_eps": {"eps": 1e-3}, "radam_weight_decay": {"weight_decay": 0.1},
    "radam_decoupled_weight_decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "radam_maximize": {"maximize": True},
    "asgd": {}, "asgd_lr": {"lr": 0.05}, "asgd_lambd": {"lambd": 0.01}, "asgd_alpha": {"alpha": 0.5},
    "asgd_t0": {"t0": 5.0}, "asgd_weight_decay": {"weight_decay": 0.1},
    "asgd_maximize": {"maximize": True},
    "rprop": {}, "rprop_lr": {"lr": 0.05}, "rprop_etas": {"etas": (0.3, 1.5)},
    "rprop_step_sizes": {"step_sizes": (1e-3, 0.02)}, "rprop_maximize": {"maximize": True},
    "adafactor": {}, "adafactor_lr": {"lr": 0.05}, "adafactor_beta2_decay": {"beta2_decay": -0.5},
    "adafactor_eps1": {"eps": (1e-3, 1e-3)}, "adafactor_eps2": {"eps": (None, 0.1)},
    "adafactor_d": {"d": 1.5}, "adafactor_weight_decay": {"weight_decay": 0.1},
    "adafactor_maximize": {"maximize": True},
}
MUON_CASES = {
    "muon": {}, "muon_lr": {"lr": 0.05}, "muon_nesterov": {"lr": 0.02, "nesterov": False},
    "muon_momentum": {"lr": 0.02, "momentum": 0.8}, "muon_weight_decay": {"lr": 0.02, "weight_decay": 0.5},
    "muon_match_rms": {"lr": 0.01, "adjust_lr_fn": "match_rms_adamw"},
    "muon_ns": {"lr": 0.02, "ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5)},
    "muon_eps": {"lr": 0.02, "eps": 10.0},  # the clamp at work: the update's norm is below eps
}
# two param groups, the second with its own lr (and the classic base 1e-2 / head 1e-3)
GROUP_LR = {"sgd": 0.05, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.001, "adagrad": 0.1,
            "adadelta": 0.5, "adamax": 0.01, "nadam": 0.01, "radam": 0.01, "asgd": 0.05,
            "rprop": 0.05, "adafactor": 0.05}


def algo_of(case):
    return case.split("_")[0]


def init_params(with_k):
    gen = torch.Generator().manual_seed(1234)
    shapes = {"W": (4, 3), "b": (3,)}
    if with_k:
        shapes["K"] = (2, 2, 3)
    params = {n: (torch.rand(s, generator=gen) * 2 - 1) for n, s in shapes.items()}
    consts = {n: (torch.rand(s, generator=gen) - 0.5) for n, s in shapes.items()}
    return params, consts


def grad_of(p, c):
    """(p*p - 0.5)*p + c, each operation rounded to float32 (as the C test computes it)."""
    x = p.detach().numpy()
    g = (x * x - np.float32(0.5)) * x + c.numpy()
    return torch.from_numpy(g.astype(np.float32))


def run(make, names, init, consts, clip=None, steps=STEPS):
    params = {n: init[n].clone().requires_grad_(True) for n in names}
    opt = make(params)
    traj = {n: [] for n in names}
    norms = []
    for _ in range(steps):
        for n in names:
            params[n].grad = grad_of(params[n], consts[n])
        if clip is not None:
            kind, value = clip
            plist = [params[n] for n in names]
            if kind == "value":
                torch.nn.utils.clip_grad_value_(plist, value)
            else:
                norms.append(torch.nn.utils.clip_grad_norm_(plist, value, norm_type=kind).item())
        opt.step()
        for n in names:
            traj[n].append(params[n].detach().clone())
    return {n: torch.stack(v) for n, v in traj.items()}, norms


def check_references():
    """The 2.x reference classes reproduce torch.optim 1.13 where both exist (bit for bit)."""
    init, consts = init_params(False)
    for ref, real, kw in ((NAdam2, O.NAdam, {}), (NAdam2, O.NAdam, {"weight_decay": 0.1}),
                          (RAdam2, O.RAdam, {}), (RAdam2, O.RAdam, {"weight_decay": 0.1})):
        a, _ = run(lambda p: ref(list(p.values()), **kw), ["W", "b"], init, consts)
        b, _ = run(lambda p: real(list(p.values()), **kw), ["W", "b"], init, consts)
        for n in a:
            assert torch.equal(a[n], b[n]), (ref.__name__, kw, n)


def rosenbrock_closure(x):
    """Loss and gradient of (1-x0)^2 + 100 (x1-x0^2)^2 in float32, op by op as in C."""
    def closure():
        x0, x1 = x.detach().numpy().astype(np.float32)
        f32 = np.float32
        a = f32(1) - x0
        b = x1 - x0 * x0
        f = a * a + f32(100) * (b * b)
        g0 = f32(-2) * a - (f32(400) * x0) * b
        g1 = f32(200) * b
        x.grad = torch.tensor([g0, g1], dtype=torch.float32)
        return torch.tensor(f, dtype=torch.float32)
    return closure


LBFGS_CASES = {
    "lbfgs": {"lr": 0.2},
    "lbfgs_wolfe": {"line_search_fn": "strong_wolfe"},
    "lbfgs_wolfe_history": {"line_search_fn": "strong_wolfe", "history_size": 3, "max_iter": 7},
    "lbfgs_max_eval": {"lr": 0.2, "max_iter": 30, "max_eval": 9, "history_size": 4},
    "lbfgs_tolerance": {"line_search_fn": "strong_wolfe", "tolerance_grad": 1e-2,
                        "tolerance_change": 1e-4},
}
LBFGS_STEPS = 8


def main():
    check_references()
    g = Golden()
    g.add("steps", np.array([STEPS], dtype=np.int32))
    for with_k in (False, True):
        init, consts = init_params(with_k)
        prefix = "initk." if with_k else "init."
        for n in init:
            g.add(prefix + n, init[n])
            g.add(prefix + "c." + n, consts[n])
    ncases = 0
    for case, kw in CASES.items():
        algo = algo_of(case)
        cls, base = ALGOS[algo]
        init, consts = init_params(algo == "adafactor")
        names = list(init)
        opts = dict(base, **kw)
        traj, _ = run(lambda p: cls(list(p.values()), **opts), names, init, consts)
        for n in names:
            g.add(f"{case}/{n}", traj[n])
        ncases += 1
    for algo, lr in GROUP_LR.items():
        cls, base = ALGOS[algo]
        init, consts = init_params(algo == "adafactor")
        names = list(init)
        head = ["b"]
        body = [n for n in names if n not in head]

        def make(p, cls=cls, base=base, lr=lr, body=body):
            return cls([{"params": [p[n] for n in body]}, {"params": [p["b"]], "lr": lr}], **base)
        traj, _ = run(make, names, init, consts)
        for n in names:
            g.add(f"{algo}_groups/{n}", traj[n])
        ncases += 1
    # the classic recipe: base layers lr 1e-2, classifier lr 1e-3, SGD with momentum
    init, consts = init_params(False)
    traj, _ = run(lambda p: O.SGD([{"params": [p["W"]]}, {"params": [p["b"]], "lr": 1e-3}],
                                  lr=1e-2, momentum=0.9), ["W", "b"], init, consts)
    for n in traj:
        g.add(f"sgd_base_head/{n}", traj[n])
    # clipping before each SGD step
    for case, clip in (("clip_norm2", (2.0, 0.5)), ("clip_norm1", (1.0, 0.5)),
                       ("clip_norminf", (math.inf, 0.3)), ("clip_norm3", (3.0, 0.5)),
                       ("clip_norm2_large", (2.0, 100.0)), ("clip_value", ("value", 0.3))):
        traj, norms = run(lambda p: O.SGD(list(p.values()), lr=0.05, momentum=0.9),
                          ["W", "b"], init, consts, clip=clip)
        for n in traj:
            g.add(f"{case}/{n}", traj[n])
        if norms:
            g.add(f"{case}/total_norm", np.array(norms, dtype=np.float32))
    # LBFGS on Rosenbrock
    for case, kw in LBFGS_CASES.items():
        x = torch.tensor([-1.5, 2.0], requires_grad=True)
        opt = O.LBFGS([x], **kw)
        closure = rosenbrock_closure(x)
        xs, losses, evals, iters = [], [], [], []
        for _ in range(LBFGS_STEPS):
            losses.append(float(opt.step(closure)))
            xs.append(x.detach().clone())
            st = opt.state[x]
            evals.append(st["func_evals"])
            iters.append(st["n_iter"])
        g.add(f"{case}/x", torch.stack(xs))
        g.add(f"{case}/loss", np.array(losses, dtype=np.float64))
        g.add(f"{case}/func_evals", np.array(evals, dtype=np.int32))
        g.add(f"{case}/n_iter", np.array(iters, dtype=np.int32))
        print(f"{case}: x {xs[-1].tolist()} loss {losses[-1]:.3g} evals {evals[-1]} iters {iters[-1]}")
    g.add("lbfgs_steps", np.array([LBFGS_STEPS], dtype=np.int32))
    # Muon (PyTorch 2.9, from the reference above) on 2-D parameters only: W [4, 3] (more rows
    # than columns: orthogonalised transposed) and M [3, 5]
    gen = torch.Generator().manual_seed(99)
    minit = {"W": torch.rand((4, 3), generator=gen) * 2 - 1, "M": torch.rand((3, 5), generator=gen) * 2 - 1}
    mconsts = {n: torch.rand(t.shape, generator=gen) - 0.5 for n, t in minit.items()}
    for n in minit:
        g.add("initm." + n, minit[n])
        g.add("initm.c." + n, mconsts[n])
    for case, kw in MUON_CASES.items():
        traj, _ = run(lambda p: Muon(list(p.values()), **kw), ["W", "M"], minit, mconsts)
        for n in traj:
            g.add(f"{case}/{n}", traj[n])
    path = os.path.join(OUT, "optim.nbg.gz")
    g.save(path)
    print(f"wrote {path}: {ncases + 7} trajectory cases, {len(LBFGS_CASES)} LBFGS cases")


if __name__ == "__main__":
    main()
