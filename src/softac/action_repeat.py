"""Action repeat: each action the agent takes is applied ``repeat`` times, the rewards summed.

DrQ-v2 trains on DeepMind Control from pixels with an action repeat of 2 on every task (its
``cfgs/config.yaml``; PlaNet and DrQ used 2 to 8 by domain): fewer decisions, and fewer frames to
render and store per second of simulated time. Gymnasium has no such wrapper (``MaxAndSkipObservation``
returns the maximum of the last two frames, an Atari convention).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym

from softac.errors import SoftacError


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Apply each action ``repeat`` times; the reward is the sum of the rewards received. An episode
    that terminates or is truncated part-way through the repeats stops there (the remaining repeats
    are not taken), and the observation and info are those of the last step taken.

    ``spec`` is the environment's, this wrapper added: its ``max_episode_steps`` still counts the
    environment's own steps (a 1,000-step limit repeated 2 times is 500 agent steps; use
    :func:`agent_steps`). It is not rewritten, because ``gymnasium.make(spec)`` rebuilds the time
    limit from it *inside* the repeat: a rewritten limit would cut episodes ``repeat`` times short."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise SoftacError(f"action repeat must be a positive integer, got {repeat!r}")
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = repeat

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def agent_steps(env: gym.Env) -> int | None:
    """The most steps an agent takes in an episode of ``env``: the registration's time limit divided,
    rounded up, by every :class:`ActionRepeat` in ``env``'s wrappers; None without a time limit."""
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    if not isinstance(limit, int):
        return None
    layer: Any = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, ActionRepeat):
            limit = math.ceil(limit / layer.repeat)
        layer = layer.env
    return limit
