"""Equal-budget learning comparison, softac vs Stable-Baselines3, on the same seeds.

    .venv/bin/python benchmarks/learning_compare.py --algo sac --env HalfCheetah-v5 --steps 50000 --seeds 0 1 2

Both sides use identical hyper-parameters (those of ``softac bench``, learning_starts 5,000 for
SAC and 25,000 for TD3 unless ``--learning-starts`` is given) and are evaluated the same way at
the end: 10 deterministic episodes from reset seeds 100,000 + k, with softac's evaluation code
applied to each library's policy. Runs go one after another (one per core would be faster but
the speed of one must not be paid by the other). Prints one row per seed and the means.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np


def evaluate_fn(act: Any, env_id: str, episodes: int = 10, seed: int = 100_000) -> float:
    env = gym.make(env_id)
    total = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            ret += float(r)
            done = bool(term or trunc)
        total.append(ret)
    return float(np.mean(total))


def run_softac(algo: str, env_id: str, steps: int, seed: int, learning_starts: int) -> tuple[float, float]:
    from softac.agents import AGENTS

    agent = AGENTS[algo](env_id, total_steps=steps, learning_starts=learning_starts, seed=seed, eval_freq=10**9,
                         eval_episodes=1)  # fmt: skip
    t0 = time.perf_counter()
    agent.learn(progress=False)
    elapsed = time.perf_counter() - t0
    return evaluate_fn(lambda o: agent.predict(o, deterministic=True)[0], env_id), elapsed


def run_sb3(algo: str, env_id: str, steps: int, seed: int, learning_starts: int) -> tuple[float, float]:
    from softac.bench import make_sb3

    model = make_sb3(algo, env_id, learning_starts, seed=seed)
    t0 = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - t0
    return evaluate_fn(lambda o: model.predict(o, deterministic=True)[0], env_id), elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--algo", choices=["sac", "td3"], default="sac")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--learning-starts", type=int, default=None)
    args = p.parse_args()
    ls = args.learning_starts if args.learning_starts is not None else (5_000 if args.algo == "sac" else 25_000)
    print(f"{args.algo.upper()} on {args.env}, {args.steps} steps, learning_starts {ls}")
    print(f"{'seed':>4} {'softac return':>14} {'softac min':>11} {'SB3 return':>11} {'SB3 min':>8}")
    ours, theirs = [], []
    for seed in args.seeds:
        r1, t1 = run_softac(args.algo, args.env, args.steps, seed, ls)
        r2, t2 = run_sb3(args.algo, args.env, args.steps, seed, ls)
        ours.append(r1)
        theirs.append(r2)
        print(f"{seed:>4} {r1:>14.1f} {t1 / 60:>11.1f} {r2:>11.1f} {t2 / 60:>8.1f}", flush=True)
    print(f"mean {statistics.mean(ours):>14.1f} {'':>11} {statistics.mean(theirs):>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
