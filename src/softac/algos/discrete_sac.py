"""Soft Actor-Critic for discrete actions (Christodoulou 2019): config, categorical policy, twin
critics over Q(s, ·), and the update, written once with autograd. The math is in
``losses/discrete_sac.py``: every expectation over actions is an exact sum, no sampled action.

Defaults: the settings it shares with continuous SAC are softac's SAC defaults (SAC v2, Haarnoja
et al. 2018b; SB3 and CleanRL agree): 256×256 networks, twin critics, lr 3e-4, batch 256, τ =
0.005 after every step, automatic α from 1. The paper's own settings are for Atari frames
(convolutional networks, a hard target copy every 8,000 steps, an update every 4 steps; CleanRL's
``sac_atari.py`` keeps them) and are not a good start for the vector observations softac takes.
The target entropy is 0.7 · log|A| (``losses.discrete_sac.target_entropy`` says why, not 0.98).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from softac import memory
from softac.algos.offpolicy import OffPolicyAgent
from softac.algos.schedule import target_update_due
from softac.algos.temperature import actor_optimizer_with_temperature
from softac.config import ActorCriticConfig, _f
from softac.data.replay import Batch
from softac.distributions import categorical_entropy
from softac.losses import common
from softac.losses import discrete_sac as L
from softac.losses.dqn import chosen_q
from softac.nn import CategoricalActor, DiscreteCriticEnsemble
from softac.optim import adam, frozen_copy, polyak_update
from softac.registry import AlgoInfo, register


@dataclass(frozen=True)
class DiscreteSACConfig(ActorCriticConfig):
    """Discrete SAC (Christodoulou 2019). The temperature fields are SACConfig's."""

    autotune_alpha: bool = _f(True, "Learn α towards the target entropy. --no-autotune-alpha keeps α at --alpha.")
    alpha: float = _f(0.2, "Fixed entropy coefficient α, used when autotune_alpha is off.", "positive")
    alpha_init: float = _f(1.0, "Initial α when autotune_alpha is on (as softac's SAC, SB3 and CleanRL).", "positive")
    alpha_lr: float = _f(3e-4, "Adam learning rate of log α.", "positive")
    target_entropy_scale: float = _f(
        L.DEFAULT_TARGET_ENTROPY_SCALE,
        "Target entropy H̄ = scale · log|A|, a fraction of the uniform policy's entropy (paper: 0.98, CleanRL's "
        "Atari: 0.89; 0.7 by default: the higher values let α run away on CartPole, see losses.discrete_sac).",
        "fraction",
    )
    target_update_interval: int = _f(
        1, "Environment steps between Polyak updates of the target critics with τ (1: after every step, as "
        "softac's SAC; CleanRL's Atari: 8000 with τ = 1, a hard copy).", "positive",
    )  # fmt: skip


class DiscreteSAC(OffPolicyAgent):
    algo = "sac-discrete"
    config_cls = DiscreteSACConfig
    config: DiscreteSACConfig

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        """A categorical actor and ``n_critics`` critics, each obs → one output per action."""
        cfg = self.config if cfg is None else cfg
        spec, n = self.spec, self.learners
        nets = memory.trunk(n * (1 + cfg.n_critics), spec.obs_dim, cfg.hidden_sizes, spec.n_actions, cfg.batch_size)
        return {**super().memory_estimate(cfg), "networks": nets}

    def _build(self) -> None:
        cfg, spec, n = self.config, self.spec, self.learners
        self.actor = CategoricalActor(n, spec.obs_dim, spec.n_actions, cfg.hidden_sizes)
        self.critic = DiscreteCriticEnsemble(n, cfg.n_critics, spec.obs_dim, spec.n_actions, cfg.hidden_sizes,
                                             cfg.critic_layer_norm)  # fmt: skip
        self.actor.trunk.reset_parameters(self.rng.host)
        self.critic.net.reset_parameters(self.rng.host, members=cfg.n_critics)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target = frozen_copy(self.critic)
        self.policy = self.actor
        self.target_entropy = L.target_entropy(spec.n_actions, cfg.target_entropy_scale)
        actor_params = self.actor.trunk.params()
        self.log_alpha, self.actor_opt = actor_optimizer_with_temperature(cfg, actor_params, n, self.device)
        self.critic_opt = adam(self.critic.net.params(), cfg.critic_lr, self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {**super().extra_tensors(), "log_alpha": self.log_alpha}

    @property
    def alpha(self) -> float:
        """α of the first learner (``log_alpha.exp()`` holds every learner's)."""
        return float(self.log_alpha[0].detach().exp())

    def _exploration_noise(self, rows: int) -> Tensor:
        """Standard Gumbel draws g = −log(−log u), one per action, for a ~ π(·|s) (``CategoricalActor.head``)."""
        u = self.rng.uniform_(torch.empty((self.learners, rows, self.spec.n_actions), device=self.device))
        return u.log_().neg_().log_().neg_()

    def update_phase(self, index: int) -> Hashable:
        """Whether the target critics are updated after update ``index`` (``softac.algos.schedule``)."""
        cfg = self.config
        return target_update_due(index, cfg.target_update_interval, cfg.learning_starts, cfg.utd_ratio, cfg.n_envs)

    def _draw(self, phase: Hashable) -> Batch:
        return self.buffer.sample(self.config.batch_size, self.rng)  # no noise: expectations are exact sums

    def _compute(self, draws: Batch, phase: Hashable) -> dict[str, Tensor]:
        batch, cfg = draws, self.config
        alpha = self.log_alpha.detach().exp()
        # y = r + γ(1 − d) Σ_a' π(a'|s') [min_j Q_targ,j(s', a') − α log π(a'|s')], π the current policy.
        gamma = batch.gamma(cfg.gamma)  # γ, or the per-row γ^m of n-step returns
        with torch.no_grad():
            next_q = self.critic_target(batch.next_obs)
            y = L.soft_target(batch.reward, batch.terminated, gamma, next_q, self.actor(batch.next_obs), alpha)
        metrics = self.gradient_step(self.critic_opt, self._critic_loss, batch, y)
        with torch.no_grad():  # the critics as a constant of the actor loss, after their step (as SAC)
            q_pi = self.critic(batch.obs)
        metrics |= self.gradient_step(self.actor_opt, self._actor_loss, batch, q_pi, alpha)
        if phase:
            polyak_update(self.critic_target, self.critic, cfg.tau)
        return metrics

    def _critic_loss(self, params: list[Tensor], batch: Batch, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Σ_j E[(Q_φj(s, a) − y)²] on the actions taken, as a function of the critics' parameters φ."""
        q_all = self.critic(batch.obs, params=params)  # (L, n, B, |A|)
        lead, members, rows, _ = q_all.shape
        q = chosen_q(q_all, batch.action[..., 0].unsqueeze(1).expand(lead, members, rows))
        loss = L.critic_loss(q, y, batch.weight)
        metrics = {"loss/critic": loss.detach(), "q/mean": q.detach().mean(dim=(-2, -1))}
        if batch.weight is not None:  # prioritized replay's new priorities |δ| (OffPolicyAgent.update)
            metrics["per/td"] = common.td_priority(q.detach(), y)
        return loss, metrics

    def _actor_loss(
        self, params: list[Tensor], batch: Batch, q_pi: Tensor, alpha: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """E_s Σ_a π_θ(a|s)[α log π_θ(a|s) − min_j Q_j(s, a)] as a function of θ, plus with automatic α
        the temperature loss E_s[−log α (H̄ − H(π(·|s)))] as a function of log α (H detached)."""
        n = len(self.actor.trunk.params())
        logits = self.actor(batch.obs, params=params[:n])
        loss = L.actor_loss(logits, q_pi, alpha)
        entropy = categorical_entropy(logits).detach()
        metrics = {"loss/actor": loss.detach(), "policy/entropy": entropy.mean(dim=-1), "alpha": alpha}
        if self.config.autotune_alpha:
            alpha_loss = L.temperature_loss(params[n], entropy, self.target_entropy)
            metrics["loss/alpha"] = alpha_loss.detach()
            loss = loss + alpha_loss
        return loss, metrics


register(AlgoInfo("sac-discrete", DiscreteSACConfig, DiscreteSAC, ("Discrete",), "off-policy",
                  "Soft Actor-Critic for discrete actions (Christodoulou 2019)"))  # fmt: skip
