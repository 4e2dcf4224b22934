"""Distributional critics over a fixed support (pure functions; the agents' wiring is still to come,
docs/networks.md).

A critic outputs logits ℓ over K fixed atoms z_k = v_min + k Δz, Δz = (v_max − v_min)/(K − 1); its
value is Q = Σ_k softmax(ℓ)_k z_k and its loss the cross-entropy −Σ_k p_k log softmax(ℓ)_k to a
target histogram p, built either way:

- categorical (C51, Bellemare et al. 2017, Algorithm 1): the atoms of the target distribution
  moved to T z_j = r + γ(1 − d)(z_j − s) — for SAC s = α log π(ã'|s'), the entropy term subtracted
  from every atom; 0 for TD3 — clipped to [v_min, v_max], and each atom's probability split between
  its two neighbours in proportion to closeness.
- HL-Gauss (Farebrother et al. 2024, "Stop Regressing"): the scalar TD target y as a Gaussian
  N(y, σ²), σ = ratio · Δz (their default ratio 0.75), integrated over each bin
  [z_k − Δz/2, z_k + Δz/2] and renormalised over the support (the mass beyond the edges dropped).

Shapes: any leading dims, the batch, then the atoms last.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def support(v_min: float, v_max: float, bins: int) -> Tensor:
    """z_k = v_min + k (v_max − v_min)/(K − 1), k = 0 … K − 1."""
    return torch.linspace(v_min, v_max, bins)


def expected_value(logits: Tensor, atoms: Tensor) -> Tensor:
    """Q = Σ_k softmax(ℓ)_k z_k."""
    return (logits.softmax(dim=-1) * atoms).sum(dim=-1)


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """−Σ_k p_k log softmax(ℓ)_k per row (the target ``p`` carries no gradient)."""
    return -(target.detach() * logits.log_softmax(dim=-1)).sum(dim=-1)


def hl_gauss_target(y: Tensor, atoms: Tensor, sigma: float) -> Tensor:
    """p_k = (Φ((z_k + Δz/2 − y)/σ) − Φ((z_k − Δz/2 − y)/σ)) / (Φ((z_K + Δz/2 − y)/σ) − Φ((z_1 − Δz/2 − y)/σ)):
    a Gaussian around y integrated over the bins, renormalised over the support. ``y`` (*lead),
    result (*lead, K)."""
    dz = float(atoms[1] - atoms[0])
    edges = torch.cat([atoms - dz / 2, atoms[-1:] + dz / 2])  # K + 1 bin edges
    cdf = 0.5 * (1.0 + torch.erf((edges - y.unsqueeze(-1)) / (sigma * math.sqrt(2.0))))
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1])


def categorical_projection(
    reward: Tensor, terminated: Tensor, gamma: float, next_probs: Tensor, atoms: Tensor, shift: Tensor | float = 0.0
) -> Tensor:
    """Bellemare et al. 2017, Algorithm 1: the distribution with probabilities ``next_probs``
    (*lead, K) on atoms T z_j = r + γ(1 − d)(z_j − shift), clipped to [v_min, v_max], projected
    on the fixed atoms: atom j's mass goes to its neighbours l = ⌊b_j⌋, u = ⌈b_j⌉ of
    b_j = (T z_j − v_min)/Δz as (u − b_j) to l and (b_j − l) to u (all of it to l when b_j is an
    integer). ``reward``, ``terminated``, ``shift`` (*lead); result (*lead, K)."""
    bins = atoms.shape[0]
    v_min, v_max = float(atoms[0]), float(atoms[-1])
    dz = (v_max - v_min) / (bins - 1)
    shift_t = torch.as_tensor(shift, dtype=atoms.dtype).unsqueeze(-1) if not isinstance(shift, float) else shift
    tz = reward.unsqueeze(-1) + gamma * (1.0 - terminated.unsqueeze(-1)) * (atoms - shift_t)
    b = (tz.clamp(v_min, v_max) - v_min) / dz
    lower = b.floor().clamp(0, bins - 1)
    upper = (lower + 1).clamp(max=bins - 1)
    w_upper = b - lower  # 0 when b is an integer: all mass to ``lower``
    out = torch.zeros_like(next_probs)
    out.scatter_add_(-1, lower.long(), next_probs * (1.0 - w_upper))
    out.scatter_add_(-1, upper.long(), next_probs * w_upper)
    return out
