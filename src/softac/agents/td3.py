"""TD3 and DDPG: one agent class; DDPG is TD3 with its settings (DDPGConfig). Math: losses/td3.py."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from softac.agents.base import OffPolicyAgent
from softac.buffer import Batch
from softac.config import DDPGConfig, TD3Config
from softac.fastpath import TD3FastUpdate
from softac.losses import td3 as L
from softac.nn import CriticEnsemble, DeterministicActor, adam, hard_update, polyak_update


class TD3(OffPolicyAgent):
    algo = "td3"
    config_cls = TD3Config
    config: TD3Config

    def _build(self) -> None:
        cfg, spec = self.config, self.spec
        self.actor = DeterministicActor(spec.obs_dim, spec.act_dim, cfg.hidden_sizes).to(self.device)
        self.actor_target = copy.deepcopy(self.actor)
        hard_update(self.actor_target, self.actor)
        self.critic = CriticEnsemble(spec.obs_dim + spec.act_dim, cfg.hidden_sizes, cfg.n_critics).to(self.device)
        self.critic_target = copy.deepcopy(self.critic)
        hard_update(self.critic_target, self.critic)
        self.actor_opt = adam(self.actor.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        # The latest actor loss, kept between delayed actor updates so the logs always have one.
        self._last_actor_loss = torch.zeros((), device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def _policy_action(self, obs: Tensor, deterministic: bool) -> Tensor:
        action = self.actor(obs)
        if deterministic or self.config.exploration_noise == 0.0:
            return action
        return L.exploration_action(action, torch.randn_like(action) * self.config.exploration_noise)

    def _explore_one(self, obs: np.ndarray) -> np.ndarray:
        action = np.tanh(self._mlp_numpy(self.actor.trunk, obs))
        if self.config.exploration_noise == 0.0:
            return action
        noise = (torch.randn(action.shape) * self.config.exploration_noise).numpy()  # randn_like(action) · σ
        return np.clip(action + noise, -1.0, 1.0)

    def _make_fast_update(self) -> Callable[[Batch], dict[str, Tensor]]:
        return TD3FastUpdate(self, compiled=self.config.compile_update)

    def _update_reference(self, batch: Batch) -> dict[str, Tensor]:
        """The update written with autograd: the readable reference for ``softac.fastpath``."""
        cfg = self.config

        # Critic: y = r + γ(1 − d) min_j Q_targ,j(s', a'(s')), a'(s') = clip(μ_targ(s') + clip(ε, −c, c), −1, 1).
        with torch.no_grad():
            next_action = self.actor_target(batch.next_obs)
            if cfg.target_noise > 0.0:
                noise = torch.randn_like(next_action) * cfg.target_noise
                next_action = L.smoothed_target_action(next_action, noise, cfg.target_noise_clip)
            next_q = self.critic_target(torch.cat([batch.next_obs, next_action], dim=-1))
            y = L.target(batch.reward, batch.terminated, cfg.gamma, next_q)
        q = self.critic(batch.obs_act)
        critic_loss = L.critic_loss(q, y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.updates += 1

        # Delayed policy and target updates: every policy_delay-th critic update (DDPG: every one).
        if self.updates % cfg.policy_delay == 0:
            q_pi = self.critic(torch.cat([batch.obs, self.actor(batch.obs)], dim=-1), detach_params=True)
            actor_loss = L.actor_loss(q_pi[0])
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self._last_actor_loss = actor_loss.detach()
            polyak_update(self.critic_target.parameters(), self.critic.parameters(), cfg.tau)
            polyak_update(self.actor_target.parameters(), self.actor.parameters(), cfg.tau)

        return {
            "loss/critic": critic_loss.detach(),
            "loss/actor": self._last_actor_loss,
            "q/mean": q.detach().mean(),
        }


class DDPG(TD3):
    """DDPG = TD3's update with ``DDPGConfig``: one critic, no target smoothing, no policy delay."""

    algo = "ddpg"
    config_cls = DDPGConfig
    config: DDPGConfig
