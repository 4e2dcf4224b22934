"""CrossQ's equations (Bhatt et al., "CrossQ: Batch Normalization in Deep Reinforcement Learning
for Greater Sample Efficiency and Simplicity", ICLR 2024).

CrossQ is SAC without target networks: the critics Q_φj carry Batch Renormalization, and the
current pair (s, a) and the next pair (s', ã') go through them in ONE forward pass, so the batch
statistics are those of the mixture of both (Bhatt et al. §3: with separate passes the next
state-actions look out of distribution to the normalisation, and training fails). The target
is SAC's soft target from that same pass, with the gradient stopped:

    [Q_φ(s, a), Q_φ(s', ã')] = Q_φ([s, s'], [a, ã'])  (one pass, batch statistics over 2B rows),
    y = r + γ (1 − d) (min_j sg(Q_φj(s', ã')) − α log π_θ(ã'|s')),  ã' ~ π_θ(·|s'),
    L(φ) = Σ_j E[(Q_φj(s, a) − y)²].

The actor and temperature losses are SAC's (``losses.sac``), with the critics in evaluation mode
(running statistics) and the actor in training mode (its own batch statistics).
"""

from __future__ import annotations

import torch
from torch import Tensor

from softac.losses.sac import soft_target

__all__ = ["joint_input", "split_joint_q"]


def joint_input(obs_act: Tensor, next_obs_act: Tensor) -> Tensor:
    """[(s, a); (s', ã')] stacked on the batch axis: (*lead, B, d) twice → (*lead, 2B, d)."""
    return torch.cat([obs_act, next_obs_act], dim=-2)


def split_joint_q(
    q: Tensor, reward: Tensor, discount_mask: Tensor, gamma: float, next_log_prob: Tensor, alpha: Tensor | float
) -> tuple[Tensor, Tensor]:
    """From the joint pass's Q values (*lead, n, 2B): (Q_φ(s, a) (*lead, n, B), the target y (*lead, B)).

    y = r + γ (1 − d) (min_j sg(Q_φj(s', ã')) − α log π(ã'|s')), ``discount_mask`` = d (terminated)."""
    batch = q.shape[-1] // 2
    q_now, q_next = q[..., :batch], q[..., batch:]
    y = soft_target(reward, discount_mask, gamma, q_next.detach(), next_log_prob, alpha)
    return q_now, y
