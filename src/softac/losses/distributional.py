"""Distributional critics over a fixed support (pure functions; wired into SAC and TD3 by
``--critic-dist``, docs/networks.md).

A critic outputs logits ℓ over K fixed atoms z_k = v_min + k Δz, Δz = (v_max − v_min)/(K − 1); its
value is Q = Σ_k softmax(ℓ)_k z_k and its loss the cross-entropy −Σ_k p_k log softmax(ℓ)_k to a
target histogram p, built one of three ways (``KINDS``):

- ``c51`` — categorical (Bellemare et al. 2017, Algorithm 1): the atoms of the target distribution
  moved to T z_j = r + γ(1 − d)(z_j − s) — for SAC s = α log π(ã'|s'), the entropy term subtracted
  from every atom; 0 for TD3 — clipped to [v_min, v_max], and each atom's probability split between
  its two neighbours in proportion to closeness (FastTD3, Seo et al. 2025, does this for TD3).
- ``hl_gauss`` (Farebrother et al. 2024, "Stop Regressing"): the scalar TD target y, clipped to
  the support, as a Gaussian N(y, σ²), σ = ratio · Δz (their default ratio 0.75), integrated over
  each bin [z_k − Δz/2, z_k + Δz/2] and renormalised over the support (the mass beyond the edges
  dropped).
- ``two_hot`` (Schrittwieser et al. 2020; DreamerV3 without its symlog): the scalar y, clipped to
  the support, split between its two neighbouring atoms so that Σ p_k z_k = y exactly.

With an ensemble (``target_histogram``) the member with the smallest expected value at (s', a')
is the target, per row — clipped double Q on distributions, as FastTD3 chooses between its two.

Shapes: any leading dims, the batch, then the atoms last. No ``float(tensor)`` anywhere: the
functions run inside compiled and CUDA-graphed updates without a host sync.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from softac.losses.common import bootstrap

KINDS = ("c51", "hl_gauss", "two_hot")


def support(v_min: float, v_max: float, bins: int) -> Tensor:
    """z_k = v_min + k (v_max − v_min)/(K − 1), k = 0 … K − 1."""
    return torch.linspace(v_min, v_max, bins)


def expected_value(logits: Tensor, atoms: Tensor) -> Tensor:
    """Q = Σ_k softmax(ℓ)_k z_k."""
    return (logits.softmax(dim=-1) * atoms).sum(dim=-1)


def cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """−Σ_k p_k log softmax(ℓ)_k per row (the target ``p`` carries no gradient)."""
    return -(target.detach() * logits.log_softmax(dim=-1)).sum(dim=-1)


def critic_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Σ_i E[−Σ_k p_k log softmax(ℓ_φi(s, a))_k]: the distributional form of ``common.critic_loss``.

    ``logits`` (*lead, n_critics, B, K), ``target`` (*lead, B, K), one histogram for every member;
    per-member losses summed (disjoint parameters: each member gets its own loss's gradient).
    Returns shape ``*lead``."""
    return cross_entropy(logits, target.unsqueeze(-3)).mean(dim=-1).sum(dim=-1)


def hl_gauss_target(y: Tensor, atoms: Tensor, sigma: float) -> Tensor:
    """p_k = (Φ((z_k + Δz/2 − y)/σ) − Φ((z_k − Δz/2 − y)/σ)) / (Φ((z_K + Δz/2 − y)/σ) − Φ((z_1 − Δz/2 − y)/σ)):
    a Gaussian around y integrated over the bins, renormalised over the support. ``y`` (*lead),
    result (*lead, K). y is first clipped to [z_1, z_K], as ``two_hot_target`` clips it: a y more
    than ~4σ beyond the ends leaves no float32 mass on the support (Φ rounds to 0 or 1 at every
    edge, 0/0), and one just beyond leaves a sliver whose rounding the loss would magnify."""
    y = y.clamp(atoms[0], atoms[-1])
    half = (atoms[1] - atoms[0]) / 2
    edges = torch.cat([atoms - half, atoms[-1:] + half])  # K + 1 bin edges
    cdf = 0.5 * (1.0 + torch.erf((edges - y.unsqueeze(-1)) / (sigma * math.sqrt(2.0))))
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1])


def _spread(position: Tensor, mass: Tensor, atoms: Tensor) -> Tensor:
    """A histogram on ``atoms`` from point masses ``mass`` at ``position`` (both (*lead, J)): each
    position clipped to [v_min, v_max], b = (x − v_min)/Δz, its mass split (u − b) to l = ⌊b⌋ and
    (b − l) to u = l + 1 (all of it to l when b is an integer). Result (*lead, K)."""
    bins = atoms.shape[0]
    b = (position.clamp(atoms[0], atoms[-1]) - atoms[0]) / (atoms[1] - atoms[0])
    lower = b.floor().clamp(0, bins - 1)
    upper = (lower + 1).clamp(max=bins - 1)
    w_upper = b - lower  # 0 when b is an integer: all mass to ``lower``
    out = torch.zeros((*position.shape[:-1], bins), dtype=mass.dtype, device=mass.device)
    out.scatter_add_(-1, lower.long(), mass * (1.0 - w_upper))
    out.scatter_add_(-1, upper.long(), mass * w_upper)
    return out


def two_hot_target(y: Tensor, atoms: Tensor) -> Tensor:
    """The two-hot histogram of y (*lead): y clipped to the support, split between its neighbours
    z_l ≤ y ≤ z_u as p_l = (z_u − y)/Δz, p_u = (y − z_l)/Δz. Result (*lead, K)."""
    return _spread(y.unsqueeze(-1), torch.ones_like(y).unsqueeze(-1), atoms)


def categorical_projection(
    reward: Tensor,
    terminated: Tensor,
    gamma: float | Tensor,
    next_probs: Tensor,
    atoms: Tensor,
    shift: Tensor | float = 0.0,
) -> Tensor:
    """Bellemare et al. 2017, Algorithm 1: the distribution with probabilities ``next_probs``
    (*lead, K) on atoms T z_j = r + γ(1 − d)(z_j − shift), clipped to [v_min, v_max], projected
    on the fixed atoms: atom j's mass goes to its neighbours l = ⌊b_j⌋, u = ⌈b_j⌉ of
    b_j = (T z_j − v_min)/Δz as (u − b_j) to l and (b_j − l) to u (all of it to l when b_j is an
    integer). ``reward``, ``terminated``, ``shift`` and a tensor ``gamma`` (n-step's γ^m) (*lead);
    result (*lead, K)."""
    shift_t = shift.unsqueeze(-1) if isinstance(shift, Tensor) else shift
    gamma_t = gamma.unsqueeze(-1) if isinstance(gamma, Tensor) else gamma
    tz = reward.unsqueeze(-1) + gamma_t * (1.0 - terminated.unsqueeze(-1)) * (atoms - shift_t)
    return _spread(tz, next_probs, atoms)


def target_histogram(
    kind: str,
    reward: Tensor,
    terminated: Tensor,
    gamma: float | Tensor,
    next_logits: Tensor,
    atoms: Tensor,
    shift: Tensor | float = 0.0,
    sigma: float = 0.0,
) -> Tensor:
    """The target histogram p (*lead, B, K) from the target ensemble's logits at (s', a'),
    ``next_logits`` (*lead, n, B, K): the member j* = argmin_j Q_targ,j(s', a') per row, then

    - ``c51``: Z_targ,j*(s', a') shifted, discounted and projected (``categorical_projection``);
    - ``hl_gauss`` / ``two_hot``: the scalar y = r + γ(1 − d)(Q_targ,j*(s', a') − shift) — exactly
      SAC's soft target (shift = α log π(ã'|s')) or TD3's (shift = 0) on the expected values —
      as a histogram (``hl_gauss_target`` with ``sigma``, ``two_hot_target``)."""
    next_q = expected_value(next_logits, atoms)  # (*lead, n, B)
    if kind == "c51":
        member = next_q.argmin(dim=-2, keepdim=True)  # (*lead, 1, B)
        index = member.unsqueeze(-1).expand(*member.shape, atoms.shape[0])
        probs = next_logits.softmax(dim=-1).gather(-3, index).squeeze(-3)  # (*lead, B, K)
        return categorical_projection(reward, terminated, gamma, probs, atoms, shift)
    y = bootstrap(reward, terminated, gamma, next_q.min(dim=-2).values - shift)
    if kind == "hl_gauss":
        return hl_gauss_target(y, atoms, sigma)
    if kind == "two_hot":
        return two_hot_target(y, atoms)
    raise ValueError(f"unknown distributional target {kind!r}: one of {', '.join(KINDS)}")
