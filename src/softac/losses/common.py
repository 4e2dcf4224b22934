"""Pieces shared by SAC, TD3 and DDPG.

Shapes (DESIGN.md principle 3): any leading dimensions ``*lead`` (the learner axis, or none), the
batch as the last dimension, and for an ensemble of critics the member axis just before it:
Q values ``(*lead, n, B)``, targets ``(*lead, B)``. Losses average over the batch only and return
one value per learner, ``*lead``; the agent sums them before ``backward`` (learners' parameters
are disjoint, so each receives exactly the gradient of its own loss).
"""

from __future__ import annotations

from torch import Tensor


def bootstrap(reward: Tensor, terminated: Tensor, gamma: float | Tensor, next_value: Tensor) -> Tensor:
    """y = r + γ (1 − d) V(s').

    With n-step returns (``softac.data.nstep``) ``r`` is R = Σ_{i<m} γ^i r_{t+i}, s' is s_{t+m} and
    ``gamma`` the per-row γ^m (a tensor shaped like ``reward``); a plain float γ otherwise.
    ``d`` is *termination* only: a time-limit truncation keeps d = 0 and bootstraps from the real
    final observation s' (the specification's reference code treats time-outs as terminal).
    """
    return reward + gamma * (1.0 - terminated) * next_value


def critic_loss(q: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Σ_i L(φ_i, D) with L(φ_i, D) = E[(Q_φi(s, a) − y(r, s', d))²].

    ``q`` has shape (*lead, n_critics, B) and ``target`` (*lead, B). Summing the per-critic MSEs
    gives each critic exactly the gradient of its own loss (their parameters are disjoint), so one
    backward pass and one optimizer step serve the whole ensemble. Returns shape ``*lead``.
    With prioritized replay's importance weights ``weight`` (*lead, B): E[w · (Q_φi − y)²].
    """
    err = (q - target.unsqueeze(-2)).square()
    if weight is not None:
        err = err * weight.unsqueeze(-2)
    return err.mean(dim=-1).sum(dim=-1)


def td_priority(q: Tensor, target: Tensor) -> Tensor:
    """|δ| = max_i |Q_φi(s, a) − y| over the ensemble, (*lead, B): prioritized replay's new
    priorities. The max (as Fujimoto et al. 2020's LAP code for TD3): a row that surprises any
    critic is replayed, and with one critic (DDPG) it is that critic's |δ|."""
    return (q - target.unsqueeze(-2)).abs().amax(dim=-2)
