"""What every on-policy agent shares: the actor-critic networks, acting during a rollout, recording
its transitions, the deterministic policy, and running each minibatch step through
``softac.accel``. The training step (``softac.train.onpolicy``) drives it:

    for t in range(n_steps):  rollout_act(t, obs, starts) → env step → rollout_record(t, tr, ended)
    update()                  advantages, then the algorithm's epochs over the rollout

Actions. Box: a ~ N(μ_θ(s), σ²) with a state-independent σ; the rollout stores the UNclipped a
(its log π is what the probability ratio refers to) and the environment gets clip(a, −1, 1),
mapped to the bounds (SB3, CleanRL; see ``softac.distributions``). Discrete: a ~ Cat(softmax(logits)),
stored as its index. The deterministic policy is clip(μ) or argmax.

Bootstrapping (termination vs truncation, decided by the collector): ``next_value[t]`` is V of
the TRUE next observation — V(s_{t+1}) acted on at t + 1 for an environment that went on, V of
the final observation the environment returned for one whose episode ended at t (a time-limit
truncation bootstraps from it; a termination multiplies it by 0), V of the observation after
the rollout at its last step. ``losses.ppo.gae`` stops the recursion at every episode end.

An algorithm provides its optimizer (in ``_build``, after ``super()._build()``) and ``update``,
its minibatch step written as ``_draw(phase)`` / ``_compute(draws, phase)`` for the runners.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac import memory
from softac.accel.runner import Update, make_runners
from softac.algos.base import Agent
from softac.collector import Transitions
from softac.config import OnPolicyConfig
from softac.data.normaliser import ObservationNormaliser
from softac.data.rollout import Rollout
from softac.distributions import (
    categorical_entropy,
    categorical_log_prob,
    categorical_mode,
    categorical_sample,
    clip_action,
    diag_gaussian_entropy,
    diag_gaussian_log_prob,
    diag_gaussian_sample,
)
from softac.nn import ActorCritic, BatchedMLP
from softac.obs import learner_observations


class OnPolicyAgent(Agent):
    family = "on-policy"
    config: OnPolicyConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg, spec, n = self.config, self.spec, self.learners
        self.rollout = Rollout(n, cfg.n_steps, cfg.n_envs, spec.obs_dim, spec.act_dim, self.device)
        # SB3's VecNormalize reward scaling: r / √(Var[discounted return] + 1e-8), clipped to ±10,
        # with the return's running statistics per learner (shape (L,)) and its accumulator per env.
        self.reward_norm: ObservationNormaliser | None = None
        if cfg.normalize_reward:
            self.reward_norm = ObservationNormaliser((n,), (), device=self.device)
        self._discounted = torch.zeros((n, cfg.n_envs), dtype=torch.float64, device=self.device)
        self._ended = torch.zeros((n, cfg.n_envs), dtype=torch.bool, device=self.device)
        self._update_fn: Update | None = None
        self._runner_key: tuple[bool, bool, bool] | None = None

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        """The policy and value networks (a minibatch of ``minibatch_size``, or the whole rollout
        for an algorithm without minibatches) and the rollout storage."""
        cfg = self.config if cfg is None else cfg
        spec, n = self.spec, self.learners
        out_dim = spec.act_dim if spec.action_kind == "Box" else spec.n_actions
        batch = int(getattr(cfg, "minibatch_size", cfg.n_steps * cfg.n_envs))
        nets = memory.trunk(n, spec.obs_dim, cfg.hidden_sizes, out_dim, batch) + memory.trunk(
            n, spec.obs_dim, cfg.hidden_sizes, 1, batch)
        data = memory.rollout(n, cfg.n_steps, cfg.n_envs, spec.obs_dim, spec.act_dim)
        return {**super().memory_estimate(cfg), "networks": nets, "rollout": data}

    def _build(self) -> None:
        cfg, spec = self.config, self.spec
        box = spec.action_kind == "Box"
        self.net = ActorCritic(self.learners, spec.obs_dim, spec.act_dim if box else spec.n_actions, cfg.hidden_sizes,
                               cfg.activation, spec.act_dim if box else 0, cfg.log_std_init)  # fmt: skip
        self.net.reset_parameters(self.rng.host, cfg.ortho_init)
        self.net.to(self.device)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"actor_critic": self.net}

    def extra_tensors(self) -> dict[str, Tensor]:
        out = super().extra_tensors()
        if self.reward_norm is not None:
            out |= {f"reward_norm/{k}": t for k, t in self.reward_norm.live_tensors().items()}
        return out

    # -- what an algorithm provides ---------------------------------------------------------
    @abc.abstractmethod
    def update(self) -> dict[str, Tensor]:
        """Learn from the finished rollout; metrics of shape (L,) (no host sync)."""

    @abc.abstractmethod
    def _draw(self, phase: Hashable) -> Any: ...

    @abc.abstractmethod
    def _compute(self, draws: Any, phase: Hashable) -> dict[str, Tensor]: ...

    # -- the policy's distribution ------------------------------------------------------------
    def _sample(self, out: Tensor, log_std: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """(action to store, action for the environment, log π(a|s)) from the learners' streams."""
        if log_std is None:
            uniforms = self.rng.uniform_(torch.empty(out.shape[:-1], device=self.device))
            index = categorical_sample(out, uniforms=uniforms)
            stored = index.unsqueeze(-1).to(out.dtype)
            return stored, stored, categorical_log_prob(out, index)
        action = diag_gaussian_sample(out, log_std, noise=self.rng.normal_(torch.empty_like(out)))
        return action, clip_action(action), diag_gaussian_log_prob(action, out, log_std)

    def log_prob_entropy(self, out: Tensor, log_std: Tensor | None, action: Tensor) -> tuple[Tensor, Tensor]:
        """log π_θ(a|s) of stored actions and the entropy H(π_θ(·|s)), per sample."""
        if log_std is None:
            return categorical_log_prob(out, action[..., 0]), categorical_entropy(out)
        return diag_gaussian_log_prob(action, out, log_std), diag_gaussian_entropy(out, log_std)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions (L, B, act_dim) for observations (L, B, obs_dim): clip(μ) / argmax, or a sample;
        a single learner also takes (B, obs_dim). Never updates the observation statistics."""
        obs, flat = learner_observations(obs, self.learners, self.spec.obs_dim)
        with torch.no_grad():
            out = self.net.policy(self.network_input(obs))
            log_std = None if self.net.log_std is None else self.net.log_std.unsqueeze(-2)
            if deterministic:
                action = categorical_mode(out).unsqueeze(-1).to(out.dtype) if log_std is None else clip_action(out)
            else:
                action = self._sample(out, log_std)[1]
        result = action.cpu().numpy()
        return result[0] if flat else result

    # -- collecting a rollout -------------------------------------------------------------------
    def rollout_act(self, t: int, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Act at rollout step t on observations (L, n, obs_dim) (``starts``: (L, n), the envs whose
        episode just began); store s_t, a_t, log π(a_t|s_t), V(s_t); return the environment's actions."""
        x = self.network_input(obs, update=True)
        with torch.no_grad():
            out, log_std, value = self.net(x)
            stored, env_action, log_prob = self._sample(out, log_std)
        r = self.rollout
        r.store(t, obs=x, action=stored, log_prob=log_prob, value=value)
        if t > 0:  # V(s_t) is step t − 1's next value where the episode went on
            r.next_value[:, t - 1] = torch.where(self._ended, r.next_value[:, t - 1], value)
        if self.reward_norm is not None:
            self._discounted[torch.as_tensor(starts, device=self.device)] = 0.0
        return env_action.cpu().numpy()

    def rollout_record(self, t: int, tr: Transitions, ended: np.ndarray) -> None:
        """Store step t's reward, termination d_t, episode end e_t (``ended``: terminated, truncated,
        or dropped as non-finite) and V of the final observation where the episode ended."""
        device = self.device
        ok = torch.as_tensor(tr.ok, device=device)
        # A copy (torch.tensor), not a view: the collector clears its flags in place at the next reset.
        ended_t = torch.tensor(ended, device=device)
        reward = torch.as_tensor(tr.reward, device=device)
        if self.reward_norm is not None:
            reward = self._scale_reward(reward)
        # A dropped (non-finite) step has no trustworthy next observation: nothing to bootstrap from.
        terminated = torch.as_tensor(tr.terminated, device=device).bool() | ~ok
        next_value = torch.zeros_like(reward)
        if bool(ended.any()) or t == self.config.n_steps - 1:
            with torch.no_grad():
                next_value = self.net.value(self.network_input(tr.next_obs)).squeeze(-1)
        self.rollout.store(t, reward=reward, terminated=terminated.float(), episode_end=ended_t.float(),
                           next_value=next_value)  # fmt: skip
        self._ended = ended_t

    def _scale_reward(self, reward: Tensor) -> Tensor:
        """SB3 ``VecNormalize``: G ← γG + r per env, Var[G] updated with the batch of every env's G,
        r / √(Var[G] + 1e-8) clipped to ±10. (G restarts at 0 with each episode, in ``rollout_act``.)"""
        assert self.reward_norm is not None
        self._discounted.mul_(self.config.gamma).add_(reward)
        self.reward_norm.update(self._discounted)
        scale = torch.sqrt(self.reward_norm.var + self.reward_norm.epsilon).unsqueeze(-1)
        return (reward / scale).clamp(-self.reward_norm.clip, self.reward_norm.clip).to(reward.dtype)

    # -- training data: nothing survives a rollout, so a checkpoint holds none ----------------
    def data_tensors(self, k: int) -> dict[str, Tensor]:
        return {}

    def data_meta(self, k: int) -> dict[str, Any]:
        return {}

    def data_targets(self, k: int) -> dict[str, Tensor]:
        return {}

    def load_data_meta(self, k: int, meta: dict[str, Any]) -> None:
        return None

    # -- the update ---------------------------------------------------------------------------
    def _runner(self) -> Update:
        """The minibatch step as configured (eager, compiled, CUDA graph: ``make_runners``); rebuilt
        when a run setting that changes it does (e.g. on ``--resume``)."""
        cfg = self.config
        compiled = cfg.compiles(self.device.type)
        key = (cfg.fast_update, compiled, cfg.cuda_graph)
        if self._update_fn is None or key != self._runner_key:
            for sub in self.net.modules():
                if isinstance(sub, BatchedMLP):
                    sub.fused = cfg.fast_update
            _, self._update_fn = make_runners(self._draw, self._compute, self.mutable_tensors, self.rng.dev,
                                              self.device, compiled, cfg.cuda_graph)  # fmt: skip
            self._runner_key = key
        return self._update_fn
