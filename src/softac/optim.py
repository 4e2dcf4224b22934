"""Optimizers and parameter averaging, for every algorithm and every learner axis.

Adam's update is elementwise, so one optimizer over tensors that stack N learners is N
independent Adams (they share only the step count, which is equal anyway); gradient-norm
clipping is the one operation that must be computed per learner (``clip_grad_norm_``).
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def adam(
    params: Iterable[Tensor] | Iterable[dict[str, Any]],
    lr: float,
    device: torch.device,
    eps: float = 1e-8,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
) -> torch.optim.Adam:
    """Fused Adam with its state created up front (``init_adam_state``). ``capturable`` on CUDA:
    the step counts live on the device, so the update can be captured in a CUDA graph. ``eps``:
    torch's 1e-8 by default; PPO uses SB3's and CleanRL's 1e-5. ``betas``: CrossQ uses β₁ = 0.5
    (Bhatt et al. 2024). ``weight_decay`` > 0 gives AdamW's *decoupled* decay θ ← θ − lr·λ·θ
    (Loshchilov & Hutter 2019; SimBa's optimizer), not Adam's L2 term in the gradient."""
    cls = _AdamW if weight_decay > 0 else _Adam
    opt = cls(params, lr=lr, eps=eps, betas=betas, weight_decay=weight_decay, fused=True,
              capturable=device.type == "cuda")  # fmt: skip
    init_adam_state(opt)
    return opt


# ``Optimizer.add_param_group``, which ``Optimizer.__init__`` calls, is wrapped in
# ``torch._disable_dynamo``, whose first call imports ``torch._dynamo``: 1.0 s of CPU in a process
# that never compiles (a `softac train` refusal took 3.0 s of CPU, 2026-12-07). softac only
# constructs optimizers outside compiled code (``softac.accel`` compiles the update, which steps
# them with ``adam_step_traceable``), so the wrapper has nothing to disable; the classes below call
# the function it wraps. A torch that stops exposing ``__wrapped__`` gets the wrapper back.
_ADD_PARAM_GROUP = getattr(torch.optim.Optimizer.add_param_group, "__wrapped__", torch.optim.Optimizer.add_param_group)


class _Adam(torch.optim.Adam):
    """``torch.optim.Adam`` constructed without importing ``torch._dynamo`` (see above)."""

    add_param_group = _ADD_PARAM_GROUP


class _AdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` constructed without importing ``torch._dynamo`` (see above)."""

    add_param_group = _ADD_PARAM_GROUP


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
    parameters without a gradient are skipped, as ``Adam.step`` skips them.

    A group's ``lr`` may be a 0-d tensor (``set_lr``): the kernel then reads it from memory at
    each call, so a schedule that changes it in place needs no new CUDA graph or compilation."""
    # Consecutive groups with the same settings go to one kernel call (SAC's actor and log α at
    # equal learning rates: two calls cost ≈ 40 µs more per update on a 2-core CPU).
    runs: list[tuple[tuple[Any, ...], dict[str, Any], list[Tensor], list[Tensor]]] = []
    for group, gs in _groups(opt, grads):
        params = [p for p, g in zip(group["params"], gs, strict=True) if g is not None]
        grads_ = [g for g in gs if g is not None]
        if not params:
            continue
        lr = _lr(group)
        key = (id(lr) if isinstance(lr, Tensor) else lr, tuple(group["betas"]), group["eps"], group["weight_decay"])
        if runs and runs[-1][0] == key:
            runs[-1][2].extend(params)
            runs[-1][3].extend(grads_)
        else:
            runs.append((key, group, params, grads_))
    kernel = torch._fused_adamw_ if isinstance(opt, torch.optim.AdamW) else torch._fused_adam_
    for _, group, params, gs in runs:
        beta1, beta2 = group["betas"]
        states = [opt.state[p] for p in params]
        steps = [s["step"] for s in states]
        # A tensor 1 of the steps' own dtype: with a Python number the CPU loop converts it once per
        # tensor (17 against 6 µs for SAC's six actor tensors).
        torch._foreach_add_(steps, [_one(steps[0])] * len(steps))
        kernel(
            params,
            gs,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            amsgrad=False,
            lr=_lr(group),
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


_ONES: dict[tuple[torch.device, torch.dtype], Tensor] = {}


def _one(like: Tensor) -> Tensor:
    """A 0-d 1 on ``like``'s device and dtype, made once (never written: only read by the adds)."""
    key = (like.device, like.dtype)
    if key not in _ONES:
        _ONES[key] = torch.ones((), dtype=like.dtype, device=like.device)
    return _ONES[key]


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
        if isinstance(opt, torch.optim.AdamW) and group["weight_decay"]:
            # Decoupled decay first, as torch's AdamW: θ ← θ (1 − lr λ).
            torch._foreach_mul_(params, 1.0 - _lr(group) * group["weight_decay"])
        torch._foreach_lerp_(exp_avgs, grads_, 1.0 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads_, grads_, 1.0 - beta2)
        # The bias corrections once per group (its parameters are always stepped together, so their
        # step counts are equal), as exp(t log β): Inductor stores a scalar that several loops read
        # when it holds an exp, and would otherwise recompute β**t inside every vectorised loop.
        t = steps[0]
        step_size = _lr(group) / (1.0 - torch.exp(t * math.log(beta1)))
        bias2_sqrt = (1.0 - torch.exp(t * math.log(beta2))).sqrt()
        for p, m, v in zip(params, exp_avgs, exp_avg_sqs, strict=True):
            denom = (v.sqrt() / bias2_sqrt).add_(group["eps"])
            p.sub_(m / denom * step_size)


def _lr(group: dict[str, Any]) -> Any:
    lr = group["lr"]
    return lr if isinstance(lr, Tensor) else float(lr)


def tensor_lr(opt: torch.optim.Optimizer) -> None:
    """Hold every group's learning rate as a 0-d tensor on its parameters' device, so that
    ``set_lr`` can change it in place (a learning-rate schedule under torch.compile or a CUDA
    graph, which would otherwise bake the float into the compiled code or the captured kernel)."""
    for group in opt.param_groups:
        device = group["params"][0].device
        group["lr"] = torch.tensor(float(group["lr"]), dtype=torch.float32, device=device)


@torch.no_grad()
def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate: in place for a tensor one (``tensor_lr``)."""
    for group in opt.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


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
    with_grad = [p for p in params if p.grad is not None]
    clipped, norm = clip_grads([p.grad for p in with_grad if p.grad is not None], max_norm, learners)
    for p, g in zip(with_grad, clipped, strict=True):
        p.grad = g
    return norm


def clip_grads(grads: Sequence[Tensor], max_norm: float, learners: int) -> tuple[list[Tensor], Tensor]:
    """``clip_grad_norm_`` on gradient tensors — e.g. those ``torch.func.grad`` returns — as new
    tensors (not in place: under ``torch.compile`` the gradients are still part of the traced
    graph, whose backward needs them unmodified). Per learner, so one learner's large gradient
    never shrinks another's step. Returns (clipped gradients, norms before clipping (L,))."""
    norm = torch.stack([g.reshape(learners, -1).square().sum(1) for g in grads]).sum(0).sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    return [(g.reshape(learners, -1) * scale[:, None]).view_as(g) for g in grads], norm


@torch.no_grad()
def polyak_update(target: nn.Module | Iterable[Tensor], source: nn.Module | Iterable[Tensor], tau: float) -> None:
    """φ_targ ← ρ φ_targ + (1 − ρ) φ with τ = 1 − ρ, i.e. φ_targ ← φ_targ + τ (φ − φ_targ):
    one fused ``lerp_`` over all tensors instead of a multiply and an add per tensor. Modules are
    read through ``module_params``."""
    torch._foreach_lerp_(_tensors(target), _tensors(source), tau)


_PARAMS: weakref.WeakKeyDictionary[nn.Module, list[Tensor]] = weakref.WeakKeyDictionary()


def module_params(module: nn.Module) -> list[Tensor]:
    """``list(module.parameters())``, listed once per module. Why: ``parameters()`` walks the module
    tree (14 walks per SAC update, ≈ 0.1 ms on a 2-core CPU); the Parameter objects themselves never
    change after a network is built (``.to()``, ``load_state_dict`` and the optimizers write into
    them), as ``nn.batched.cached_params`` also relies on."""
    params = _PARAMS.get(module)
    if params is None:
        params = _PARAMS[module] = list(module.parameters())
    return params


def _tensors(x: nn.Module | Iterable[Tensor]) -> list[Tensor]:
    if not isinstance(x, nn.Module):
        return list(x)
    # Traced code lists them itself: a weak-keyed cache is nothing torch.compile needs to follow.
    return list(x.parameters()) if torch.compiler.is_compiling() else module_params(x)


def frozen_copy(source: nn.Module) -> nn.Module:
    """A target network: a copy of ``source`` whose parameters never require gradients."""
    target = copy.deepcopy(source)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


# What a loss may hand back besides its value and metrics: non-gradient state it computed, as
# (live tensor, new value) pairs — batch renormalisation's running statistics, say. The loss never
# writes them itself (it runs inside ``torch.func.grad`` under compile, and a graph warm-up must be
# able to undo it); ``gradient_step`` applies them after the gradient (DESIGN.md principle 3).
StateUpdates = list[tuple[Tensor, Tensor]]


def gradient_step(
    opt: torch.optim.Optimizer,
    loss_fn: Callable[..., Any],
    args: Sequence[Any],
    learners: int,
    step: Callable[[torch.optim.Optimizer, Sequence[Tensor]], None],
    max_grad_norm: float | None = None,
) -> dict[str, Tensor]:
    """One optimizer step on ``loss_fn(params, *args) -> (loss per learner (L,), metrics)`` or
    ``-> (loss, metrics, new_state)``, where ``params`` are the optimizer's parameters in group
    order — the loss is written as a function of exactly the tensors it may change, so nothing
    else can receive a gradient — and ``new_state`` (``StateUpdates``) lists non-gradient tensors
    the loss computed new values for (running statistics), copied into place after the gradient.

    Eagerly the gradient comes from autograd on the parameters themselves (and is left in
    ``.grad``, where the tests read it); under ``torch.compile`` from ``torch.func.grad``, so the
    forward pass, its backward and the optimizer step trace into one graph instead of breaking at
    ``backward()``. The learners' losses are summed: their parameters are disjoint slices, so each
    learner receives exactly the gradient of its own loss.

    ``max_grad_norm`` clips each learner's gradient to that L2 norm over all of the optimizer's
    parameters (``clip_grads``, per learner) before ``step(opt, grads)``, and adds the norms
    before clipping to the metrics as ``grad/norm``."""
    params = [p for group in opt.param_groups for p in group["params"]]
    targets: list[Tensor] = []
    if torch.compiler.is_compiling():

        def total(ps: list[Tensor]) -> tuple[Tensor, tuple[dict[str, Tensor], list[Tensor]]]:
            out = loss_fn(ps, *args)
            new_state: StateUpdates = out[2] if len(out) == 3 else []
            targets.extend(t for t, _ in new_state)  # the live tensors stay outside the transform
            return out[0].sum(), (out[1], [v.detach() for _, v in new_state])

        grads, (metrics, values) = torch.func.grad(total, has_aux=True)(params)
    else:
        out = loss_fn(params, *args)
        loss, metrics = out[0], out[1]
        new_state = out[2] if len(out) == 3 else []
        targets, values = [t for t, _ in new_state], [v.detach() for _, v in new_state]
        grads = torch.autograd.grad(loss.sum(), params)
    if targets:
        with torch.no_grad():
            torch._foreach_copy_(targets, values)
    if max_grad_norm is not None:
        grads, norm = clip_grads(grads, max_grad_norm, learners)
        metrics = {**metrics, "grad/norm": norm.detach()}
    if not torch.compiler.is_compiling():
        for p, g in zip(params, grads, strict=True):
            p.grad = g
    step(opt, grads)
    return metrics
