"""Optimizers and parameter averaging, for every algorithm and every learner axis.

Adam's update is elementwise, so one optimizer over tensors that stack N learners is N
independent Adams (they share only the step count, which is equal anyway); gradient-norm
clipping is the one operation that must be computed per learner (``clip_grad_norm_``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def adam(params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float, device: torch.device) -> torch.optim.Adam:
    """Fused Adam with its state created up front (``init_adam_state``). ``capturable`` on CUDA:
    the step counts live on the device, so the update can be captured in a CUDA graph."""
    opt = torch.optim.Adam(params, lr=lr, fused=True, capturable=device.type == "cuda")
    init_adam_state(opt)
    return opt


def init_adam_state(opt: torch.optim.Optimizer) -> None:
    """Create the state of every parameter that has none yet, exactly as a fused ``Adam.step``
    would (a float32 step tensor on the parameter's device, zero moments). Why up front: a
    compiled or graph-captured update cannot create dictionary entries on its first call, and a
    batched run's checkpoint loader copies learners' moments into existing tensors."""
    for group in opt.param_groups:
        for p in group["params"]:
            if not opt.state[p]:
                opt.state[p]["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                opt.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                opt.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)


@torch.no_grad()
def adam_step(opt: torch.optim.Optimizer, grads: Sequence[Tensor] | None = None) -> None:
    """``opt.step()`` for a fused, plain Adam (no amsgrad, weight decay or maximize), as one direct
    ``torch._fused_adam_`` call per parameter group.

    Same kernel, same state (checkpoints and ``opt.state_dict()`` are unaffected); what it skips is
    ``Optimizer.step``'s per-call Python bookkeeping — grouping tensors by device and dtype,
    profiler hooks, dtype checks — which cost ≈0.3 ms per step on a 2-core CPU, several times the
    kernel itself for these network sizes. It reads only device tensors, so it can be captured
    in a CUDA graph. ``grads`` (one per parameter, in group order) are used instead of ``.grad``;
    parameters without a gradient are skipped, as ``Adam.step`` skips them."""
    for group, gs in _groups(opt, grads):
        params = [p for p, g in zip(group["params"], gs, strict=True) if g is not None]
        gs = [g for g in gs if g is not None]
        if not params:
            continue
        states = [opt.state[p] for p in params]
        steps = [s["step"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1.0)  # a float: an int scalar costs a dtype conversion per tensor
        torch._fused_adam_(
            params,
            gs,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            amsgrad=False,
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


@torch.no_grad()
def adam_step_traceable(opt: torch.optim.Optimizer, grads: Sequence[Tensor] | None = None) -> None:
    """``adam_step`` in foreach and elementwise ops, for ``torch.compile``: it cannot trace the fused
    kernel (an opaque in-place op), while these Inductor fuses into one loop per tensor. Same
    formula — m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε) —
    with the bias corrections in float32 instead of double, so the two agree to rounding."""
    for group, gs in _groups(opt, grads):
        params = [p for p, g in zip(group["params"], gs, strict=True) if g is not None]
        grads_ = [g for g in gs if g is not None]
        if not params:
            continue
        states = [opt.state[p] for p in params]
        steps = [s["step"] for s in states]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1.0)
        torch._foreach_lerp_(exp_avgs, grads_, 1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads_, grads_, 1.0 - beta2)
        # The bias corrections once per group (its parameters are always stepped together, so their
        # step counts are equal), as exp(t log β): Inductor stores a scalar that several loops read
        # when it holds an exp, and would otherwise recompute β**t inside every vectorised loop.
        t = steps[0]
        step_size = float(group["lr"]) / (1.0 - torch.exp(t * math.log(beta1)))
        bias2_sqrt = (1.0 - torch.exp(t * math.log(beta2))).sqrt()
        for p, m, v in zip(params, exp_avgs, exp_avg_sqs, strict=True):
            denom = (v.sqrt() / bias2_sqrt).add_(group["eps"])
            p.sub_(m / denom * step_size)


def _groups(opt: torch.optim.Optimizer, grads: Sequence[Tensor] | None) -> list[tuple[dict[str, Any], list[Any]]]:
    """Each parameter group with its gradients: from ``grads`` (group order) or from ``.grad``."""
    out = []
    start = 0
    for group in opt.param_groups:
        n = len(group["params"])
        gs = list(grads[start : start + n]) if grads is not None else [p.grad for p in group["params"]]
        out.append((group, gs))
        start += n
    return out


def clip_grad_norm_(params: Sequence[Tensor], max_norm: float, learners: int) -> Tensor:
    """``torch.nn.utils.clip_grad_norm_`` computed per learner: each learner's gradients (its
    slice of every tensor's leading, learner-major dimension) are scaled by
    min(1, max_norm / (‖g‖ + 1e-6)), with ‖g‖ the L2 norm over that learner's slices of all
    tensors. Returns the per-learner norms before clipping, shape (L,)."""
    grads = [p.grad for p in params if p.grad is not None]
    clipped, norm = clip_grads(grads, max_norm, learners)
    for g, c in zip(grads, clipped, strict=True):
        g.copy_(c)
    return norm


def clip_grads(grads: Sequence[Tensor], max_norm: float, learners: int) -> tuple[list[Tensor], Tensor]:
    """``clip_grad_norm_`` as a function of the gradients (no ``.grad``, nothing in place), so that
    ``Agent.gradient_step`` can clip what ``torch.func.grad`` returns inside a compiled update:
    learner k's gradients scaled by min(1, max_norm / (‖g_k‖ + 1e-6)). Returns them and the
    per-learner norms before clipping, shape (L,)."""
    sq = torch.stack([g.reshape(learners, -1).square().sum(1) for g in grads]).sum(0)
    norm = sq.sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    return [(g.reshape(learners, -1) * scale[:, None]).view_as(g) for g in grads], norm


@torch.no_grad()
def polyak_update(target: Iterable[Tensor], source: Iterable[Tensor], tau: float) -> None:
    """φ_targ ← ρ φ_targ + (1 − ρ) φ with τ = 1 − ρ, i.e. φ_targ ← φ_targ + τ (φ − φ_targ):
    one fused ``lerp_`` over all tensors instead of a multiply and an add per tensor."""
    torch._foreach_lerp_(list(target), list(source), tau)


def frozen_copy(source: nn.Module) -> nn.Module:
    """A target network: a copy of ``source`` whose parameters never require gradients."""
    target = copy.deepcopy(source)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
