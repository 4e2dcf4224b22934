"""Stepping the environments and turning steps into transitions.

Termination vs truncation is decided here, once (DESIGN.md principle 5): the transition's ``d`` is
``terminated`` alone; a time-limit truncation ends the episode but its transition still bootstraps
from the real final observation, which the vector env returns because its autoreset is disabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from softac.envs import ActionScaler, get_rng_states, set_rng_states
from softac.errors import SoftacError


@dataclass
class Transitions:
    obs: np.ndarray
    action: np.ndarray  # normalised to [−1, 1]
    reward: np.ndarray
    terminated: np.ndarray
    next_obs: np.ndarray
    episode_returns: list[float] = field(default_factory=list)  # episodes that ended this step
    episode_lengths: list[int] = field(default_factory=list)


class Collector:
    def __init__(
        self, envs: gym.vector.VectorEnv, scaler: ActionScaler, seed: int, skip_nonfinite: bool = False
    ) -> None:
        self.envs = envs
        self.scaler = scaler
        self.n = envs.num_envs
        self.seed = seed
        self.skip_nonfinite = skip_nonfinite
        obs_dim = int(np.prod(envs.single_observation_space.shape or (1,)))
        self.obs: np.ndarray = np.zeros((self.n, obs_dim), dtype=np.float32)
        self.needs_reset = np.ones(self.n, dtype=bool)
        self._seeded = False  # the first reset seeds sub-env i with seed + i
        self.ep_return = np.zeros(self.n)
        self.ep_length = np.zeros(self.n, dtype=np.int64)

    # -- state for checkpoints --------------------------------------------------------------
    def at_episode_boundary(self) -> bool:
        """True when every environment is between episodes (a resume then continues exactly)."""
        return bool(self.needs_reset.all())

    def state(self) -> dict[str, Any]:
        return {"rng": get_rng_states(self.envs), "at_episode_boundary": self.at_episode_boundary()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: restore each env's generator and start fresh episodes.

        At an episode boundary this reproduces the uninterrupted run exactly (the reset draws
        from the same generator state). Mid-episode, the simulator state is not in the
        checkpoint, so the partial episodes restart from a reset; the transitions they had
        produced are already complete in the buffer (transitions are added whole, per step).
        """
        set_rng_states(self.envs, state["rng"])
        self._seeded = True
        self.needs_reset[:] = True

    # -- stepping ---------------------------------------------------------------------------
    def _check_finite(self, what: str, values: np.ndarray, step: int) -> np.ndarray:
        """Boolean mask of sub-envs whose values are all finite; raise unless skipping."""
        ok = np.isfinite(values.reshape(self.n, -1)).all(axis=1)
        if not ok.all() and not self.skip_nonfinite:
            env_index = int(np.flatnonzero(~ok)[0])
            raise SoftacError(
                f"environment {env_index} returned a non-finite {what} at step {step}; fix the environment "
                "or pass --skip-nonfinite to drop such transitions"
            )
        return ok

    def _reset(self, step: int) -> None:
        if not self._seeded:
            obs, _ = self.envs.reset(seed=self.seed)
            self._seeded = True
            mask = np.ones(self.n, dtype=bool)
        else:
            mask = self.needs_reset.copy()
            obs, _ = self.envs.reset(options={"reset_mask": mask})
        obs = np.asarray(obs, dtype=np.float32)
        bad = ~self._check_finite("observation after reset", obs, step)
        if (bad & mask).any():
            raise SoftacError(f"environment returned a non-finite observation after reset at step {step}")
        self.obs[mask] = obs[mask]
        self.ep_return[mask] = 0.0
        self.ep_length[mask] = 0
        self.needs_reset[mask] = False

    def observe(self, step: int) -> np.ndarray:
        """The current observations (n, obs_dim), resetting the envs whose episode ended."""
        if self.needs_reset.any() or not self._seeded:
            self._reset(step)
        return self.obs

    def step(self, action: np.ndarray, step: int) -> Transitions:
        """Step every env with ``action`` in [−1, 1]^(n, act_dim); ``step`` names errors."""
        self.observe(step)
        next_obs, reward, terminated, truncated, _ = self.envs.step(self.scaler.to_env(action))
        next_obs = np.asarray(next_obs, dtype=np.float32)
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool)
        done = terminated | np.asarray(truncated, dtype=bool)
        ok = self._check_finite("observation", next_obs, step) & self._check_finite("reward", reward, step)

        self.ep_return += np.where(ok, reward, 0.0)
        self.ep_length += 1
        returns = [float(r) for r in self.ep_return[done & ok]]
        lengths = [int(n) for n in self.ep_length[done & ok]]
        out = Transitions(
            obs=self.obs[ok].copy(),
            action=np.asarray(action, dtype=np.float32)[ok],
            reward=reward[ok].astype(np.float32),
            terminated=terminated[ok].astype(np.float32),
            next_obs=next_obs[ok],
            episode_returns=returns,
            episode_lengths=lengths,
        )
        self.obs = next_obs
        # A dropped (non-finite) step ends that env's episode: its state can no longer be trusted.
        self.needs_reset = done | ~ok
        return out
