"""Soft Actor-Critic (Haarnoja et al. 2018a, 2018b): config, networks, optimizers and the update,
written once with autograd. The math is in ``losses/sac.py``."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from softac.algos.actor_critic import ActorCriticAgent
from softac.algos.temperature import SoftActor, SoftActorConfig, actor_optimizer_with_temperature
from softac.config import ActorCriticConfig
from softac.config_goals import GoalReplayConfig
from softac.config_pixels import PixelConfig
from softac.data.replay import Batch
from softac.losses import sac as L
from softac.nn import GaussianActor
from softac.optim import polyak_update
from softac.registry import AlgoInfo, register


@dataclass(frozen=True)
class SACConfig(ActorCriticConfig, SoftActorConfig, GoalReplayConfig, PixelConfig):
    """Soft Actor-Critic (Haarnoja et al. 2018a, 2018b) settings: critics with targets and a soft actor."""


class SAC(SoftActor, ActorCriticAgent):
    algo = "sac"
    config_cls = SACConfig
    config: SACConfig

    def _build(self) -> None:
        cfg, spec, n = self.config, self.spec, self.learners
        width = self._build_encoder()
        self.actor = GaussianActor(n, width, spec.act_dim, cfg.hidden_sizes, cfg.log_std_min, cfg.log_std_max,
                                   cfg.simba("actor"))  # fmt: skip
        self.actor.trunk.reset_parameters(self.rng.host)
        self.actor.to(self.device)
        self._build_critics(width)
        self.policy = self.acting_policy(self.actor)
        self.target_entropy = float(cfg.target_entropy if cfg.target_entropy is not None else -spec.act_dim)
        actor_params = self.actor.trunk.params()
        self.log_alpha, self.actor_opt = actor_optimizer_with_temperature(cfg, actor_params, n, self.device)
        self._noise = torch.empty((n, 2, cfg.batch_size, spec.act_dim), device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        encoder = {} if self.encoder is None else {"encoder": self.encoder}
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target, **encoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {**super().extra_tensors(), "log_alpha": self.log_alpha}

    def _compute(self, draws: tuple[Batch, Tensor], phase: Hashable) -> dict[str, Tensor]:
        batch, noise = draws
        alpha = self.log_alpha.detach().exp()
        # y = r + γ(1 − d)(min_j Q_targ,j(s', ã') − α log π(ã'|s')), ã' ~ π_θ(·|s') (the current policy).
        gamma = batch.gamma(self.config.gamma)  # γ, or the per-row γ^m of n-step returns
        with torch.no_grad():
            next_obs = self.features(batch.next_obs)  # s', or the encoder's f(s') (no target encoder: DrQ-v2)
            next_action, next_log_prob = self.actor.sample(next_obs, noise[:, 0])
            next_q = self.critic_target(torch.cat([next_obs, next_action], dim=-1))
            if self.atoms is None:
                y = L.soft_target(batch.reward, batch.terminated, gamma, next_q, next_log_prob, alpha)
            else:  # a histogram: every atom shifted by the entropy term α log π(ã'|s')
                y = self._dist_target(batch, next_q, alpha.unsqueeze(-1) * next_log_prob)
        metrics = self.gradient_step(self.critic_opt, self._critic_loss, batch, y)
        obs = self.actor_input(batch, metrics)  # s, or the critic step's f_ψ(s) detached (DrQ-v2)
        metrics |= self.gradient_step(self.actor_opt, self._actor_loss, obs, noise[:, 1], alpha)
        polyak_update(self.critic_target, self.critic, self.config.tau)
        return metrics

    def _actor_loss(
        self, params: list[Tensor], obs: Tensor, noise: Tensor, alpha: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """E[α log π(ã_θ|s) − min_j Q_j(s, ã_θ)] (reparameterised, the critics' weights detached) as a
        function of θ, plus with automatic α the temperature loss E[−log α (log π(ã|s) + H̄)] on the
        same samples as a function of log α (log π detached): disjoint parameters, so one gradient
        step of the actor's optimizer serves both."""
        n = len(self.actor.trunk.params())
        action, log_prob = self.actor.sample(obs, noise, params=params[:n])
        q_pi = self._values(self.critic(torch.cat([obs, action], dim=-1), detach_params=True))
        loss = L.actor_loss(q_pi, log_prob, alpha)
        metrics = {"loss/actor": loss.detach(), "policy/entropy": -log_prob.detach().mean(dim=-1), "alpha": alpha}
        if self.config.autotune_alpha:
            alpha_loss = L.temperature_loss(params[n], log_prob.detach(), self.target_entropy)
            metrics["loss/alpha"] = alpha_loss.detach()
            loss = loss + alpha_loss
        return loss, metrics


register(AlgoInfo("sac", SACConfig, SAC, ("Box",), "off-policy", "Soft Actor-Critic (continuous actions)"))
