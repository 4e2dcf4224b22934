"""TD3 (Fujimoto et al. 2018) and DDPG (Lillicrap et al. 2016): one agent; DDPG is TD3 with its
settings (``DDPGConfig``). Written once with autograd; the math is in ``losses/td3.py``."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from softac.algos.actor_critic import ActorCriticAgent
from softac.config import ActorCriticConfig, _f
from softac.config_goals import GoalReplayConfig
from softac.config_pixels import PixelConfig
from softac.data.replay import Batch
from softac.losses import td3 as L
from softac.nn import DeterministicActor
from softac.optim import adam, frozen_copy, polyak_update
from softac.registry import AlgoInfo, register


@dataclass(frozen=True)
class TD3Config(ActorCriticConfig, GoalReplayConfig, PixelConfig):
    """TD3 (Fujimoto et al. 2018). lr 3e-4 and 256×256 follow the author's updated reference code
    and CleanRL (the paper's 1e-3 with 400×300 networks was changed there for stability)."""

    learning_starts: int = _f(
        25_000, "Environment steps of uniform random actions (TD3 paper: 25k).", "non-negative"
    )
    policy_delay: int = _f(2, "Critic updates per actor and target update (delayed policy updates).", "positive")
    target_noise: float = _f(0.2, "σ of the target policy smoothing noise (normalised action units).", "non-negative")
    target_noise_clip: float = _f(0.5, "Clip c of the target policy smoothing noise.", "non-negative")
    exploration_noise: float = _f(0.1, "σ of the Gaussian noise added to behaviour actions.", "non-negative")


@dataclass(frozen=True)
class DDPGConfig(TD3Config):
    """DDPG (Lillicrap et al. 2016) is TD3's machinery with TD3's three additions switched off:
    one critic (no clipped double-Q), no target policy smoothing, no policy delay."""

    n_critics: int = _f(1, "Number of Q functions (DDPG: one).", "positive")
    policy_delay: int = _f(1, "Critic updates per actor update (DDPG: every step).", "positive")
    target_noise: float = _f(0.0, "Target policy smoothing σ (DDPG: none).", "non-negative")
    target_noise_clip: float = _f(0.0, "Target policy smoothing clip (DDPG: none).", "non-negative")


class TD3(ActorCriticAgent):
    algo = "td3"
    config_cls = TD3Config
    config: TD3Config

    def _build(self) -> None:
        cfg, spec, n = self.config, self.spec, self.learners
        width = self._build_encoder()
        self.actor = DeterministicActor(n, width, spec.act_dim, cfg.hidden_sizes, cfg.simba("actor"))
        self.actor.trunk.reset_parameters(self.rng.host)
        self.actor.to(self.device)
        self._build_critics(width)
        self.actor_target = frozen_copy(self.actor)
        self.policy = self.acting_policy(self.actor)
        self.actor_opt = adam(self.actor.trunk.params(), cfg.actor_lr, self.device)
        # The latest actor loss, kept between delayed actor updates so the logs always have one.
        self._last_actor_loss = torch.zeros(n, device=self.device)
        self._noise = torch.empty((n, cfg.batch_size, spec.act_dim), device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        encoder = {} if self.encoder is None else {"encoder": self.encoder}
        return {
            "actor": self.actor,
            "actor_target": self.actor_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
            **encoder,
        }

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def mutable_tensors(self) -> list[Tensor]:
        return [*super().mutable_tensors(), self._last_actor_loss]

    def _exploration_noise(self, rows: int) -> Tensor | None:
        """ε ~ N(0, σ²) of a = clip(μ(s) + ε, −1, 1); none at σ = 0."""
        sigma = self.config.exploration_noise
        if sigma == 0.0:
            return None
        noise = torch.empty((self.learners, rows, self.spec.act_dim), device=self.device)
        return self.rng.normal_(noise).mul_(sigma)

    def update_phase(self, index: int) -> Hashable:
        """Whether update ``index`` includes the delayed actor and target step (every policy_delay-th)."""
        return (index + 1) % self.config.policy_delay == 0

    def _draw(self, phase: Hashable) -> tuple[Batch, Tensor | None]:
        batch = self.buffer.sample(self.config.batch_size, self.rng)
        if self.config.target_noise == 0.0:
            return batch, None
        return batch, self.rng.normal_(self._noise)

    def _compute(self, draws: tuple[Batch, Tensor | None], phase: Hashable) -> dict[str, Tensor]:
        batch, noise = draws
        cfg = self.config
        # y = r + γ(1 − d) min_j Q_targ,j(s', a'(s')), a'(s') = clip(μ_targ(s') + clip(ε, −c, c), −1, 1).
        with torch.no_grad():
            next_obs = self.features(batch.next_obs)  # s', or the encoder's f(s') (no target encoder: DrQ-v2)
            next_action = self.actor_target(next_obs)
            if noise is not None:
                next_action = L.smoothed_target_action(next_action, noise * cfg.target_noise, cfg.target_noise_clip)
            next_q = self.critic_target(torch.cat([next_obs, next_action], dim=-1))
            if self.atoms is None:
                y = L.target(batch.reward, batch.terminated, batch.gamma(cfg.gamma), next_q)
            else:  # a histogram from the member with the smallest expected value
                y = self._dist_target(batch, next_q, 0.0)
        metrics = self.gradient_step(self.critic_opt, self._critic_loss, batch, y)
        obs = self.actor_input(batch, metrics)  # s, or the critic step's f_ψ(s) detached (DrQ-v2)
        # Delayed policy and target updates: every policy_delay-th critic update (DDPG: every one).
        if phase:
            actor = self.gradient_step(self.actor_opt, self._actor_loss, obs)
            self._last_actor_loss.copy_(actor["loss/actor"])
            polyak_update(self.critic_target, self.critic, cfg.tau)
            polyak_update(self.actor_target, self.actor, cfg.tau)
        metrics["loss/actor"] = self._last_actor_loss
        return metrics

    def _actor_loss(self, params: list[Tensor], obs: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """−E[Q_φ1(s, μ_θ(s))] as a function of θ, the critic's weights detached (Q_φ1 alone is evaluated;
        distributional: its expected value — TD3's actor loss unchanged, only the critic differs).
        ``obs``: s, or with an encoder the critic step's features of s (``actor_input``)."""
        obs_act = torch.cat([obs, self.actor(obs, params=params)], dim=-1)
        q_pi = self._values(self.critic(obs_act, detach_params=True, members=1))
        loss = L.actor_loss(q_pi[:, 0])
        return loss, {"loss/actor": loss.detach()}


class DDPG(TD3):
    """DDPG = TD3's update with ``DDPGConfig``: one critic, no target smoothing, no policy delay."""

    algo = "ddpg"
    config_cls = DDPGConfig
    config: DDPGConfig


register(AlgoInfo("td3", TD3Config, TD3, ("Box",), "off-policy", "TD3 (continuous actions)"))
register(AlgoInfo("ddpg", DDPGConfig, DDPG, ("Box",), "off-policy", "DDPG (continuous actions)"))
