"""SAC's equations (the specification's "Learning the Q functions" and "Learning the policy").

Shapes as in ``losses.common``: leading learner dimensions, the batch last, critic members at -2;
α and log α have the leading shape alone (one temperature per learner).
"""

from __future__ import annotations

from torch import Tensor

from softac.losses.common import bootstrap, critic_loss

__all__ = ["actor_loss", "critic_loss", "soft_target", "temperature_loss"]


def soft_target(
    reward: Tensor,
    terminated: Tensor,
    gamma: float | Tensor,
    next_q_target: Tensor,
    next_log_prob: Tensor,
    alpha: Tensor | float,
) -> Tensor:
    """y(r, s', d) = r + γ (1 − d) (min_j Q_φtarg,j(s', ã') − α log π_θ(ã'|s')),  ã' ~ π_θ(·|s').

    ``next_q_target``: (*lead, n_critics, B) target-critic values at (s', ã') with ã' drawn from
    the *current* policy (SAC has no target policy); ``next_log_prob``: (*lead, B) log π_θ(ã'|s');
    ``alpha``: a number or a tensor of shape ``*lead``.
    """
    soft_value = next_q_target.min(dim=-2).values - _per_row(alpha) * next_log_prob
    return bootstrap(reward, terminated, gamma, soft_value)


def actor_loss(q_pi: Tensor, log_prob: Tensor, alpha: Tensor | float) -> Tensor:
    """L(θ) = E_s[α log π_θ(ã_θ(s)|s) − min_j Q_φj(s, ã_θ(s))], ã_θ(s) = tanh(μ_θ(s) + σ_θ(s) ⊙ ξ).

    The negative of max_θ E[Q(s, ã_θ) − α log π(ã_θ|s)]; ``q_pi`` (*lead, n_critics, B) must be
    computed with critic parameters that carry no gradient (``CriticEnsemble(detach_params=True)``).
    """
    return (_per_row(alpha) * log_prob - q_pi.min(dim=-2).values).mean(dim=-1)


def temperature_loss(log_alpha: Tensor, log_prob: Tensor, target_entropy: float) -> Tensor:
    """J(α) = E_ã~π[−α (log π(ã|s) + H̄)], written in log α: J = E[−log α · (log π(ã|s) + H̄)].

    We optimise log α rather than α (as SB3 and CleanRL do): it keeps α > 0 without a constraint,
    and its gradient −(log π + H̄) does not shrink with α, so α can fall by orders of magnitude
    at a steady rate instead of slowing down as it approaches 0. The fixed point is the same:
    α stops moving when the policy's entropy E[−log π] equals H̄. ``log_prob`` must be detached.
    """
    return -(_per_row(log_alpha) * (log_prob + target_entropy)).mean(dim=-1)


def _per_row(x: Tensor | float) -> Tensor | float:
    """A per-learner scalar (shape ``*lead``) broadcast over the batch dimension."""
    return x.unsqueeze(-1) if isinstance(x, Tensor) and x.dim() > 0 else x
