"""Preallocated rollout storage for on-policy algorithms, one region per learner.

Every field is a tensor of shape (L, T, n, ...): learners, time (the ``n_steps`` of a rollout),
environments — the layout ``softac.losses.ppo.gae`` recurses over (time at −2, environments at
−1). ``finish`` computes the advantages and packs each learner's T·n samples into rows, from which
``minibatch`` gathers each learner's minibatches.

A rollout lives within one training step (collected, then learned from, then overwritten), so
nothing here is checkpointed: a checkpoint at a rollout boundary holds everything the next
rollout needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from softac.losses.ppo import gae, lambda_returns


@dataclass(frozen=True)
class Minibatch:
    """Views into one gathered (L, B, row) tensor of rollout samples."""

    obs: Tensor  # (L, B, obs_dim)
    action: Tensor  # (L, B, act_dim)
    log_prob: Tensor  # (L, B) log π_θold(a|s)
    value: Tensor  # (L, B) V_old(s)
    advantage: Tensor  # (L, B) Â
    returns: Tensor  # (L, B) R = Â + V_old


class Rollout:
    def __init__(
        self, learners: int, n_steps: int, n_envs: int, obs_dim: int, act_dim: int, device: torch.device
    ) -> None:
        self.learners, self.n_steps, self.n_envs = learners, n_steps, n_envs
        lead = (learners, n_steps, n_envs)
        self.obs = torch.zeros((*lead, obs_dim), device=device)  # as the networks took them (normalised)
        self.action = torch.zeros((*lead, act_dim), device=device)  # Box: the UNclipped sample; Discrete: index
        self.log_prob = torch.zeros(lead, device=device)  # log π_θold(a_t|s_t)
        self.value = torch.zeros(lead, device=device)  # V(s_t) when collected
        self.reward = torch.zeros(lead, device=device)  # as learned from (scaled with normalize_reward)
        self.terminated = torch.zeros(lead, device=device)  # d_t: s_{t+1} is terminal
        self.episode_end = torch.zeros(lead, device=device)  # e_t: terminated or truncated (or dropped)
        self.next_value = torch.zeros(lead, device=device)  # V(s_{t+1}) of the TRUE next observation
        self.advantage = torch.zeros(lead, device=device)
        self.returns = torch.zeros(lead, device=device)
        # The samples the update gathers minibatches from, one row each (as the replay buffer's
        # rows: one index_select per minibatch instead of six): [s | a | log π | V | Â | R].
        self.row = obs_dim + act_dim + 4
        self.samples = torch.zeros((learners, n_steps * n_envs, self.row), device=device)
        self._offsets = torch.arange(learners, device=device).mul_(n_steps * n_envs).unsqueeze(1)
        self._split = [obs_dim, act_dim, 1, 1, 1, 1]

    def store(self, t: int, **values: Tensor) -> None:
        """Write step t of every learner's rollout: ``store(t, obs=..., action=...)``, each value
        of shape (L, n, ...)."""
        for name, value in values.items():
            getattr(self, name)[:, t].copy_(value)

    def finish(self, gamma: float, lam: float) -> None:
        """Advantages Â by GAE(γ, λ) and value targets R = Â + V (``softac.losses.ppo``)."""
        with torch.no_grad():
            self.advantage.copy_(
                gae(self.reward, self.value, self.next_value, self.terminated, self.episode_end, gamma, lam)
            )
            self.returns.copy_(lambda_returns(self.advantage, self.value))
            columns = [self.obs, self.action, *(t.unsqueeze(-1) for t in
                       (self.log_prob, self.value, self.advantage, self.returns))]  # fmt: skip
            torch.cat([c.flatten(1, 2) for c in columns], dim=-1, out=self.samples)

    def minibatch(self, index: Tensor) -> Minibatch:
        """Samples ``index`` (L, B) of each learner's rollout (learner k's row j: its sample j)."""
        lead, size = index.shape
        rows = self.samples.view(-1, self.row).index_select(0, (index + self._offsets).view(-1))
        obs, action, log_prob, value, advantage, returns = rows.view(lead, size, self.row).split(self._split, -1)
        return Minibatch(obs, action, log_prob[..., 0], value[..., 0], advantage[..., 0], returns[..., 0])

    @property
    def size(self) -> int:
        """Samples per learner: T · n."""
        return self.n_steps * self.n_envs
