"""Is ``softac/PixelReach-v0`` learnable from its pixels in a few thousand steps? An outside check,
before softac trains on images: Stable-Baselines3's SAC with a small CNN (two 3×3 convolutions, a
50-wide LayerNorm + tanh head as DrQ-v2's), on the CPU, one thread. Prints the deterministic policy's
mean return over 10 held-out seeds, next to random actions and the scripted greedy controller.

    PYTHONPATH=src .venv/bin/python benchmarks/pixel_reach_sb3.py --steps 3000 --fixed-target
    PYTHONPATH=src .venv/bin/python benchmarks/pixel_reach_sb3.py --steps 5000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from softac.envs import make_env
from softac.tasks import PIXEL_REACH_ID, greedy_action


class SmallCNN(BaseFeaturesExtractor):
    """Two 3×3 convolutions (stride 2 then 1), then Linear → LayerNorm → tanh, as DrQ-v2's head."""

    def __init__(self, space: gym.spaces.Box, features_dim: int = 50) -> None:
        super().__init__(space, features_dim)
        channels = int(space.shape[0])  # SB3 hands images channel-first
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, 3, 2), nn.ReLU(), nn.Conv2d(16, 16, 3, 1), nn.ReLU(), nn.Flatten()
        )
        with torch.no_grad():
            flat = int(self.cnn(torch.zeros(1, *space.shape)).shape[1])
        self.head = nn.Sequential(nn.Linear(flat, features_dim), nn.LayerNorm(features_dim), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cnn(x))


def mean_return(
    kwargs: list[tuple[str, Any]], policy: Callable[[gym.Env, Any], np.ndarray], episodes: int = 10
) -> float:
    env = make_env(PIXEL_REACH_ID, kwargs)
    returns = []
    for seed in range(1000, 1000 + episodes):  # seeds the training never reset to
        obs, _ = env.reset(seed=seed)
        total = 0.0
        while True:
            obs, reward, terminated, truncated, _ = env.step(policy(env, obs))
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    return float(np.mean(returns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed-target", action="store_true", help="target at (0.5, 0.5) instead of drawn at reset")
    args = parser.parse_args()
    torch.set_num_threads(1)
    kwargs: list[tuple[str, Any]] = [("target", (0.5, 0.5))] if args.fixed_target else []
    model = SAC(
        "CnnPolicy",
        make_env(PIXEL_REACH_ID, kwargs),
        seed=args.seed,
        learning_starts=500,
        buffer_size=args.steps,
        batch_size=128,
        policy_kwargs={"features_extractor_class": SmallCNN, "share_features_extractor": False, "net_arch": [64, 64]},
    )
    start = time.perf_counter()
    model.learn(args.steps)
    seconds = time.perf_counter() - start
    rng = np.random.default_rng(0)
    sac = mean_return(kwargs, lambda env, obs: model.predict(obs, deterministic=True)[0])
    random = mean_return(kwargs, lambda env, obs: rng.uniform(-1.0, 1.0, 2).astype(np.float32))
    greedy = mean_return(kwargs, lambda env, obs: greedy_action(env))
    print(
        f"steps={args.steps} seed={args.seed} fixed_target={args.fixed_target} train_s={seconds:.0f} "
        f"sac={sac:.1f} random={random:.1f} greedy={greedy:.1f}"
    )


if __name__ == "__main__":
    main()
