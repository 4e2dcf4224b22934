"""The networks of the discrete-action algorithms (DQN, discrete SAC), with a leading learner axis.

A Discrete action is stored as its index in a float column (``softac.envs.DiscreteActions``), so
acting returns indices of shape (L, B, 1). Shapes: observations (L, B, obs_dim); per-action values
or logits (L, B, |A|); an ensemble of n critics (L, n, B, |A|).

The acting heads are written once against an array namespace ``xp`` (torch or numpy), as in
``softac.nn.policies``: both are an argmax over the last axis of the trunk's output plus the
behaviour noise, which ``Tensor.argmax(-1)`` and ``ndarray.argmax(-1)`` spell alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from softac.nn.batched import BatchedMLP


def _index(best: Any) -> Any:
    """Argmax indices (L, B) → the stored action layout (L, B, 1), as floats."""
    return best[..., None] * 1.0


class QNetwork(nn.Module):
    """DQN's Q_φ(s, ·): one output per action (Mnih et al. 2015, "a separate output unit for each
    possible action"), so max_a and argmax_a cost one forward pass."""

    def __init__(self, learners: int, obs_dim: int, n_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.trunk = BatchedMLP(learners, obs_dim, hidden, n_actions)

    def forward(self, obs: Tensor, params: list[Tensor] | None = None) -> Tensor:
        return self.trunk(obs, params=params)

    def head(self, xp: Any, out: Any, noise: Any | None) -> Any:
        """argmax_a Q(s, a) (``noise=None``), or ε-greedy with ``noise`` (L, B, 2) holding, per row,
        whether to explore (1.0 or 0.0, drawn as u < ε) and the uniformly drawn random action
        (DQN._exploration_noise makes both, with ``losses.dqn.epsilon_greedy``'s rule)."""
        greedy = _index(out.argmax(-1))
        if noise is None:
            return greedy
        return xp.where(noise[..., :1] > 0.0, noise[..., 1:], greedy)


class CategoricalActor(nn.Module):
    """Discrete SAC's policy π_θ(·|s) = softmax(logits_θ(s)) (Christodoulou 2019)."""

    def __init__(self, learners: int, obs_dim: int, n_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.trunk = BatchedMLP(learners, obs_dim, hidden, n_actions)

    def forward(self, obs: Tensor, params: list[Tensor] | None = None) -> Tensor:
        """The logits (L, B, |A|)."""
        return self.trunk(obs, params=params)

    def head(self, xp: Any, out: Any, noise: Any | None) -> Any:
        """argmax_a π(a|s) (``noise=None``), or a ~ π(·|s) by the Gumbel-max trick with ``noise``
        (L, B, |A|) of standard Gumbel draws g = −log(−log u): argmax_a (logits_a + g_a) is
        distributed as softmax(logits) (Gumbel 1954; Maddison et al. 2014). Why not inverting the
        CDF (``distributions.categorical_sample``, one uniform per row): the Gumbel form is one
        argmax that torch and numpy spell alike, so the numpy acting path is this same function."""
        return _index(out.argmax(-1) if noise is None else (out + noise).argmax(-1))


class DiscreteCriticEnsemble(nn.Module):
    """n independent Q_φj(s, ·) per learner (discrete SAC's twin critics), one batched MLP of L·n
    groups: observations (L, B, obs_dim) → Q values (L, n, B, |A|)."""

    def __init__(
        self, learners: int, members: int, obs_dim: int, n_actions: int, hidden: Sequence[int],
        layer_norm: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.learners, self.members = learners, members
        self.net = BatchedMLP(learners * members, obs_dim, hidden, n_actions, layer_norm=layer_norm)

    def forward(self, obs: Tensor, detach_params: bool = False, params: list[Tensor] | None = None) -> Tensor:
        lead, rows, width = obs.shape
        x = obs.unsqueeze(1).expand(lead, self.members, rows, width).reshape(lead * self.members, rows, width)
        q = self.net(x, detach_params=detach_params, params=params)
        return q.view(lead, self.members, rows, q.shape[-1])
