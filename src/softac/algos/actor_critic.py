"""What SAC, TD3 and DDPG share: an ensemble of critics Q_φj(s, a), its Polyak-averaged target,
its optimizer and its loss (importance-weighted with prioritized replay). Each algorithm adds its
actor and its target y.

With ``critic_dist`` (docs/networks.md) each critic outputs logits over a fixed support instead of
a scalar: Q is their expected value wherever a value is needed (targets, the actor), the target
becomes a histogram (``losses.distributional.target_histogram``) and the loss a cross-entropy."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from softac import memory
from softac.algos.offpolicy import OffPolicyAgent
from softac.config import ActorCriticConfig
from softac.data.replay import Batch
from softac.losses import common
from softac.losses import distributional as D
from softac.nn import CriticEnsemble
from softac.nn.encoder import EncodedPolicy, StackedEncoder
from softac.nn.pixel_encoder import PixelEncoder
from softac.optim import adam, frozen_copy

FEATURES = "_features"  # the critic step's encoder output, passed to the actor's step in its metrics


class ActorCriticAgent(OffPolicyAgent):
    config: ActorCriticConfig
    takes_encoder = True
    encoder: StackedEncoder | PixelEncoder | None = None

    def _build_encoder(self) -> int:
        """The encoder, if any, built first from the learners' streams: the image encoder for an
        image observation (``softac.nn.pixel_encoder``), or the user's (``softac.nn.encoder``);
        returns the width the actor and the critics read: its features, or obs_dim."""
        if self.pixels is not None:
            features = int(getattr(self.config, "image_features", 50))  # PixelConfig's (config_pixels checked)
            self.encoder = PixelEncoder(self.learners, self.pixels, features, self.rng.host)
            self.encoder.to(self.device)
            return self.encoder.features
        cls, kwargs = self.encoder_spec
        if cls is None:
            return self.spec.obs_dim
        self.encoder = StackedEncoder(cls, kwargs, self.spec.observation_space, self.spec.obs_layout, self.rng.host)
        self.encoder.to(self.device)
        return self.encoder.features

    def acting_policy(self, actor: Any) -> Any:
        """The policy that acts: the actor, or the actor behind the encoder."""
        return actor if self.encoder is None else EncodedPolicy(self.encoder, actor)

    def actor_input(self, batch: Batch, metrics: dict[str, Tensor]) -> Tensor:
        """What the actor's loss reads for s: the observation, or with an encoder the features the
        critic step computed, detached, taken out of its metrics. Why those and not a new forward
        pass after the critic's update: DrQ-v2 (Yarats et al. 2021, ``drqv2.py``: ``obs =
        self.encoder(obs)`` once, the actor fed ``obs.detach()``) does so, and the third pass of the
        convolutions was ~15 % of an image update (``benchmarks/pixel_update.py --profile``)."""
        feats = metrics.pop(FEATURES, None)
        return batch.obs if feats is None else feats

    def features(self, obs: Tensor) -> Tensor:
        """What the actor and the target read: the encoder's features, detached (the encoder learns
        from the critic loss alone: SAC-AE, DrQ), or the observation itself."""
        if self.encoder is None:
            return obs
        with torch.no_grad():
            return self.encoder(obs)

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        """The actor (SAC's 2·dim(A) outputs bound TD3's dim(A)) and the critics at their shapes
        (SimBa trunks, a distributional output layer of ``dist_bins``), and a distributional
        critic's tensors over its support."""
        cfg = self.config if cfg is None else cfg
        spec, n, batch = self.spec, self.learners, cfg.batch_size
        bins = cfg.dist_bins if cfg.critic_dist != "none" else 1
        # What the actor and the critics read: the observation, or the image encoder's features.
        width = spec.obs_dim + (int(getattr(cfg, "image_features", 50)) if self.pixels is not None else 0)
        nets = memory.trunk(n, width, cfg.hidden_sizes, 2 * spec.act_dim, batch, cfg.simba("actor"))
        nets += memory.trunk(n * cfg.n_critics, width + spec.act_dim, cfg.hidden_sizes, bins, batch,
                             cfg.simba("critic"))  # fmt: skip
        out = {**super().memory_estimate(cfg), "networks": nets}
        if bins > 1:
            out["distributional critic"] = memory.distributional_head(n, cfg.n_critics, batch, bins)
        return out

    def _build_critics(self, in_dim: int | None = None) -> None:
        """The critics (initialised from the learners' streams after the actor, as every
        algorithm here orders its draws), their target and their optimizer. With an encoder the
        critics read its features, and their optimizer trains it too (its parameters after theirs)."""
        cfg, spec = self.config, self.spec
        dist = cfg.critic_dist != "none"
        width = (spec.obs_dim if in_dim is None else in_dim) + spec.act_dim
        self.critic = CriticEnsemble(self.learners, cfg.n_critics, width, cfg.hidden_sizes,
                                     cfg.critic_layer_norm, cfg.simba("critic"),
                                     bins=cfg.dist_bins if dist else 1)  # fmt: skip
        self.critic.net.reset_parameters(self.rng.host, members=cfg.n_critics)
        self.critic.to(self.device)
        self.critic_target = frozen_copy(self.critic)
        encoder = [] if self.encoder is None else self.encoder.params()
        self.critic_opt = adam([*self.critic.net.params(), *encoder], cfg.critic_lr, self.device)
        # The support z_k: a constant of the config (not state: never checkpointed, never updated).
        self.atoms = D.support(cfg.dist_v_min, cfg.dist_v_max, cfg.dist_bins).to(self.device) if dist else None

    def _values(self, critic_out: Tensor) -> Tensor:
        """Q values (L, n, B) from the critics' output: itself, or Σ_k softmax(ℓ)_k z_k."""
        return critic_out if self.atoms is None else D.expected_value(critic_out, self.atoms)

    def _dist_target(self, batch: Batch, next_logits: Tensor, shift: Tensor | float) -> Tensor:
        """The histogram target of ``critic_dist`` from the target critics' logits at (s', a') (SAC's
        ``shift`` α log π(ã'|s'), TD3's 0): ``losses.distributional.target_histogram``."""
        cfg = self.config
        assert self.atoms is not None
        sigma = cfg.hl_gauss_sigma * (cfg.dist_v_max - cfg.dist_v_min) / (cfg.dist_bins - 1)
        return D.target_histogram(cfg.critic_dist, batch.reward, batch.terminated, batch.gamma(cfg.gamma), next_logits,
                                  self.atoms, shift, sigma)  # fmt: skip

    def _critic_loss(self, params: list[Tensor], batch: Batch, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Σ_j E[(Q_φj(s, a) − y)²] as a function of the critics' parameters φ (weighted by w with
        prioritized replay); distributional: Σ_j E[−Σ_k p_k log softmax(ℓ_φj(s, a))_k] to the target
        histogram p (the config refuses it together with prioritized replay)."""
        if self.encoder is None:
            out = self.critic(batch.obs_act, params=params)
        else:  # Q_φ(f_ψ(s), a): the gradient reaches the encoder ψ (the parameters after the critics')
            n = len(self.critic.net.params())
            feats = self.encoder(batch.obs, params=params[n:])
            out = self.critic(torch.cat([feats, batch.action], dim=-1), params=params[:n])
        loss = common.critic_loss(out, y, batch.weight) if self.atoms is None else D.critic_loss(out, y)
        q = self._values(out.detach())
        metrics = {"loss/critic": loss.detach(), "q/mean": q.mean(dim=(-2, -1))}
        if self.encoder is not None:  # f_ψ(s), detached, for the actor (``actor_input``): not a metric
            metrics[FEATURES] = feats.detach()
        if batch.weight is not None:  # the new priorities' |δ|, taken off by OffPolicyAgent.update
            metrics["per/td"] = common.td_priority(q, y)
        return loss, metrics
