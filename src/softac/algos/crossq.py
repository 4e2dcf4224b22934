"""CrossQ (Bhatt et al., ICLR 2024): SAC's soft actor with α, critics with Batch Renormalization and
no target networks, the current and next state-actions through the critics in one forward pass.
Built from parts — the soft actor and its temperature (``algos.temperature``), a critic ensemble
(``nn.CriticEnsemble`` with ``norm="batchrenorm"``) — not from SAC's class: it has no targets, so
its config has no ``tau``. The math is in ``losses/crossq.py``; the batch statistics are state the
losses *return* (``optim.gradient_step``), the same eagerly, compiled, in CUDA graphs and on the
learner axis."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from softac import memory
from softac.algos.offpolicy import OffPolicyAgent
from softac.algos.temperature import SoftActor, SoftActorConfig, actor_optimizer_with_temperature
from softac.config import SimbaActorConfig, _f
from softac.config_goals import GoalReplayConfig
from softac.data.replay import Batch
from softac.losses import common
from softac.losses import crossq as C
from softac.losses import sac as L
from softac.nn import CriticEnsemble, GaussianActor
from softac.nn.batched import Stats
from softac.optim import adam
from softac.registry import AlgoInfo, register


@dataclass(frozen=True)
class CrossQConfig(SimbaActorConfig, SoftActorConfig, GoalReplayConfig):
    """CrossQ's settings. Defaults: the paper (Bhatt et al. 2024, Table 1/Appendix) as sb3-contrib's
    CrossQ implements it — lr 1e-3 for actor, critics and α, Adam β₁ = 0.5, policy delay 3, Batch
    Renormalization momentum 0.01 (running ← running + 0.01 · (batch − running)), ε 1e-3, 100k
    warm-up updates of plain batch normalisation; the critics 2048 × 2048 as in the paper
    (sb3-contrib defaults to 1024 × 1024 for speed). ``--norm batchnorm``: plain BatchNorm (the
    authors' ablation), ``--network simba``: a SimBa actor (docs/algorithms-crossq.md)."""

    network: str = _f("mlp", "The actor's network: 'mlp' (hidden_sizes, batch-(re)normalised) or 'simba' (Lee et al. "
                      "2024; docs/networks.md; pair with --normalize-obs). The critics stay batch-(re)normalised "
                      "MLPs of critic_hidden_sizes: SimBa's LayerNorms would replace the batch statistics CrossQ "
                      "rests on.", choices=("mlp", "simba"))  # fmt: skip

    actor_lr: float = _f(1e-3, "Adam learning rate of the actor.", "positive")
    critic_lr: float = _f(1e-3, "Adam learning rate of the critics.", "positive")
    alpha_lr: float = _f(1e-3, "Adam learning rate of log α.", "positive")
    n_critics: int = _f(2, "Number of Q functions (min over them in the target).", "positive")
    critic_hidden_sizes: tuple[int, ...] = _f((2048, 2048), "Hidden layer widths of the critics (paper: 2048 × 2048).")
    policy_delay: int = _f(3, "Critic updates per actor and α update.", "positive")
    adam_beta1: float = _f(0.5, "Adam β₁ of the actor and the critics (CrossQ: 0.5), in [0, 1).", "beta")
    norm: str = _f("batchrenorm", "Normalisation before every affine layer of the critics and the MLP actor: "
                   "'batchrenorm' (Ioffe 2017; the paper's agent, sb3-contrib) or 'batchnorm' (plain BatchNorm as "
                   "torch's BatchNorm1d: the authors' code's bn_mode 'bn' ablation; renorm_warmup unused).",
                   choices=("batchrenorm", "batchnorm"))  # fmt: skip
    renorm_momentum: float = _f(0.01, "Batch (re)normalisation running-statistics rate.", "probability")
    renorm_eps: float = _f(1e-3, "Batch (re)normalisation ε added to variances.", "positive")
    renorm_warmup: int = _f(
        100_000, "Updates of plain batch normalisation before the running statistics renormalise.", "non-negative"
    )


# CrossQ's update on one CPU thread, measured 2026-12-06 on a 2-core machine (benchmarks/network_cost.py
# --only crossq --rounds 5 --updates 10, Pendulum-v1, batch 256, medians), with the batch renormalisation
# folded into each layer's product: critics 256², 512², 1024², 2048² cost 16.5, 38.4, 118, 427 ms per
# update. Fitted from 1024 up: ms ≈ 14.3 + 9.81e-5 · (batch / 256) · (n_critics / 2) · Σ in·out over one
# critic's layers (it overestimates 512² at 40 ms and 256² at 21 ms: a warning errs on the slow side).
_MS_FIXED, _MS_PER_MAC = 14.3, 9.81e-5
_SLOW_MS = 150.0  # slower than ≈ 7 updates/s: a run of the presets' 1M steps takes days on a CPU


def cpu_ms_per_update(cfg: CrossQConfig, in_dim: int, widths: tuple[int, ...]) -> float:
    """The estimated ms of one update on one CPU thread with critics of ``widths`` (see above)."""
    dims = [in_dim, *widths, 1]
    macs = sum(a * b for a, b in itertools.pairwise(dims))
    return _MS_FIXED + _MS_PER_MAC * macs * (cfg.batch_size / 256) * (cfg.n_critics / 2)


class CrossQ(SoftActor, OffPolicyAgent):
    algo = "crossq"
    config_cls = CrossQConfig
    config: CrossQConfig

    def _build(self) -> None:
        cfg, spec, n = self.config, self.spec, self.learners
        layer: dict[str, Any] = {"norm": cfg.norm, "renorm_momentum": cfg.renorm_momentum,
                                 "renorm_eps": cfg.renorm_eps, "renorm_warmup": cfg.renorm_warmup}  # fmt: skip
        # A SimBa actor (``network="simba"``) has LayerNorms and no batch statistics: ``layer`` is
        # the MLP's; its training-mode call returns no state. The critics are always MLPs.
        self.actor = GaussianActor(n, spec.obs_dim, spec.act_dim, cfg.hidden_sizes, cfg.log_std_min, cfg.log_std_max,
                                   cfg.simba("actor"), **layer)  # fmt: skip
        self.actor.trunk.reset_parameters(self.rng.host)
        self.actor.to(self.device)
        self.critic = CriticEnsemble(n, cfg.n_critics, spec.obs_dim + spec.act_dim, cfg.critic_hidden_sizes, **layer)
        self.critic.net.reset_parameters(self.rng.host, members=cfg.n_critics)
        self.critic.to(self.device)
        self.policy = self.actor
        betas = (cfg.adam_beta1, 0.999)
        self.critic_opt = adam(self.critic.net.params(), cfg.critic_lr, self.device, betas=betas)
        self.target_entropy = float(cfg.target_entropy if cfg.target_entropy is not None else -spec.act_dim)
        self.log_alpha, self.actor_opt = actor_optimizer_with_temperature(
            cfg, self.actor.trunk.params(), n, self.device, actor_betas=betas
        )
        self._noise = torch.empty((n, 2, cfg.batch_size, spec.act_dim), device=self.device)
        # The latest actor-step metrics, kept between delayed actor steps so every log row has them.
        self._last_actor = torch.zeros((3, n), device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    def extra_tensors(self) -> dict[str, Tensor]:
        return {**super().extra_tensors(), "log_alpha": self.log_alpha}

    def mutable_tensors(self) -> list[Tensor]:
        return [*super().mutable_tensors(), self._last_actor]

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        """The actor, and critics of ``critic_hidden_sizes`` that see twice the batch (the joint
        (s, a) and (s', a') pass that shares the batch statistics)."""
        cfg = self.config if cfg is None else cfg
        spec, n, batch = self.spec, self.learners, cfg.batch_size
        nets = memory.trunk(n, spec.obs_dim, cfg.hidden_sizes, 2 * spec.act_dim, batch, cfg.simba("actor"))
        nets += memory.trunk(n * cfg.n_critics, spec.obs_dim + spec.act_dim, cfg.critic_hidden_sizes, 1, 2 * batch)
        return {**super().memory_estimate(cfg), "networks": nets}

    def start_notes(self) -> list[str]:
        """The paper's 2048-wide critics train at ≈ 2.3 updates/s on a CPU thread: say so, with the
        run's cost and the narrower critics that fit a CPU, before the run starts."""
        cfg = self.config
        in_dim = self.spec.obs_dim + self.spec.act_dim
        ms = cpu_ms_per_update(cfg, in_dim, cfg.critic_hidden_sizes)
        if self.device.type != "cpu" or ms < _SLOW_MS:
            return []
        hours = max(0, cfg.planned_updates() - self.updates) * ms / 3.6e6
        took = f"{hours:.1f} h" if hours >= 1 else f"{60 * hours:.0f} min"
        widths = "×".join(map(str, cfg.critic_hidden_sizes))
        small = {w: cpu_ms_per_update(cfg, in_dim, (w, w)) for w in (512, 256)}
        return [
            f"softac: note: CrossQ's {widths} critics cost about {ms:.0f} ms per update on one CPU thread (≈ "
            f"{took} for this run's updates); on a CPU pass --critic-hidden-sizes 512 512 (about "
            f"{small[512]:.0f} ms) or 256 256 (about {small[256]:.0f} ms; it learns Pendulum-v1 in 10,000 steps), "
            "or train on a GPU (--device cuda)"
        ]

    def update_phase(self, index: int) -> Hashable:
        """Whether update ``index`` includes the delayed actor and α step (every policy_delay-th)."""
        return (index + 1) % self.config.policy_delay == 0

    def _compute(self, draws: tuple[Batch, Tensor], phase: Hashable) -> dict[str, Tensor]:
        batch, noise = draws
        alpha = self.log_alpha.detach().exp()
        with torch.no_grad():  # ã' ~ π_θ(·|s'), the actor in evaluation mode
            next_action, next_log_prob = self.actor.sample(batch.next_obs, noise[:, 0])
        next_obs_act = torch.cat([batch.next_obs, next_action], dim=-1)
        metrics = self.gradient_step(self.critic_opt, self._critic_loss, batch, next_obs_act, next_log_prob, alpha)
        if phase:
            actor = self.gradient_step(self.actor_opt, self._actor_loss, batch, noise[:, 1], alpha)
            keys = ("loss/actor", "policy/entropy", "loss/alpha")
            self._last_actor.copy_(torch.stack([actor.get(k, torch.zeros_like(alpha)) for k in keys]))
        metrics["loss/actor"], metrics["policy/entropy"] = self._last_actor[0], self._last_actor[1]
        if self.config.autotune_alpha:
            metrics["loss/alpha"] = self._last_actor[2]
        metrics["alpha"] = alpha
        return metrics

    def _critic_loss(
        self, params: list[Tensor], batch: Batch, next_obs_act: Tensor, next_log_prob: Tensor, alpha: Tensor
    ) -> tuple[Tensor, dict[str, Tensor], Stats]:
        """Σ_j E[(Q_φj(s, a) − y)²], both halves from one training-mode pass (``losses.crossq``); the
        new running statistics are returned, not written."""
        stats: Stats = []
        q = self.critic(C.joint_input(batch.obs_act, next_obs_act), params=params, stats=stats)
        q_now, y = C.split_joint_q(q, batch.reward, batch.terminated, self.config.gamma, next_log_prob, alpha)
        loss = common.critic_loss(q_now, y)
        return loss, {"loss/critic": loss.detach(), "q/mean": q_now.detach().mean(dim=(-2, -1))}, stats

    def _actor_loss(
        self, params: list[Tensor], batch: Batch, noise: Tensor, alpha: Tensor
    ) -> tuple[Tensor, dict[str, Tensor], Stats]:
        """SAC's actor (and temperature) loss, the actor in training mode (its batch statistics,
        returned as new state), the critics in evaluation mode with their weights detached."""
        stats: Stats = []
        n = len(self.actor.trunk.params())
        action, log_prob = self.actor.sample(batch.obs, noise, params=params[:n], stats=stats)
        q_pi = self.critic(torch.cat([batch.obs, action], dim=-1), detach_params=True)
        loss = L.actor_loss(q_pi, log_prob, alpha)
        metrics = {"loss/actor": loss.detach(), "policy/entropy": -log_prob.detach().mean(dim=-1)}
        if self.config.autotune_alpha:
            alpha_loss = L.temperature_loss(params[n], log_prob.detach(), self.target_entropy)
            metrics["loss/alpha"] = alpha_loss.detach()
            loss = loss + alpha_loss
        return loss, metrics, stats


register(AlgoInfo("crossq", CrossQConfig, CrossQ, ("Box",), "off-policy",
                  "CrossQ: SAC with batch-renormalised critics and no target networks"))  # fmt: skip
