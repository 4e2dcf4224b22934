"""The on-policy actor-critic: a policy network and a value network per learner (as SB3's and
CleanRL's PPO: two separate MLPs, no shared trunk), and for Box actions a state-INDEPENDENT
log-std vector per learner — "in PPO, we represent the log std devs with state-independent
parameter vectors" (the specification), unlike SAC's network output.

Shapes: observations (L, B, obs_dim) → policy output (L, B, out) — the Gaussian mean for Box
actions, the logits for Discrete ones — and values (L, B). ``log_std`` is (L, act_dim).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from softac.nn.batched import BatchedMLP

# Orthogonal initialisation gains of SB3's ActorCriticPolicy and CleanRL's ppo*.py: √2 for the
# hidden layers, 0.01 for the policy head (an initial policy close to uniform / to its mean of
# zero), 1 for the value head (Engstrom et al. 2020, "Implementation matters", found it matters).
HIDDEN_GAIN, POLICY_GAIN, VALUE_GAIN = math.sqrt(2.0), 0.01, 1.0


class ActorCritic(nn.Module):
    def __init__(
        self,
        learners: int,
        obs_dim: int,
        policy_out: int,
        hidden: Sequence[int],
        activation: str,
        log_std_dim: int = 0,
        log_std_init: float = 0.0,
    ) -> None:
        """``policy_out``: act_dim (Box: the mean) or the number of actions (Discrete: logits);
        ``log_std_dim``: act_dim for Box actions, 0 for none."""
        super().__init__()
        self.policy = BatchedMLP(learners, obs_dim, hidden, policy_out, activation=activation)
        self.value = BatchedMLP(learners, obs_dim, hidden, 1, activation=activation)
        self.log_std: nn.Parameter | None = None
        if log_std_dim:
            self.log_std = nn.Parameter(torch.full((learners, log_std_dim), float(log_std_init)))
        self._n_policy = len(self.policy.params())

    def reset_parameters(self, generators: Sequence[torch.Generator], orthogonal: bool) -> None:
        """Learner k's networks from generator k (policy first, then value); ``orthogonal``: the
        gains above, else ``nn.Linear``'s default (SB3's ``ortho_init=False``)."""
        hidden = len(self.policy.weights) - 1
        self.policy.reset_parameters(generators, gains=[HIDDEN_GAIN] * hidden + [POLICY_GAIN] if orthogonal else None)
        self.value.reset_parameters(generators, gains=[HIDDEN_GAIN] * hidden + [VALUE_GAIN] if orthogonal else None)

    def params(self) -> list[Tensor]:
        """[policy network…, log σ (Box), value network…]: one optimizer over all of them, as SB3
        and CleanRL (one loss, one gradient-norm clip over every parameter)."""
        head = [self.log_std] if self.log_std is not None else []
        return [*self.policy.params(), *head, *self.value.params()]

    def split(self, params: list[Tensor]) -> tuple[list[Tensor], Tensor | None, list[Tensor]]:
        """``params`` (in ``params()`` order) → (policy network's, log σ or None, value network's)."""
        n = self._n_policy
        if self.log_std is None:
            return params[:n], None, params[n:]
        return params[:n], params[n], params[n + 1 :]

    def forward(self, obs: Tensor, params: list[Tensor] | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """(policy output (L, B, out), log σ (L, 1, act_dim) or None, V(s) (L, B))."""
        pi, log_std, vf = self.split(params if params is not None else self.params())
        out = self.policy(obs, params=pi)
        value = self.value(obs, params=vf).squeeze(-1)
        return out, None if log_std is None else log_std.unsqueeze(-2), value
