"""What an environment returns, checked where softac calls it."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def check_output(space: gym.Space[Any], obs: Any, reward: Any = 0.0) -> None:
    """A ValueError unless the observation fits the space and the reward is one number; raised in
    the environment call, so it exits 4 with one line (these were numpy tracebacks)."""
    arr = np.asarray(obs)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"observation is {type(obs).__name__} of dtype {arr.dtype}, not numbers")
    if space.shape is not None and arr.shape != space.shape:
        raise ValueError(f"observation has shape {arr.shape}, its observation_space says {space.shape}")
    if np.ndim(reward) != 0 or np.asarray(reward).dtype.kind not in "biuf":
        raise ValueError(f"reward must be one number, got {type(reward).__name__} {np.shape(reward)}")
