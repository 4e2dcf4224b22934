"""TD3's and DDPG's equations (the specification's "Q learning in TD3" and "Policy learning").
Shapes as in ``losses.common``.

DDPG is the same functions with TD3's additions switched off: one critic (the min over one
member is that member), zero smoothing noise, and a policy delay of one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from softac.losses.common import bootstrap, critic_loss

__all__ = ["actor_loss", "critic_loss", "smoothed_target_action", "target"]


def smoothed_target_action(
    target_action: Tensor, noise: Tensor, noise_clip: float, low: float = -1.0, high: float = 1.0
) -> Tensor:
    """a'(s') = clip(μ_θtarg(s') + clip(ε, −c, c), a_Low, a_High),  ε ~ N(0, σ²).

    Target policy smoothing. Actions are in the library's normalised space, so a_Low = −1 and
    a_High = 1. With σ = 0 (DDPG) this is μ_θtarg(s') itself.
    """
    return (target_action + noise.clamp(-noise_clip, noise_clip)).clamp(low, high)


def target(reward: Tensor, terminated: Tensor, gamma: float | Tensor, next_q_target: Tensor) -> Tensor:
    """y(r, s', d) = r + γ (1 − d) min_j Q_φtarg,j(s', a'(s')).

    Clipped double-Q for TD3 (``next_q_target`` of shape (*lead, 2, B)); DDPG's
    y = r + γ (1 − d) Q_φtarg(s', μ_θtarg(s')) is the one-critic case (shape (*lead, 1, B)).
    """
    return bootstrap(reward, terminated, gamma, next_q_target.min(dim=-2).values)


def actor_loss(q1_pi: Tensor) -> Tensor:
    """L(θ) = −E_s[Q_φ1(s, μ_θ(s))], the negative of max_θ Σ_s Q_φ1(s, μ_θ(s)).

    ``q1_pi``: (*lead, B) values of the *first* critic, computed with parameters that carry no
    gradient. Returns one loss per learner, shape ``*lead``.
    """
    return -q1_pi.mean(dim=-1)


def exploration_action(action: Tensor, noise: Tensor) -> Tensor:
    """Behaviour action a = clip(μ_θ(s) + ε, −1, 1), ε ~ N(0, σ_explore²)."""
    return torch.clamp(action + noise, -1.0, 1.0)
