"""Deterministic evaluation on a separate environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from softac.agents.base import OffPolicyAgent

EVAL_SEED_OFFSET = 100_000


def evaluate(agent: OffPolicyAgent, env: gym.Env, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` episodes of the deterministic policy (tanh(μ) for SAC, μ for TD3).

    Episode k starts from ``env.reset(seed=seed + k)``: every evaluation of a run sees the same
    start states (comparable points on the curve), and evaluation never draws from the training
    random streams, so it cannot change what training does.
    """
    returns = np.zeros(episodes)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done = False
        while not done:
            action = agent.act(np.asarray(obs, dtype=np.float32)[None], deterministic=True)[0]
            obs, reward, terminated, truncated, _ = env.step(agent.scaler.to_env(action))
            returns[k] += float(reward)
            done = bool(terminated or truncated)
    return returns
