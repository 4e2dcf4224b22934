"""Networks: MLPs, the batched critic ensemble, actors, Polyak averaging."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """ReLU MLP: in → hidden… → out (linear output)."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [nn.Linear(last, width), nn.ReLU()]
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class CriticEnsemble(nn.Module):
    """n independent Q functions Q_φj(s, a) held as one module (DESIGN.md principle 3).

    Every layer's weight has a leading member dimension, shape (n, in, out), and is applied with
    one batched matmul, so two critics (or ten) cost one call per layer instead of n calls.
    Input: ``obs_act`` of shape (B, obs_dim + act_dim) (the replay buffer stores s and a side by
    side so this needs no concatenation), output: Q values of shape (n, B).
    Each member is initialised like ``nn.Linear`` (Kaiming-uniform), independently.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], n: int) -> None:
        super().__init__()
        self.n = n
        sizes = [in_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)
            w = torch.empty(n, fan_in, fan_out).uniform_(-bound, bound)
            b = torch.empty(n, 1, fan_out).uniform_(-bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def forward(self, obs_act: Tensor, detach_params: bool = False) -> Tensor:
        """Q values (n, B). ``detach_params=True`` lets gradients reach the *input* (the action in
        the actor loss) but never the critic's weights: no weight gradients are even computed,
        which both isolates the actor step (a "frozen" critic that is really frozen) and saves
        the two weight-gradient products per layer."""
        x = obs_act.expand(self.n, *obs_act.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if detach_params:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)


class GaussianActor(nn.Module):
    """SAC policy network: s ↦ (μ_θ(s), log σ_θ(s)). The log-std is a network output
    (state-dependent, as the specification requires), clamped to [log_std_min, log_std_max]."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: Sequence[int], log_std_min: float, log_std_max: float
    ) -> None:
        super().__init__()
        self.trunk = mlp(obs_dim, hidden, 2 * act_dim)
        self.act_dim = act_dim
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.trunk(obs).split(self.act_dim, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)


class DeterministicActor(nn.Module):
    """TD3/DDPG policy network: s ↦ μ_θ(s) = tanh(f_θ(s)) in [−1, 1]^dim(A)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.trunk = mlp(obs_dim, hidden, act_dim)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.trunk(obs))


@torch.no_grad()
def polyak_update(target: Iterable[Tensor], source: Iterable[Tensor], tau: float) -> None:
    """φ_targ ← ρ φ_targ + (1 − ρ) φ with τ = 1 − ρ, i.e. φ_targ ← φ_targ + τ (φ − φ_targ):
    one fused ``lerp_`` over all tensors instead of a multiply and an add per tensor."""
    torch._foreach_lerp_(list(target), list(source), tau)


def adam(params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel: every tensor of the group is updated in one call (CPU and CUDA)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def adam_step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()`` for a fused, plain Adam (no amsgrad, weight decay or maximize), as one direct
    ``torch._fused_adam_`` call per parameter group.

    Same kernel, same state (so checkpoints and ``opt.state_dict()`` are unaffected); what it skips
    is ``Optimizer.step``'s per-call Python bookkeeping — grouping tensors by device and dtype,
    profiler hooks, dtype checks — which costs ≈0.3 ms per step on a 2-core CPU, several times the
    kernel itself for these network sizes. The first step (no state yet) goes through ``opt.step()``,
    which creates the state exactly as PyTorch does.
    """
    groups = []
    for group in opt.param_groups:
        if not group["fused"] or group["amsgrad"] or group["maximize"] or group["differentiable"]:
            opt.step()  # not the configuration this shortcut reproduces
            return
        params = [p for p in group["params"] if p.grad is not None]
        if any(not opt.state[p] for p in params):
            opt.step()
            return
        groups.append((group, params))
    for group, params in groups:
        if not params:
            continue
        states = [opt.state[p] for p in params]
        steps = [s["step"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1.0)  # a float: an int scalar costs a dtype conversion per tensor
        torch._fused_adam_(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


def init_adam_state(opt: torch.optim.Optimizer) -> None:
    """Create the state of every parameter that has none yet, exactly as a fused ``Adam.step`` would
    (a float32 step tensor on the parameter's device, zero moments): ``adam_step_traceable`` runs
    inside a compiled graph, which cannot create dictionary entries on its first call."""
    for group in opt.param_groups:
        for p in group["params"]:
            if not opt.state[p]:
                opt.state[p]["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                opt.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                opt.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def adam_step_traceable(opt: torch.optim.Optimizer) -> None:
    """``adam_step`` in foreach and elementwise ops, for ``torch.compile``: it cannot trace the fused
    kernel (an opaque in-place op), while these Inductor fuses into one loop per tensor. Same
    formula as the fused kernel — m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr/(1−β₁ᵗ) ·
    m / (√v / √(1−β₂ᵗ) + ε) — with the bias corrections in float32 instead of double, so the two
    agree to rounding. Needs ``init_adam_state`` first and a plain Adam (no weight decay, amsgrad)."""
    for group in opt.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        states = [opt.state[p] for p in params]
        grads = [p.grad for p in params]
        steps = [s["step"] for s in states]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1.0)
        torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1.0 - beta2)
        # The bias corrections once per group (its parameters are always stepped together, so their
        # step counts are equal), as exp(t log β): Inductor stores a scalar that several loops read
        # when it holds an exp, and would otherwise recompute β**t inside every vectorised
        # iteration of every parameter's loop (≈0.25 ms per SAC update on 2 cores).
        t = steps[0]
        step_size = group["lr"] / (1.0 - torch.exp(t * math.log(beta1)))
        bias2_sqrt = (1.0 - torch.exp(t * math.log(beta2))).sqrt()
        for p, m, v in zip(params, exp_avgs, exp_avg_sqs, strict=True):
            denom = (v.sqrt() / bias2_sqrt).add_(group["eps"])
            p.sub_(m / denom * step_size)


def hard_update(target: nn.Module, source: nn.Module) -> None:
    """Copy source's parameters into target (targets start equal to their networks)."""
    target.load_state_dict(source.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
