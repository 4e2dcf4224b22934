"""Proximal Policy Optimization (Schulman et al. 2017) with GAE (Schulman et al. 2016): config,
optimizer and the update, written once with autograd. The math is in ``losses/ppo.py``; rollouts,
acting and the networks in ``algos/onpolicy.py``.

One update = n_epochs passes over the rollout, each in minibatches of ``minibatch_size`` samples
per learner, shuffled per learner from the learner's own stream; each minibatch is one step of
one Adam over the policy, log σ and value networks on L = −L^CLIP + c₁ L^VF − c₂ S (eq. 9), after
per-learner gradient-norm clipping. Defaults are Stable-Baselines3's (``PPO`` and
``ActorCriticPolicy``), which CleanRL's ``ppo.py``/``ppo_continuous_action.py`` share except
CleanRL anneals the learning rate by default and clips the value loss.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch
from torch import Tensor

from softac.algos.onpolicy import OnPolicyAgent
from softac.config import OnPolicyConfig, _f
from softac.data.rollout import Minibatch
from softac.errors import SoftacError
from softac.losses import ppo as L
from softac.optim import adam, set_lr, tensor_lr
from softac.registry import AlgoInfo, register


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    """PPO settings; defaults of Stable-Baselines3 2.x (``PPO``: lr 3e-4, n_steps 2048, batch 64,
    10 epochs, γ 0.99, λ 0.95, ε 0.2, c₁ 0.5, c₂ 0, max-grad-norm 0.5; Adam ε 1e-5)."""

    lr: float = _f(3e-4, "Adam learning rate of the policy, log σ and value networks (one optimizer).", "positive")
    anneal_lr: bool = _f(False, "Decay the learning rate linearly to 0 over total_steps (SB3's lin_ schedule).")
    adam_eps: float = _f(1e-5, "Adam's ε (SB3 and CleanRL use 1e-5 for PPO, not torch's 1e-8).", "positive")
    n_epochs: int = _f(10, "Passes over each rollout.", "positive")
    minibatch_size: int = _f(64, "Samples per learner in each gradient step (SB3's batch_size); must divide "
                             "n_steps × n_envs.", "positive")  # fmt: skip
    clip_range: float = _f(0.2, "ε of the clipped surrogate objective: r_t(θ) kept in [1 − ε, 1 + ε].", "positive")
    anneal_clip_range: bool = _f(False, "Decay ε linearly to 0 over total_steps (rl-zoo3's lin_ clip range).")
    clip_vloss: bool = _f(False, "Clip the value loss around the rollout's values with ε (CleanRL's clip_vloss).")
    ent_coef: float = _f(0.0, "c₂: weight of the entropy bonus.", "non-negative")
    vf_coef: float = _f(0.5, "c₁: weight of the value loss (a plain MSE, as SB3's; CleanRL halves it).",
                        "non-negative")  # fmt: skip
    max_grad_norm: float = _f(0.5, "Clip each learner's gradient to this L2 norm over all parameters (0: no "
                              "clipping).", "non-negative")  # fmt: skip
    normalize_advantage: bool = _f(True, "Normalise advantages per minibatch (and learner) to mean 0, std 1.")

    def planned_updates(self) -> int:
        """Whole rollouts (the last one may pass total_steps) × n_epochs × minibatches per epoch."""
        samples = self.n_steps * self.n_envs
        return -(-self.total_steps // samples) * self.n_epochs * max(1, samples // self.minibatch_size)

    def validate(self) -> None:
        super().validate()
        samples = self.n_steps * self.n_envs
        if samples % self.minibatch_size:
            raise SoftacError(
                f"minibatch_size ({self.minibatch_size}) must divide n_steps × n_envs ({self.n_steps} × "
                f"{self.n_envs} = {samples}), so that every minibatch has the same size"
            )


class PPO(OnPolicyAgent):
    algo = "ppo"
    config_cls = PPOConfig
    config: PPOConfig

    def _build(self) -> None:
        super()._build()
        cfg = self.config
        self.opt = adam(self.net.params(), cfg.lr, self.device, eps=cfg.adam_eps)
        # lr and ε as 0-d tensors changed in place once per rollout (their schedules are host
        # arithmetic on the step counter): the fused Adam kernel, a compiled update and a captured
        # CUDA graph all read the current value, with nothing recompiled or recaptured.
        tensor_lr(self.opt)
        self._clip_range = torch.tensor(cfg.clip_range, device=self.device)
        samples = cfg.n_steps * cfg.n_envs
        self._perm = torch.zeros((self.learners, samples), dtype=torch.long, device=self.device)
        self._mb_start = torch.zeros((), dtype=torch.long, device=self.device)
        self._mb_cols = torch.arange(cfg.minibatch_size, device=self.device)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor_critic": self.opt}

    def _schedules(self) -> float:
        """Learning rate and clip range for the rollout just collected, from the counters alone (so
        a resumed run schedules the same values): x₀ · (1 − t/T) after the rollout's t steps, as
        SB3 (which computes progress after collecting; its last rollout learns with lr 0 too)."""
        cfg = self.config
        remaining = 1.0 - self.env_steps / cfg.total_steps
        lr = L.linear_decay(cfg.lr, remaining) if cfg.anneal_lr else cfg.lr
        set_lr(self.opt, lr)
        self._clip_range.fill_(L.linear_decay(cfg.clip_range, remaining) if cfg.anneal_clip_range else cfg.clip_range)
        return lr

    def update(self) -> dict[str, Tensor]:
        """Advantages of the finished rollout, then n_epochs × (samples / minibatch_size) gradient
        steps; returns each metric's mean over those steps, per learner (L,)."""
        cfg, rollout = self.config, self.rollout
        rollout.finish(cfg.gamma, cfg.gae_lambda)
        lr = self._schedules()
        run = self._runner()
        sums: dict[str, Tensor] = {}
        steps = 0
        for _ in range(cfg.n_epochs):
            for k, gen in enumerate(self.rng.dev):
                self._perm[k] = torch.randperm(rollout.size, generator=gen, device=self.device)
            for start in range(0, rollout.size, cfg.minibatch_size):
                self._mb_start.fill_(start)
                for key, value in run(None).items():  # (a CUDA graph's outputs are overwritten: add now)
                    sums[key] = sums[key] + value if key in sums else value.clone()
                steps += 1
        self.updates += steps
        metrics = {key: value / steps for key, value in sums.items()}
        metrics["lr"] = torch.full((self.learners,), lr, device=self.device)
        metrics["policy/explained_variance"] = _explained_variance(rollout.returns, rollout.value)
        if self.net.log_std is not None:
            metrics["policy/std"] = self.net.log_std.detach().exp().mean(-1)
        return metrics

    def _draw(self, phase: Hashable) -> Minibatch:
        """Learner k's samples perm_k[start : start + B], gathered for every learner at once."""
        return self.rollout.minibatch(self._perm.index_select(1, self._mb_cols + self._mb_start))

    def _compute(self, mb: Minibatch, phase: Hashable) -> dict[str, Tensor]:
        clip = self.config.max_grad_norm
        return self.gradient_step(self.opt, self._loss, mb, max_grad_norm=clip if clip > 0 else None)

    def _loss(self, params: list[Tensor], mb: Minibatch) -> tuple[Tensor, dict[str, Tensor]]:
        """L = −L^CLIP + c₁ L^VF − c₂ S per learner, as a function of every parameter (θ and V's)."""
        cfg, eps = self.config, self._clip_range
        out, log_std, value = self.net(mb.obs, params=params)
        log_prob, entropy = self.log_prob_entropy(out, log_std, mb.action)
        advantage = L.normalize_advantages(mb.advantage) if cfg.normalize_advantage else mb.advantage
        policy_loss = L.clipped_surrogate_loss(log_prob, mb.log_prob, advantage, eps)
        if cfg.clip_vloss:
            value_loss = L.value_loss(value, mb.returns, mb.value, eps)
        else:
            value_loss = L.value_loss(value, mb.returns)
        entropy_loss = L.entropy_loss(entropy)
        loss = L.ppo_loss(policy_loss, value_loss, entropy_loss, cfg.vf_coef, cfg.ent_coef)
        log_prob = log_prob.detach()
        return loss, {
            "loss/policy": policy_loss.detach(), "loss/value": value_loss.detach(),
            "policy/entropy": -entropy_loss.detach(), "policy/approx_kl": L.approx_kl(log_prob, mb.log_prob),
            "policy/clip_fraction": L.clip_fraction(log_prob, mb.log_prob, eps),
        }  # fmt: skip


def _explained_variance(returns: Tensor, values: Tensor) -> Tensor:
    """1 − Var[R − V] / Var[R] per learner over the rollout (SB3's diagnostic: 1 is a perfect value
    function, ≤ 0 one no better than a constant); 0 where the returns do not vary (SB3: NaN, which
    here would read as divergence)."""
    y, pred = returns.flatten(1), values.flatten(1)
    var_y = y.var(dim=1, correction=0)
    ev = 1.0 - (y - pred).var(dim=1, correction=0) / var_y
    return torch.where(var_y > 0, ev, torch.zeros_like(ev))


register(AlgoInfo("ppo", PPOConfig, PPO, ("Box", "Discrete"), "on-policy",
                  "Proximal Policy Optimization (continuous and discrete actions)"))  # fmt: skip
