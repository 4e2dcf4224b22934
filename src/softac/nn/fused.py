"""A fused, algorithm-agnostic Linear/ReLU stack for the CPU: one autograd node per network call.

Every network in softac is a stack of batched affine layers with ReLU between them (weights
``(G, in, out)``, biases ``(G, 1, out)``, G = learners × members). Built from separate autograd ops,
each call records 2–3 nodes per layer, allocates a gradient for every intermediate and runs each
elementwise op as its own pass; on a 2-core CPU that bookkeeping cost about as much as the matrix
products of these 256-wide layers. Here the whole stack is one ``torch.autograd.Function``: the
forward pass keeps only what the backward needs (each layer's input; the ReLU outputs double as
their masks), and the backward pass is the generic one of an affine/ReLU layer,

    z = x W + b,  h = relu(z),  δ = ∂L/∂h:
    ∂L/∂z = δ ⊙ 1[h > 0],   ∂L/∂W = xᵀ ∂L/∂z,   ∂L/∂b = Σ_rows ∂L/∂z,   ∂L/∂x = ∂L/∂z Wᵀ,

computing only the gradients autograd asks for (``ctx.needs_input_grad``): no weight gradients
for a network evaluated with detached parameters, no input gradient for data. Nothing here knows
which algorithm calls it; every algorithm's update is plain autograd on top (DESIGN.md principle
2), and ``tests/test_accel.py`` holds this node to the same stack built from separate ops.

Layers with one output (Q heads, value heads) are computed as ``qᵀ = wᵀ xᵀ``: BLAS runs the
(B × in)·(in × 1) product as a slow thin matmul, the transposed one 2–3× faster, and the head's
input gradient is an outer product (a broadcast multiply, no BLAS call at all).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def _affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """x (G, B, in) · w (G, in, out) + b (G, 1, out) → (G, B, out)."""
    if w.shape[-1] == 1:
        # (G, 1, in)·(G, in, B) → (G, 1, B), returned as a (G, B, 1) view.
        return torch.baddbmm(b, w.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(b, x, w)


def stack_forward(x: Tensor, params: list[Tensor]) -> list[Tensor]:
    """[x, h₁, …, y]: each layer's input and the output, ReLU after every layer but the last."""
    acts = [x]
    last = len(params) // 2 - 1
    h = x
    for i in range(last + 1):
        h = _affine(h, params[2 * i], params[2 * i + 1])
        if i < last:
            h = h.relu_()  # the product's output is fresh, so ReLU can run in place
        acts.append(h)
    return acts


class _LinearReLUStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, *params: Tensor) -> Tensor:
        acts = stack_forward(x, list(params))
        ctx.save_for_backward(*acts[:-1], *params[0::2])
        ctx.n_layers = len(params) // 2
        return acts[-1]

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> Any:
        n = ctx.n_layers
        saved = ctx.saved_tensors
        acts, weights = saved[:n], saved[n:]
        need_x = ctx.needs_input_grad[0]
        need_params = ctx.needs_input_grad[1:]
        grads: list[Tensor | None] = [None] * (2 * n)
        g = grad_out
        for i in range(n - 1, -1, -1):
            x, w = acts[i], weights[i]
            if i < n - 1:
                # δ ⊙ 1[h > 0] with h = this layer's output, saved as the next layer's input. In place:
                # g is the product this backward just made (never autograd's grad_out, which only
                # the last layer sees), and writing it again saves a fresh (G, B, width) buffer and
                # a pass over memory per layer (the op was 2× the in-place one of the earlier hand-derived release).
                g = torch.ops.aten.threshold_backward.grad_input(g, acts[i + 1], 0.0, grad_input=g)
            if need_params[2 * i]:
                if w.shape[-1] == 1:  # (G, 1, B)·(G, B, in) → (G, 1, in), the thin product transposed
                    grads[2 * i] = torch.bmm(g.transpose(1, 2), x).transpose(1, 2)
                else:
                    grads[2 * i] = torch.bmm(x.transpose(1, 2), g)
            if need_params[2 * i + 1]:
                grads[2 * i + 1] = g.sum(1, keepdim=True)
            if i > 0 or need_x:
                # A one-output layer's input gradient is an outer product, (G, B, 1) ⊙ (G, 1, in).
                g = g * w.transpose(1, 2) if w.shape[-1] == 1 else torch.bmm(g, w.transpose(1, 2))
        return (g if need_x else None, *grads)


def linear_relu_stack(x: Tensor, params: list[Tensor]) -> Tensor:
    """The stack as one autograd node (or a plain forward when no gradient is needed)."""
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        out: Tensor = _LinearReLUStack.apply(x, *params)
        return out
    return stack_forward(x, params)[-1]


# -- The squashed-Gaussian head -----------------------------------------------------------------
# A distribution primitive, not an algorithm: the tanh-squashed Gaussian's reparameterised sample
# and log-probability from a Gaussian actor's output h = [μ | raw log σ]
# (distributions.squashed_gaussian_rsample after the clamp) as one node, for every algorithm whose
# policy is that distribution. Built from separate ops it records ~15 autograd nodes and runs ~45
# small elementwise kernels per call (forward and backward) on (L, B, act_dim) tensors, a fixed
# cost of ≈0.5 ms per update on a 2-core CPU where the arithmetic is microseconds.
# With ℓ = clamp(raw, ℓ_min, ℓ_max), u = μ + e^ℓ ξ, ã = tanh(u) and
#     log π = Σ_i [−ξ_i²/2 − ℓ_i − log(2π)/2 − 2(log 2 − u_i − softplus(−2u_i))]   (the stable form),
# the backward pass, for upstream gradients ḡ_ã and ḡ_logπ, is
#     ∂L/∂u = ḡ_ã ⊙ (1 − ã²) + 2 ã ḡ_logπ        (d/du of −log(1 − tanh²u) is 2 tanh u)
#     ∂L/∂μ = ∂L/∂u,   ∂L/∂raw = (∂L/∂u ⊙ e^ℓ ξ − ḡ_logπ) ⊙ 1[ℓ_min ≤ raw ≤ ℓ_max]
# (ξ fixed: u − μ = e^ℓ ξ, so log N(u; μ, e^ℓ) = −ξ²/2 − ℓ − log(2π)/2 and ∂/∂ℓ of it is −1).
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def _head_forward(out: Tensor, noise: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(ã, log π, e^ℓ ξ, ℓ) from the head output ``out`` (..., 2A) and ξ (..., A)."""
    a = noise.shape[-1]
    mean = out[..., :a]
    log_std = out[..., a:].clamp(lo, hi)
    std_xi = log_std.exp().mul_(noise)
    u = std_xi + mean
    action = u.tanh()
    # Σ_i [(−ξ²/2 − ℓ − log(2π)/2) − 2(log 2 − u − softplus(−2u))], every op in the reference's order
    # (−a + b is a − b exactly), so the two forward passes agree to the bit; in place after the first.
    gaussian = noise.square().mul_(-0.5).sub_(log_std).sub_(_HALF_LOG_2PI)
    jacobian = u.neg().add_(_LOG_2).sub_(torch.nn.functional.softplus(u * -2.0)).mul_(2.0)
    log_prob = gaussian.sub_(jacobian).sum(-1)
    return action, log_prob, std_xi, log_std


class _SquashedGaussian(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, out: Tensor, noise: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor]:
        action, log_prob, std_xi, log_std = _head_forward(out, noise, lo, hi)
        # 1[ℓ_min ≤ raw ≤ ℓ_max] as "the clamp left it unchanged" (boundaries included, as torch's
        # clamp backward passes them).
        inside = log_std == out[..., noise.shape[-1] :]
        ctx.save_for_backward(action, std_xi, inside)
        return action, log_prob

    @staticmethod
    def backward(ctx: Any, grad_action: Tensor, grad_log_prob: Tensor) -> Any:
        action, std_xi, inside = ctx.saved_tensors
        a = action.shape[-1]
        grad_out = action.new_empty((*action.shape[:-1], 2 * a))
        g_u, g_raw = grad_out[..., :a], grad_out[..., a:]
        torch.addcmul(grad_action, grad_action, action.square(), value=-1.0, out=g_u)  # ḡ_ã (1 − ã²)
        g_lp = grad_log_prob.unsqueeze(-1)
        g_u.addcmul_(action, g_lp, value=2.0)
        torch.mul(g_u, std_xi, out=g_raw).sub_(g_lp).mul_(inside)
        return grad_out, None, None, None


def squashed_gaussian_head(out: Tensor, noise: Tensor, lo: float, hi: float) -> tuple[Tensor, Tensor]:
    """(ã, log π(ã|s)) from a Gaussian actor's output [μ | raw log σ] and ξ ~ N(0, I), the log-std
    clamped to [lo, hi]: ``squashed_gaussian_rsample(μ, clamp(raw, lo, hi), ξ)`` as one node (or a
    plain forward when no gradient is needed). ``tests/test_accel.py`` holds the two equal."""
    if torch.is_grad_enabled() and out.requires_grad:
        action, log_prob = _SquashedGaussian.apply(out, noise, lo, hi)
        return action, log_prob
    return _head_forward(out, noise, lo, hi)[:2]
