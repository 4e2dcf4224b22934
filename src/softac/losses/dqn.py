"""DQN's equations (Mnih et al. 2015) and Double DQN's target (van Hasselt et al. 2016).

Shapes: N learners are stacked on leading dimensions ``*lead``. Per-action values Q(s, ·) have
shape (*lead, B, |A|) (batch dim −2, actions dim −1); per-transition tensors (rewards, actions,
targets) have shape (*lead, B). Losses average over the batch only and return one value per
learner, shape ``*lead``. Targets must be computed without gradient (``torch.no_grad()``): the
target network is a fixed regression target, not something to differentiate through.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from softac.losses.common import bootstrap

__all__ = [
    "chosen_q",
    "double_target",
    "epsilon_greedy",
    "huber_loss",
    "linear_epsilon",
    "mse_loss",
    "target",
    "td_loss",
]


def chosen_q(q_values: Tensor, actions: Tensor) -> Tensor:
    """Q_φ(s, a): the value of the action taken, gathered from Q_φ(s, ·) of shape (*lead, B, |A|)."""
    return q_values.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def target(reward: Tensor, terminated: Tensor, gamma: float | Tensor, next_q_target: Tensor) -> Tensor:
    """y = r + γ (1 − d) max_a' Q_φtarg(s', a')  (Mnih et al. 2015, Algorithm 1).

    ``d`` is termination only: a time-limit truncation bootstraps from the real final s'.
    """
    return bootstrap(reward, terminated, gamma, next_q_target.max(dim=-1).values)


def double_target(
    reward: Tensor, terminated: Tensor, gamma: float | Tensor, next_q_online: Tensor, next_q_target: Tensor
) -> Tensor:
    """y = r + γ (1 − d) Q_φtarg(s', argmax_a' Q_φ(s', a'))  (van Hasselt et al. 2016, eq. 4).

    The online network selects the action and the target network evaluates it: decoupling the
    two removes the max operator's upward bias of max_a' Q_φtarg(s', a') (their Section 3).
    """
    greedy = next_q_online.argmax(dim=-1)
    return bootstrap(reward, terminated, gamma, chosen_q(next_q_target, greedy))


def huber_loss(q: Tensor, target: Tensor, delta: float = 1.0, weight: Tensor | None = None) -> Tensor:
    """E_B[H_δ(Q(s, a) − y)], H_δ(x) = x²/2 if |x| ≤ δ else δ(|x| − δ/2), per learner.

    With δ = 1 this is smooth L1, SB3's DQN loss; Mnih et al. (2015, Methods) clip the error
    term's gradient to [−1, 1], which is exactly the gradient of H_1.
    """
    return _weighted_mean(F.huber_loss(q, target, reduction="none", delta=delta), weight)


def mse_loss(q: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """E_B[(Q(s, a) − y)²], per learner (CleanRL's DQN loss)."""
    return _weighted_mean((q - target).square(), weight)


def _weighted_mean(err: Tensor, weight: Tensor | None) -> Tensor:
    """E_B[err], or E_B[w · err] with prioritized replay's importance weights w (*lead, B)."""
    return (err if weight is None else err * weight).mean(dim=-1)


def td_loss(q: Tensor, target: Tensor, kind: Literal["huber", "mse"] = "huber", weight: Tensor | None = None) -> Tensor:
    """The TD loss selected by name (a config's ``loss`` field): ``huber`` (δ = 1) or ``mse``,
    each weighted per row by ``weight`` when given (prioritized replay)."""
    if kind == "huber":
        return huber_loss(q, target, weight=weight)
    if kind == "mse":
        return mse_loss(q, target, weight)
    raise ValueError(f"unknown TD loss {kind!r}: expected 'huber' or 'mse'")


def linear_epsilon(step: int, total_steps: int, fraction: float, start: float = 1.0, end: float = 0.05) -> float:
    """ε(t) = start + (end − start) · min(1, t / (fraction · T)).

    SB3's ``get_linear_fn`` and CleanRL's ``linear_schedule``: ε falls linearly from ``start`` to
    ``end`` over the first ``fraction`` of the ``total_steps`` T environment steps, then stays at
    ``end``. A fraction of 0 means ε = end from the first step. A schedule, not a tensor op:
    it returns a Python float, computed from the step count alone (so resuming reproduces it).
    """
    duration = fraction * total_steps
    progress = 1.0 if duration <= 0 else min(1.0, step / duration)
    return start + (end - start) * progress


def epsilon_greedy(q_values: Tensor, epsilon: float, explore_u: Tensor, action_u: Tensor) -> Tensor:
    """a = uniform random action with probability ε, else argmax_a Q(s, a).

    ``explore_u`` and ``action_u`` are U[0, 1) draws of shape (*lead, B) from the learner's own
    stream (see ``distributions.draw``); the random action is ⌊u · |A|⌋.
    """
    n_actions = q_values.shape[-1]
    random_action = (action_u * n_actions).long().clamp(max=n_actions - 1)
    return torch.where(explore_u < epsilon, random_action, q_values.argmax(dim=-1))
