"""Soft Actor-Critic: networks, optimizers and the update step. The math is in losses/sac.py."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from softac.agents.base import OffPolicyAgent
from softac.buffer import Batch
from softac.config import SACConfig
from softac.distributions import squashed_gaussian_rsample
from softac.fastpath import SACFastUpdate
from softac.losses import sac as L
from softac.nn import CriticEnsemble, GaussianActor, adam, hard_update, polyak_update


class SAC(OffPolicyAgent):
    algo = "sac"
    config_cls = SACConfig
    config: SACConfig

    def _build(self) -> None:
        cfg, spec = self.config, self.spec
        self.actor = GaussianActor(spec.obs_dim, spec.act_dim, cfg.hidden_sizes, cfg.log_std_min, cfg.log_std_max)
        self.critic = CriticEnsemble(spec.obs_dim + spec.act_dim, cfg.hidden_sizes, cfg.n_critics)
        self.critic_target = copy.deepcopy(self.critic)
        hard_update(self.critic_target, self.critic)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.critic_target.to(self.device)
        self.target_entropy = float(cfg.target_entropy if cfg.target_entropy is not None else -spec.act_dim)
        init = cfg.alpha_init if cfg.autotune_alpha else cfg.alpha
        self.log_alpha = torch.tensor(math.log(init), device=self.device, requires_grad=cfg.autotune_alpha)
        # log α is a second parameter group of the actor's optimizer: the actor loss and the
        # temperature loss touch disjoint parameters (α is detached in the first, log π in the
        # second), so one backward pass and one fused Adam step serve both.
        groups: list[dict[str, Any]] = [{"params": list(self.actor.parameters()), "lr": cfg.actor_lr}]
        if cfg.autotune_alpha:
            groups.append({"params": [self.log_alpha], "lr": cfg.alpha_lr})
        self.actor_opt = adam(groups, cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)

    def modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {"log_alpha": self.log_alpha}

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def _policy_action(self, obs: Tensor, deterministic: bool) -> Tensor:
        mean, log_std = self.actor(obs)
        if deterministic:
            return torch.tanh(mean)
        # ã = tanh(μ + σξ) as in squashed_gaussian_rsample (same draw of ξ), without the log π that
        # acting never uses: a third of the ops of the per-environment-step action.
        return torch.tanh(torch.randn_like(mean).mul_(log_std.exp()).add_(mean))

    def _explore_one(self, obs: np.ndarray) -> np.ndarray:
        out = self._mlp_numpy(self.actor.trunk, obs)
        a, cfg = self.spec.act_dim, self.config
        mean, log_std = out[:, :a], np.clip(out[:, a:], cfg.log_std_min, cfg.log_std_max)
        xi = torch.randn(mean.shape).numpy()  # the draw of randn_like(mean) in _policy_action
        return np.tanh(xi * np.exp(log_std) + mean)

    def _make_fast_update(self) -> Callable[[Batch], dict[str, Tensor]]:
        return SACFastUpdate(self, compiled=self.config.compile_update)

    def _update_reference(self, batch: Batch) -> dict[str, Tensor]:
        """The update written with autograd: the readable reference for ``softac.fastpath``."""
        cfg = self.config
        alpha = self.log_alpha.detach().exp()

        # Critic: y = r + γ(1 − d)(min_j Q_targ,j(s', ã') − α log π(ã'|s')), ã' ~ π_θ(·|s') (current policy).
        with torch.no_grad():
            next_action, next_log_prob = squashed_gaussian_rsample(*self.actor(batch.next_obs))
            next_q = self.critic_target(torch.cat([batch.next_obs, next_action], dim=-1))
            y = L.soft_target(batch.reward, batch.terminated, cfg.gamma, next_q, next_log_prob, alpha)
        q = self.critic(batch.obs_act)
        critic_loss = L.critic_loss(q, y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # Actor: E[α log π(ã_θ|s) − min_j Q_j(s, ã_θ)], reparameterised; critics' weights detached.
        action, log_prob = squashed_gaussian_rsample(*self.actor(batch.obs))
        q_pi = self.critic(torch.cat([batch.obs, action], dim=-1), detach_params=True)
        actor_loss = L.actor_loss(q_pi, log_prob, alpha)
        metrics = {
            "loss/critic": critic_loss.detach(),
            "loss/actor": actor_loss.detach(),
            "q/mean": q.detach().mean(),
            "policy/entropy": -log_prob.detach().mean(),
            "alpha": alpha,
        }
        loss = actor_loss
        if cfg.autotune_alpha:
            # Temperature: E[−log α (log π(ã|s) + H̄)] on the same samples (log π detached).
            alpha_loss = L.temperature_loss(self.log_alpha, log_prob.detach(), self.target_entropy)
            metrics["loss/alpha"] = alpha_loss.detach()
            loss = actor_loss + alpha_loss
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()

        polyak_update(self.critic_target.parameters(), self.critic.parameters(), cfg.tau)
        self.updates += 1
        return metrics
