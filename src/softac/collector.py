"""Stepping the environments and turning steps into transitions.

Termination vs truncation is decided here, once (DESIGN.md principle 5): the transition's ``d`` is
``terminated`` alone; a time-limit truncation ends the episode but its transition still bootstraps
from the real final observation, which the vector env returns because its autoreset is disabled.

A batched run steps L learners × n environments in one vector env, learner-major: sub-env
(k, i) is seeded with learner k's seed + i, exactly as environment i of a single run with that
seed, so learner k sees the same episodes either way. Arrays come back shaped (L, n, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from softac.env_rng import get_rng_states, set_rng_states
from softac.errors import EnvError, SoftacError
from softac.obs import ObsLayout
from softac.pixels import FrameStacks, PixelSpec
from softac.success import vector_success


@dataclass
class Transitions:
    obs: np.ndarray  # (L, n, obs_dim)
    action: np.ndarray  # (L, n, act_dim), in the library's action space
    reward: np.ndarray  # (L, n) float32
    terminated: np.ndarray  # (L, n) float32
    next_obs: np.ndarray  # (L, n, obs_dim)
    ok: np.ndarray  # (L, n) bool: False for a dropped (non-finite) step
    done: np.ndarray  # (L, n) bool: the episode ended (terminated or truncated); n-step returns' cut
    # per learner, the episodes that ended this step
    episode_returns: list[list[float]] = field(default_factory=list)
    episode_lengths: list[list[int]] = field(default_factory=list)
    # parallel to episode_returns: the flag at each ended episode's last step, None where not reported
    episode_successes: list[list[float | None]] = field(default_factory=list)
    # with an image key (softac.pixels): the newest frame of s and of s', (L, n, *chw) uint8
    frames: np.ndarray | None = None
    next_frames: np.ndarray | None = None


class Collector:
    def __init__(
        self,
        envs: gym.vector.VectorEnv,
        to_env: Any,
        seeds: Sequence[int],
        skip_nonfinite: bool = False,
        env_name: str = "the environment",
        layout: ObsLayout | None = None,
        pixels: PixelSpec | None = None,
    ) -> None:
        """``to_env`` maps the library's actions to the environment's (``ActionScaler.to_env``);
        ``seeds`` holds one base seed per learner (sub-env i of learner k is seeded seeds[k] + i)."""
        self.envs = envs
        self.to_env = to_env
        self.L = len(seeds)
        self.n = envs.num_envs // self.L
        if self.n * self.L != envs.num_envs:
            raise ValueError(f"{envs.num_envs} environments do not split evenly over {self.L} learners")
        self.reset_seeds = [int(s) + i for s in seeds for i in range(self.n)]
        self.skip_nonfinite = skip_nonfinite
        self.env_name = env_name
        # How the environments' observations become rows (softac.obs): a flat Box as is, a Dict or
        # a Discrete space flattened to its columns.
        self.layout = layout if layout is not None else ObsLayout.of(envs.single_observation_space, env_name)
        obs_dim = self.layout.dim
        self.obs: np.ndarray = np.zeros((self.L * self.n, obs_dim), dtype=np.float32)
        self.needs_reset = np.ones(self.L * self.n, dtype=bool)
        self._seeded = False  # the first reset seeds every sub-env
        self.ep_return = np.zeros(self.L * self.n)
        self.ep_length = np.zeros(self.L * self.n, dtype=np.int64)
        # With an image key: each environment's newest frame and its stack of the last K (acting).
        self.pixels = pixels
        self.stacks = FrameStacks(pixels, self.L * self.n) if pixels is not None else None
        self.frame = np.zeros((self.L * self.n, *pixels.chw), dtype=np.uint8) if pixels is not None else None

    # -- state for checkpoints --------------------------------------------------------------
    def at_episode_boundary(self, k: int) -> bool:
        """True when every environment of learner k is between episodes (a resume then continues
        exactly)."""
        return bool(self.needs_reset[k * self.n : (k + 1) * self.n].all())

    def state(self, k: int) -> dict[str, Any]:
        rng = get_rng_states(self.envs)[k * self.n : (k + 1) * self.n]
        return {"rng": rng, "at_episode_boundary": self.at_episode_boundary(k)}

    def restore(self, states: Sequence[dict[str, Any]]) -> None:
        """Continue from a checkpoint (one state per learner): restore each env's generator and
        start fresh episodes.

        At an episode boundary this reproduces the uninterrupted run exactly (the reset draws
        from the same generator state). Mid-episode, the simulator state is not in the
        checkpoint, so the partial episodes restart from a reset; the transitions they had
        produced are already complete in the buffer (transitions are added whole, per step).
        """
        set_rng_states(self.envs, [rng for state in states for rng in state["rng"]])
        self._seeded = True
        self.needs_reset[:] = True

    # -- stepping ---------------------------------------------------------------------------
    def _check_finite(self, what: str, values: np.ndarray, step: int) -> np.ndarray:
        """Boolean mask of sub-envs whose values are all finite; raise unless skipping."""
        if np.isfinite(values).all():  # every step but a broken one: one pass, no per-row reduction
            return np.ones(len(values), dtype=bool)
        ok = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not ok.all() and not self.skip_nonfinite:
            env_index = int(np.flatnonzero(~ok)[0])
            if values.ndim == 2 and not self.layout.identity:  # a Dict/Discrete observation: name the key
                column = int(np.flatnonzero(~np.isfinite(values[env_index]))[0])
                what = f"{what} ({self.layout.key_of_column(column).name})"
            raise SoftacError(
                f"environment {env_index} returned a non-finite {what} at step {step}; fix the environment "
                "or pass --skip-nonfinite to drop such transitions"
            )
        return ok

    def _call(self, method: str, step: int, *args: Any, **kwargs: Any) -> Any:
        """``envs.reset``/``envs.step``; an exception from the environment's own code becomes one
        :class:`EnvError` naming the environment, the step and the exception (its traceback kept as
        the cause, shown with ``--debug``)."""
        try:
            return getattr(self.envs, method)(*args, **kwargs)
        except Exception as exc:
            raise EnvError(
                f"the environment {self.env_name} raised {type(exc).__name__} in {method}() at step {step}: {exc}"
            ) from exc

    def _flatten(self, obs: Any, method: str, step: int) -> np.ndarray:
        """The vector env's observations (L·n, ...) as float32 rows (L·n, obs_dim); a value that
        does not fit its space is the environment's error (one line, as in ``_call``)."""
        try:
            return self.layout.flatten(obs, (self.L * self.n,))
        except ValueError as exc:
            raise EnvError(f"the environment {self.env_name} returned from {method}() at step {step}: {exc}") from None

    def _frames(self, obs: Any, method: str, step: int) -> np.ndarray:
        """The image key's frames (L·n, *chw) uint8, channel-first; wrong ones as in ``_flatten``."""
        assert self.pixels is not None
        try:
            return self.pixels.to_chw(self.layout.frames(obs, (self.L * self.n,)))
        except ValueError as exc:
            raise EnvError(f"the environment {self.env_name} returned from {method}() at step {step}: {exc}") from None

    def _reset(self, step: int) -> None:
        if not self._seeded:
            seed: Any = self.reset_seeds if len(self.reset_seeds) > 1 else self.reset_seeds[0]
            obs, _ = self._call("reset", step, seed=seed)
            self._seeded = True
            mask = np.ones(len(self.needs_reset), dtype=bool)
        else:
            mask = self.needs_reset.copy()
            obs, _ = self._call("reset", step, options={"reset_mask": mask})
        if self.stacks is not None and self.frame is not None:
            frames = self._frames(obs, "reset", step)
            self.frame[mask] = frames[mask]
            self.stacks.reset(mask, frames)
        obs = self._flatten(obs, "reset", step)
        bad = ~self._check_finite("observation after reset", obs, step)
        if (bad & mask).any():
            raise SoftacError(f"environment returned a non-finite observation after reset at step {step}")
        self.obs[mask] = obs[mask]
        self.ep_return[mask] = 0.0
        self.ep_length[mask] = 0
        self.needs_reset[mask] = False

    def observe(self, step: int) -> np.ndarray:
        """The current observations (L, n, obs_dim), resetting the envs whose episode ended."""
        if self.needs_reset.any() or not self._seeded:
            self._reset(step)
        if self.stacks is not None:  # the row with the stacks (softac.pixels)
            return self.stacks.rows(self.obs).reshape(self.L, self.n, -1)
        return self.obs.reshape(self.L, self.n, -1)

    def step(self, action: np.ndarray, step: int) -> Transitions:
        """Step every env with ``action`` (L, n, act_dim) in the library's action space; ``step``
        names errors."""
        self.observe(step)
        flat_action = np.asarray(action).reshape(self.L * self.n, *np.shape(action)[2:])
        next_obs, reward, terminated, truncated, infos = self._call("step", step, self.to_env(flat_action))
        next_frames = self._frames(next_obs, "step", step) if self.pixels is not None else None
        next_obs = self._flatten(next_obs, "step", step)
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool)
        done = terminated | np.asarray(truncated, dtype=bool)
        ok = self._check_finite("observation", next_obs, step) & self._check_finite("reward", reward, step)
        # Why the all-kept branches: this runs once per environment step (DQN's CartPole preset: 500k
        # times), and masking with np.where where nothing is masked copies for nothing. Both
        # branches give the same values.
        kept = bool(ok.all())
        stored_next = next_obs if kept else np.where(ok[:, None], next_obs, 0.0)
        if not kept:
            reward = np.where(ok, reward, 0.0)
        self.ep_return += reward
        self.ep_length += 1
        ended = (done & ok).reshape(self.L, self.n)
        returns: list[list[float]] = [[] for _ in range(self.L)]
        lengths: list[list[int]] = [[] for _ in range(self.L)]
        successes: list[list[float | None]] = [[] for _ in range(self.L)]
        # The flag is read at episode ends only (an episode's success is its last step's flag).
        for k, i in zip(*np.nonzero(ended), strict=True) if ended.any() else ():
            j = int(k * self.n + i)
            returns[k].append(float(self.ep_return[j]))
            lengths[k].append(int(self.ep_length[j]))
            where = f"the environment {self.env_name} (step {step})"
            successes[k].append(vector_success(infos, j, self.L * self.n, where))
        shape = (self.L, self.n)
        out = Transitions(
            obs=self.obs.reshape(*shape, -1).copy(),
            action=np.asarray(action, dtype=np.float32).reshape(*shape, -1),
            reward=reward.astype(np.float32).reshape(shape),
            terminated=terminated.astype(np.float32).reshape(shape),
            # a copy (astype copies): self.obs, which is next_obs below, is reset in place, and
            # n-step windows keep the transition's own arrays
            next_obs=stored_next.astype(np.float32).reshape(*shape, -1),
            ok=ok.reshape(shape),
            done=done.reshape(shape),
            episode_returns=returns,
            episode_lengths=lengths,
            episode_successes=successes,
        )
        if next_frames is not None and self.stacks is not None and self.frame is not None:
            out.frames = self.frame.reshape(*shape, *self.frame.shape[1:]).copy()
            out.next_frames = next_frames.reshape(*shape, *next_frames.shape[1:])
            self.frame = next_frames
            self.stacks.push(next_frames)  # an ended episode's stack is refilled at its reset
        self.obs = next_obs
        # A dropped (non-finite) step ends that env's episode: its state can no longer be trusted.
        self.needs_reset = done | ~ok
        return out
