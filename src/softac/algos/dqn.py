"""DQN (Mnih et al. 2015) and Double DQN (van Hasselt et al. 2016): config, Q-network, ε-greedy
acting and the update, written once with autograd. The math is in ``losses/dqn.py``.

Defaults are Stable-Baselines3's (2.x) DQN defaults, the values rl-zoo3 leaves implicit; where a
setting has another name in SB3 the field's help says how it maps. By default softac spreads
SB3's burst of ``gradient_steps`` every ``train_freq`` env steps evenly (``utd_ratio`` =
gradient_steps / train_freq, one update every 1/utd steps); with gradient_steps = 1, the common
case, the two coincide. ``burst_every`` = train_freq keeps SB3's burst instead, which matters when
the target is copied more often than the network changes (rl-zoo3's CartPole: 128 updates every
256 steps, target copied every 10 steps, i.e. each burst regresses on a target frozen at the
previous burst's end, a fitted-Q iteration).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from softac import memory
from softac.algos.offpolicy import OffPolicyAgent
from softac.algos.schedule import target_update_due
from softac.config import PrioritizedReplayConfig, _f
from softac.data.replay import Batch
from softac.errors import SoftacError
from softac.losses import dqn as L
from softac.nn import QNetwork
from softac.optim import adam, frozen_copy, polyak_update
from softac.registry import AlgoInfo, register


@dataclass(frozen=True)
class DQNConfig(PrioritizedReplayConfig):
    """DQN settings; defaults from Stable-Baselines3's ``DQN`` (2.x)."""

    hidden_sizes: tuple[int, ...] = _f((64, 64), "Hidden layer widths of the Q-network (SB3: 64×64).")
    batch_size: int = _f(32, "Minibatch size of each gradient step (SB3: 32).", "positive")
    tau: float = _f(
        1.0,
        "Target update coefficient at each target update: 1 copies the network into the target (SB3, "
        "CleanRL, Mnih et al.); τ < 1 is a Polyak update φ_targ ← (1 − τ) φ_targ + τ φ.",
        "fraction",
    )
    learning_starts: int = _f(100, "Environment steps of uniform random actions before updates begin (SB3: 100).",
                              "non-negative")  # fmt: skip
    utd_ratio: float = _f(
        0.25,
        "Gradient steps per environment step: SB3's gradient_steps / train_freq (its defaults 1 / 4 = 0.25; "
        "CleanRL's train_frequency 10 = 0.1).",
        "positive",
    )
    lr: float = _f(1e-4, "Adam learning rate of the Q-network (SB3: 1e-4).", "positive")
    target_update_interval: int = _f(
        10_000,
        "Environment steps between target-network updates (SB3 and CleanRL count env steps, not "
        "gradient steps; SB3: 10,000). See softac.algos.schedule for where in a step it falls.",
        "positive",
    )
    exploration_fraction: float = _f(
        0.1, "Fraction of total_steps over which ε falls linearly from its initial to its final value (SB3: 0.1).",
        "probability",
    )  # fmt: skip
    exploration_initial_eps: float = _f(1.0, "ε at step 0 (SB3: 1.0).", "probability")
    exploration_final_eps: float = _f(0.05, "ε after the decay (SB3: 0.05).", "probability")
    max_grad_norm: float = _f(
        10.0, "Clip each learner's gradient to this global L2 norm before the step (SB3: 10; 0: no clipping, "
        "as CleanRL).", "non-negative",
    )  # fmt: skip
    burst_every: int = _f(
        1, "1: updates spread evenly, one every 1/utd_ratio env steps. K > 1: SB3's train_freq K, a burst of "
        "utd_ratio·K gradient steps (SB3's gradient_steps) every K env steps once past learning_starts.",
        "positive",
    )  # fmt: skip
    double_q: bool = _f(
        False, "Double DQN target (van Hasselt et al. 2016): the online network picks argmax_a' Q(s', a'), "
        "the target network evaluates it (SB3's DQN has none: off).",
    )  # fmt: skip
    loss: str = _f(
        "huber", "TD loss: 'huber' (δ = 1, SB3's smooth L1, the gradient clipping of Mnih et al.) or 'mse' "
        "(CleanRL).", choices=("huber", "mse"),
    )  # fmt: skip

    def validate(self) -> None:
        super().validate()
        burst = self.utd_ratio * self.burst_every
        if self.burst_every > 1 and (burst < 1 or abs(burst - round(burst)) > 1e-9):
            raise SoftacError(f"with burst_every {self.burst_every}, utd_ratio · burst_every (the gradient steps of "
                              f"each burst) must be a whole number ≥ 1, got {burst:g}")  # fmt: skip

    def updates_owed(self, steps: int, learning_starts: int) -> int:
        """With bursts, ``DQN.updates_due``'s rule: burst_size updates per multiple of burst_every
        environment steps past learning_starts."""
        if self.burst_every <= 1:
            return super().updates_owed(steps, learning_starts)
        bursts = steps * self.n_envs // self.burst_every - learning_starts // self.burst_every
        return max(0, bursts) * self.burst_size

    @property
    def burst_size(self) -> int:
        """Gradient steps per burst (SB3's gradient_steps) when ``burst_every`` > 1."""
        return round(self.utd_ratio * self.burst_every)


class DQN(OffPolicyAgent):
    algo = "dqn"
    config_cls = DQNConfig
    config: DQNConfig

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        """One Q-network, obs → one value per action (and its target copy)."""
        cfg = self.config if cfg is None else cfg
        nets = memory.trunk(self.learners, self.spec.obs_dim, cfg.hidden_sizes, self.spec.n_actions, cfg.batch_size)
        return {**super().memory_estimate(cfg), "networks": nets}

    def _build(self) -> None:
        cfg, spec, n = self.config, self.spec, self.learners
        self.q = QNetwork(n, spec.obs_dim, spec.n_actions, cfg.hidden_sizes)
        self.q.trunk.reset_parameters(self.rng.host)
        self.q.to(self.device)
        self.q_target = frozen_copy(self.q)
        self.policy = self.q
        self.q_opt = adam(self.q.trunk.params(), cfg.lr, self.device)
        # ε lives on the device, set from the host schedule before each exploring action
        # (prepare_explore): a captured step graph reads it at replay instead of baking a value in.
        self._epsilon = torch.full((), cfg.exploration_initial_eps, device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"q": self.q, "q_target": self.q_target}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"q": self.q_opt}

    def epsilon(self, step: int) -> float:
        """ε at environment step ``step``: linear from the initial to the final value over the first
        exploration_fraction of total_steps (SB3's and CleanRL's schedule; extending a run's
        total_steps stretches it, as in SB3)."""
        cfg = self.config
        return L.linear_epsilon(step, cfg.total_steps, cfg.exploration_fraction, cfg.exploration_initial_eps,
                                cfg.exploration_final_eps)  # fmt: skip

    def prepare_explore(self, step: int) -> None:
        self._epsilon.fill_(self.epsilon(step))

    def _exploration_noise(self, rows: int) -> Tensor:
        """Per row: whether to explore (u₁ < ε) and the random action ⌊u₂ · |A|⌋, with u₁, u₂ from the
        learner's stream — ``losses.dqn.epsilon_greedy``'s rule, which ``QNetwork.head`` applies."""
        n_actions = self.spec.n_actions
        u = self.rng.uniform_(torch.empty((self.learners, rows, 2), device=self.device))
        if u.device.type == "cpu":
            # The same float32 arithmetic in numpy, in place on the same draws: acting runs once per
            # environment step (the CartPole preset: 500k times), where the six small torch ops below
            # cost 40 µs and these 3 µs.
            x = u.numpy()
            x[..., :1] = x[..., :1] < self._epsilon.numpy()
            x[..., 1:] = np.minimum(np.floor(x[..., 1:] * n_actions), n_actions - 1)
            return u
        explore = (u[..., :1] < self._epsilon).float()
        return torch.cat([explore, (u[..., 1:] * n_actions).floor_().clamp_(max=n_actions - 1)], dim=-1)

    def updates_due(self) -> int:
        """Bursts: burst_size updates at each multiple of burst_every env steps past learning_starts
        (SB3 trains after a rollout of train_freq steps once num_timesteps > learning_starts)."""
        cfg = self.config
        if cfg.burst_every <= 1:
            return super().updates_due()
        bursts = max(0, self.env_steps // cfg.burst_every - cfg.learning_starts // cfg.burst_every)
        return max(0, bursts * cfg.burst_size - self.updates)

    def update_phase(self, index: int) -> Hashable:
        """Whether the target network is updated after update ``index`` (every target_update_interval
        env steps; ``softac.algos.schedule``). Bursts: SB3 copies during the rollout between bursts,
        when the network does not change, so copying after a burst's last update is the same
        whenever a multiple of the interval lies in the rollout (e, e + burst_every] that follows."""
        cfg = self.config
        if cfg.burst_every > 1:
            k, g = cfg.burst_every, cfg.burst_size
            if index % g != g - 1:
                return False
            e = k * (cfg.learning_starts // k + 1 + index // g)
            return (e + k) // cfg.target_update_interval > e // cfg.target_update_interval
        return target_update_due(index, cfg.target_update_interval, cfg.learning_starts, cfg.utd_ratio, cfg.n_envs)

    def _draw(self, phase: Hashable) -> Batch:
        return self.buffer.sample(self.config.batch_size, self.rng)

    def _compute(self, draws: Batch, phase: Hashable) -> dict[str, Tensor]:
        batch, cfg = draws, self.config
        # y = r + γ(1 − d) max_a' Q_targ(s', a'); Double DQN: Q_targ(s', argmax_a' Q(s', a')).
        gamma = batch.gamma(cfg.gamma)  # γ, or the per-row γ^m of n-step returns
        with torch.no_grad():
            next_q_target = self.q_target(batch.next_obs)
            if cfg.double_q:
                y = L.double_target(batch.reward, batch.terminated, gamma, self.q(batch.next_obs), next_q_target)
            else:
                y = L.target(batch.reward, batch.terminated, gamma, next_q_target)
        clip = cfg.max_grad_norm if cfg.max_grad_norm > 0 else None
        metrics = self.gradient_step(self.q_opt, self._loss, batch, y, max_grad_norm=clip)
        if phase:
            if cfg.tau == 1.0:
                with torch.no_grad():
                    for target, source in zip(self.q_target.parameters(), self.q.parameters(), strict=True):
                        target.copy_(source)
            else:
                polyak_update(self.q_target, self.q, cfg.tau)
        return metrics

    def _loss(self, params: list[Tensor], batch: Batch, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """E[ℓ(Q_φ(s, a) − y)] (ℓ: Huber or squared error) as a function of the Q-network's φ."""
        q = L.chosen_q(self.q(batch.obs, params=params), batch.action[..., 0])
        loss = L.td_loss(q, y, "mse" if self.config.loss == "mse" else "huber", batch.weight)
        metrics = {"loss/critic": loss.detach(), "q/mean": q.detach().mean(dim=-1)}
        if batch.weight is not None:  # prioritized replay's new priorities |δ| (OffPolicyAgent.update)
            metrics["per/td"] = (q.detach() - y).abs()
        return loss, metrics


register(AlgoInfo("dqn", DQNConfig, DQN, ("Discrete",), "off-policy", "DQN and Double DQN (discrete actions)"))
