"""What every off-policy agent shares: the replay buffer, acting (warm-up, exploration, the
deterministic policy), the update schedule, and running the update through ``softac.accel``.

An algorithm provides its networks and optimizers (``_build``), its policy (``self.policy``: a
module with a batched-MLP ``trunk`` and a ``head(xp, out, noise)`` written once for torch and
numpy), its exploration noise, and its update as ``_draw(phase)`` (random draws) and
``_compute(draws, phase)`` (losses, autograd, optimizer steps, targets; in place).
"""

from __future__ import annotations

import abc
import sys
from collections.abc import Hashable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac import memory
from softac.accel.runner import Update, make_runners
from softac.algos.base import Agent
from softac.collector import Transitions
from softac.config import OffPolicyConfig, PrioritizedReplayConfig
from softac.config_goals import GoalReplayConfig
from softac.data.her import HerReplay
from softac.data.nstep import NStepAccumulator, Row
from softac.data.per import PrioritizedReplay
from softac.data.pixel_replay import PixelReplay
from softac.data.replay import ReplayBuffer, RowsOutOfRange
from softac.errors import SoftacError
from softac.goals import goal_reward
from softac.nn import BatchedMLP, GaussianActor, Policy, numpy_forward
from softac.obs import learner_observations

# The numpy acting path serves at most this many rows: for one environment per learner the
# action is a few vector–matrix products, where torch's fixed cost per op (dispatch, tensor
# creation, waking its thread pool) made it 0.3–0.5 ms of a ≈9 ms training step on 2 cores and
# numpy takes ≈0.05 ms. Beyond a handful of rows numpy's BLAS would start its own thread pool,
# whose spinning threads compete with torch's for the cores.
_NUMPY_ROWS = 16


class OffPolicyAgent(Agent):
    family = "off-policy"
    config: OffPolicyConfig
    policy: Policy

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg, spec = self.config, self.spec
        self.buffer = self._replay(discount_column=cfg.n_step > 1)
        # n-step returns accumulate on the host where transitions enter the buffer; None for n = 1,
        # whose rows (and speed) stay exactly those of one-step TD.
        self.nstep = (
            NStepAccumulator(self.learners, cfg.n_envs, cfg.n_step, cfg.gamma, spec.obs_dim, spec.act_dim)
            if cfg.n_step > 1
            else None
        )
        # Why raw storage, normalised at sampling with the current statistics (as SB3's off-policy
        # algorithms with VecNormalize do): the networks then always see observations on one scale,
        # the one they act with, however old the transition.
        self.buffer.normaliser = self.obs_norm
        self._runner: Update | None = None
        self._inner: Update | None = None
        self._runner_key: tuple[bool, bool, bool] | None = None
        self._np_cache: dict[int, Any] = {}

    # -- what an algorithm provides ---------------------------------------------------------
    @abc.abstractmethod
    def _exploration_noise(self, rows: int) -> Tensor | None:
        """The behaviour noise for ``rows`` observations per learner (L, rows, act_dim) from the
        learners' streams, as ``self.policy.head`` takes it; None when the policy acts without."""

    @abc.abstractmethod
    def _draw(self, phase: Hashable) -> Any:
        """The update's random draws: a replay batch, noise."""

    @abc.abstractmethod
    def _compute(self, draws: Any, phase: Hashable) -> dict[str, Tensor]:
        """The update itself, in place; metrics as tensors of shape (L,)."""

    def _replay(self, discount_column: bool) -> ReplayBuffer:
        """The replay buffer: prioritized (``softac.data.per``) with ``per``, whose algorithms' critic
        losses take ``Batch.weight`` and return |δ| as the metric ``per/td``; relabelling hindsight
        goals (``softac.data.her``) with ``her``; rows and a frame ring (``softac.data.pixel_replay``)
        for an image observation; plain otherwise."""
        cfg, spec = self.config, self.spec
        args = (self.learners, cfg.buffer_size, spec.obs_dim, spec.act_dim, self.device)
        if self.pixels is not None:
            return PixelReplay(*args, pixels=self.pixels, envs=cfg.n_envs, augment=getattr(cfg, "augment", "none"))
        if isinstance(cfg, GoalReplayConfig) and cfg.her:
            return HerReplay(*args, layout=spec.obs_layout, compute_reward=goal_reward(self.env_source, spec),
                             k=cfg.her_k, strategy=cfg.her_strategy, env_name=spec.env_id)  # fmt: skip
        if isinstance(cfg, PrioritizedReplayConfig) and cfg.per:
            return PrioritizedReplay(*args, discount_column=discount_column, alpha=cfg.per_alpha, beta=cfg.per_beta,
                                     eps=cfg.per_eps)  # fmt: skip
        return ReplayBuffer(*args, discount_column=discount_column)

    def update_phase(self, index: int) -> Hashable:
        """Which variant update number ``index`` (counting from 0) is, decided on the host from the
        counter alone (so a resumed run and a graph of several updates agree)."""
        return None

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        # Only the rows this run fills are touched (torch.empty reserves, pages come as rows are
        # written): a 1M buffer for a 20k-step run must not be refused on a small machine.
        cfg = self.config if cfg is None else cfg
        spec, n = self.spec, self.learners
        rows = min(cfg.buffer_size, cfg.total_steps)
        out = {"replay buffer": memory.replay_buffer(n, rows, spec.obs_dim, spec.act_dim, cfg.n_step > 1),
               **super().memory_estimate(cfg)}  # fmt: skip
        if isinstance(cfg, PrioritizedReplayConfig) and cfg.per:
            out["priority tree"] = memory.priority_tree(n, cfg.buffer_size)
        if cfg.n_step > 1:
            out["n-step window"] = memory.nstep_window(n, cfg.n_envs, cfg.n_step, spec.obs_dim, spec.act_dim)
        if isinstance(cfg, GoalReplayConfig) and cfg.her:  # two int64 per row, filled up front (softac.data.her)
            out["hindsight episode bounds"] = n * cfg.buffer_size * 16
        if self.pixels is not None:
            out.update(memory.pixel_parts(n, rows, self.pixels, cfg))
        return out

    def memory_reserved(self, cfg: Any = None) -> dict[str, int]:
        cfg = self.config if cfg is None else cfg
        spec = self.spec
        out = {"replay buffer": memory.replay_buffer(self.learners, cfg.buffer_size, spec.obs_dim, spec.act_dim,
                                                     cfg.n_step > 1)}  # fmt: skip
        if self.pixels is not None:  # the frame ring is one allocation, touched as it fills
            out["frame buffer"] = memory.frame_buffer(self.learners, cfg.buffer_size, self.pixels, cfg.n_envs)
        return out

    def check_before_allocating(self) -> None:
        """n-step returns no longer than an episode: with n above the time limit every row would
        be a truncated tail, and the window's memory would be spent on steps that never come."""
        limit = self.spec.max_episode_steps
        if limit is not None and self.config.n_step > limit:
            raise SoftacError(f"n_step ({self.config.n_step}) must not exceed the episode length of "
                              f"{self.config.env_id} ({limit} steps): use n_step={limit} or less")  # fmt: skip
        super().check_before_allocating()

    # -- acting -----------------------------------------------------------------------------
    def updates_due(self) -> int:
        """Gradient steps owed at the current step count: ⌊(t − learning_starts) · utd⌋ − done.
        Derived from the counters alone, so a resumed run schedules exactly the same updates."""
        owed = int((self.env_steps - self.config.learning_starts) * self.config.utd_ratio)
        return max(0, owed - self.updates)

    def prepare_explore(self, step: int) -> None:
        """Set what the behaviour policy reads from the host's schedules for acting at environment
        step ``step`` (DQN's ε), in place in device tensors: the step graph replays the behaviour
        action from its capture, so nothing host-decided may be baked into it. Called before every
        exploring action, by ``explore`` and by ``softac.accel.step_graph`` before it replays."""

    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Behaviour actions (L, n, act_dim): uniform during warm-up (in [−1, 1]; for a Discrete
        space a uniformly drawn action index, as SB3's random warm-up actions), then the policy's.
        The observations join the running statistics (``normalize_obs``), warm-up included."""
        rows = obs.shape[1]
        obs = self._normalised(obs, update=True)
        if self.env_steps < self.config.learning_starts:
            u = self.rng.uniform_(torch.empty((self.learners, rows, self.spec.act_dim)), host=True)
            if self.spec.action_kind == "Discrete":
                return (u * self.spec.n_actions).floor_().clamp_(max=self.spec.n_actions - 1).numpy()
            return (u * 2.0 - 1.0).numpy()
        self.prepare_explore(self.env_steps)
        return self._policy(obs, self._exploration_noise(rows))

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions in [−1, 1] for observations (L, B, obs_dim) → (L, B, act_dim); a single learner
        also takes (B, obs_dim) → (B, act_dim), as in softac 0.1."""
        obs, flat = learner_observations(obs, self.learners, self.obs_width)
        obs = self._normalised(obs, update=False)
        if not deterministic:
            self.prepare_explore(self.env_steps)
        out = self._policy(obs, None if deterministic else self._exploration_noise(obs.shape[1]))
        return out[0] if flat else out

    def _normalised(self, obs: np.ndarray, update: bool) -> np.ndarray:
        if self.obs_norm is None:
            return obs
        return self.network_input(obs, update).cpu().numpy()

    def _policy(self, obs: np.ndarray, noise: Tensor | None) -> np.ndarray:
        obs = np.ascontiguousarray(obs, dtype=np.float32)
        trunk = self.policy.trunk
        if (
            self.device.type == "cpu"
            and self.config.fast_update
            and obs.shape[0] * obs.shape[1] <= _NUMPY_ROWS
            and trunk.plain_relu
        ):
            out = numpy_forward(trunk, obs, self._np_cache)
            action = self.policy.head(np, out, None if noise is None else noise.numpy())
            return np.asarray(action, dtype=np.float32)
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs).to(self.device, non_blocking=True)
            action_t: Tensor = self.policy.head(torch, trunk(obs_t), noise)
            return action_t.cpu().numpy()

    # -- data -------------------------------------------------------------------------------
    def add_transitions(self, tr: Transitions) -> None:
        if self.nstep is not None:
            self._add_nstep(self.nstep, tr)
            return
        rows = self.buffer.rows(tr.obs, tr.action, tr.reward, tr.terminated, tr.next_obs)
        if tr.ok.all():
            self.buffer.add_all(rows)
        else:
            for k in range(self.learners):
                self.buffer.add(k, rows[k][tr.ok[k]])
            self.buffer.sync_size()
        if isinstance(self.buffer, HerReplay):  # one env per learner (GoalReplayConfig): episodes in order
            for k in range(self.learners):
                self.buffer.record(k, stored=bool(tr.ok[k, 0]), ends=bool(tr.done[k, 0] or not tr.ok[k, 0]))
        if isinstance(self.buffer, PixelReplay) and tr.frames is not None and tr.next_frames is not None:
            self.buffer.add_frames(tr.frames, tr.next_frames, tr.done, tr.ok)

    def cut_episodes(self) -> None:
        """Collection starts fresh episodes: pending n-step tails end here (``NStepAccumulator.cut``)."""
        if self.nstep is not None:
            self._store_completed(self.nstep.cut())
        if isinstance(self.buffer, HerReplay):  # the running episodes end at their newest step
            for k in range(self.learners):
                self.buffer.close(k)
        if isinstance(self.buffer, PixelReplay):
            self.buffer.cut()

    def _add_nstep(self, acc: NStepAccumulator, tr: Transitions) -> None:
        self._store_completed(acc.push(tr.obs, tr.action, tr.reward, tr.terminated, tr.done, tr.next_obs, tr.ok))

    def _store_completed(self, completed: list[list[Row]]) -> None:
        for k, rows in enumerate(completed):
            if rows:
                cols = [np.stack(c) for c in zip(*rows, strict=True)]
                self.buffer.add(k, self.buffer.rows(*cols))
        self.buffer.sync_size()

    def data_tensors(self, k: int) -> dict[str, Tensor]:
        if self.nstep is not None:
            return {**self.buffer.state_tensors(k), **self.nstep.state_tensors(k)}
        return self.buffer.state_tensors(k)

    def data_meta(self, k: int) -> dict[str, Any]:
        meta = {"size": int(self.buffer.size[k]), "cursor": int(self.buffer.cursor[k])}
        if isinstance(self.buffer, PixelReplay):
            meta.update(self.buffer.frame_meta(k))
        return {**meta, **self.buffer.episode_meta(k)} if isinstance(self.buffer, HerReplay) else meta

    def data_targets(self, k: int) -> dict[str, Tensor]:
        if self.nstep is not None:
            return {**self.buffer.targets(k), **self.nstep.targets(k)}
        return self.buffer.targets(k)

    def load_data_meta(self, k: int, meta: dict[str, Any]) -> None:
        size, cursor = meta["size"], meta["cursor"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= self.buffer.capacity
                   for v in (size, cursor)):  # fmt: skip
            raise ValueError(f"size {size!r} / cursor {cursor!r} do not fit a buffer of {self.buffer.capacity}")
        self.buffer.set_fill(k, size, cursor)
        problem = self.buffer.row_problem(k, self.spec.n_actions if self.spec.action_kind == "Discrete" else None)
        if problem is not None:
            raise RowsOutOfRange(problem)
        if self.nstep is not None:
            self.nstep.check(k)
        if isinstance(self.buffer, HerReplay):
            self.buffer.load_episode_meta(k, meta)
        if isinstance(self.buffer, PixelReplay):
            self.buffer.load_frame_meta(k, meta)

    # -- the update -------------------------------------------------------------------------
    def _runners(self) -> tuple[Update, Update]:
        """(inner, outer) as ``softac.accel.runner.make_runners`` builds them for the current
        config; rebuilt when a run setting that changes them does (e.g. on ``--resume``)."""
        cfg = self.config
        # Hindsight relabelling samples on the host (softac.data.her): never inside a CUDA graph.
        compiled, graphs = cfg.compiles(self.device.type), cfg.cuda_graph and not self.buffer.relabels
        user_encoder = self.encoder_spec[0] is not None
        if (user_encoder and (compiled or graphs)) or (self.pixels is not None and graphs):
            # The user's encoder runs eagerly: compiled, its gradients came out different from the
            # eager update's (measured: Adam moments 0.16 apart after one update, where without an
            # encoder the two agree to 1e-7); its functional_call under vmap is the suspect, since
            # the image encoder, plain grouped convolutions, compiles equal to eager (3e-8 after
            # three updates; tests/test_pixels.py). CUDA graphs of either are untested.
            if (compiled and user_encoder) or (graphs and self.device.type == "cuda"):
                what = "image observations" if self.pixels is not None else "encoder="
                forms = "no CUDA graph" if self.pixels is not None else "no torch.compile, no CUDA graph"
                print(f"softac: note: a model with {what} updates eagerly ({forms}): those forms are not yet held "
                      "equal to the eager update with an encoder", file=sys.stderr)  # fmt: skip
            compiled = compiled and not user_encoder
            graphs = False
        key = (cfg.fast_update, compiled, graphs)
        if self._runner is None or self._inner is None or key != self._runner_key:
            for module in self.modules().values():
                for sub in module.modules():
                    if isinstance(sub, BatchedMLP | GaussianActor):
                        sub.fused = cfg.fast_update
            self._inner, self._runner = make_runners(self._draw, self._compute, self.mutable_tensors, self.rng.dev,
                                                     self.device, compiled, graphs)  # fmt: skip
            self._runner_key = key
        return self._inner, self._runner

    def run_update(self, phase: Hashable) -> dict[str, Tensor]:
        """One update of variant ``phase`` run in place, as part of a larger step (no counter, no
        CUDA graph of its own: ``softac.accel.step_graph`` captures it with the rest)."""
        return self._runners()[0](phase)

    def update(self) -> dict[str, Tensor]:
        """One gradient step of every learner; returns detached metrics of shape (L,) (no host
        sync). Runs eagerly, compiled, or from a CUDA graph, as configured."""
        if len(self.buffer) == 0:
            raise SoftacError("cannot update from an empty replay buffer: collect transitions first")
        per = self.buffer if isinstance(self.buffer, PrioritizedReplay) else None
        if per is not None:  # prioritized replay: β for this update, then the new priorities
            per.anneal(self.env_steps / self.config.total_steps)
        metrics = self._runners()[1](self.update_phase(self.updates))
        if per is not None:
            metrics = per.prioritize(metrics)
        self.updates += 1
        return metrics
