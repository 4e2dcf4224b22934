"""What an environment returns, checked where softac calls it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


def check_output(space: gym.Space[Any], obs: Any, reward: Any = 0.0) -> None:
    """A ValueError unless the observation fits the space and the reward is one number; raised in
    the environment call, so it exits 4 with one line (these were numpy tracebacks)."""
    _check_obs(space, obs, "observation")
    if np.ndim(reward) != 0 or np.asarray(reward).dtype.kind not in "biuf":
        raise ValueError(f"reward must be one number, got {type(reward).__name__} {np.shape(reward)}")


def _check_obs(space: gym.Space[Any], obs: Any, what: str) -> None:
    """Numbers of the space's shape; a Dict space key by key (each key named in the message)."""
    if isinstance(space, gym.spaces.Dict):
        if not isinstance(obs, Mapping):
            raise ValueError(f"{what} is {type(obs).__name__}, its observation_space is a Dict")
        for key, sub in space.spaces.items():
            if key not in obs:
                raise ValueError(f"{what} has no key '{key}' (it has: {', '.join(map(str, obs))})")
            _check_obs(sub, obs[key], f"{what} key '{key}'")
        return
    arr = np.asarray(obs)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} is {type(obs).__name__} of dtype {arr.dtype}, not numbers")
    if space.shape is not None and arr.shape != space.shape:
        raise ValueError(f"{what} has shape {arr.shape}, its observation_space says {space.shape}")
