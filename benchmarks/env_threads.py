"""Stepping N MuJoCo environments: one after another (a sync vector env's loop) against a thread
pool (MuJoCo's ``mj_step`` releases the GIL; the environment's Python around it does not).

    python benchmarks/env_threads.py [--envs 16] [--steps 300] [--workers 2] [--rounds 3]

Prints the wall time per vector step (all N environments) each way, median of alternating rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np


def run(envs: list[Any], actions: np.ndarray, pool: ThreadPoolExecutor | None) -> float:
    t0 = time.perf_counter()
    for a in actions:
        if pool is None:
            for env, ai in zip(envs, a, strict=True):
                env.step(ai)
        else:
            list(pool.map(lambda pair: pair[0].step(pair[1]), zip(envs, a, strict=True)))
    return (time.perf_counter() - t0) / len(actions)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--envs", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    # No time limit: episodes never end inside the measurement, so no reset is timed.
    envs = [gym.make(args.env, max_episode_steps=10**9) for _ in range(args.envs)]
    for k, env in enumerate(envs):
        env.reset(seed=k)
    act_dim = int(np.prod(envs[0].action_space.shape or (1,)))
    actions = np.random.default_rng(0).uniform(-1, 1, (args.steps, args.envs, act_dim)).astype(np.float32)
    loop: list[float] = []
    threaded: list[float] = []
    with ThreadPoolExecutor(args.workers) as pool:
        for r in range(args.rounds):
            for mode in ("loop", "threads") if r % 2 == 0 else ("threads", "loop"):
                (loop if mode == "loop" else threaded).append(run(envs, actions, None if mode == "loop" else pool))
    lm, tm = statistics.median(loop) * 1e3, statistics.median(threaded) * 1e3
    print(f"{args.envs} × {args.env}, {args.steps} steps × {args.rounds} rounds: loop {lm:.2f} ms, "
          f"{args.workers} threads {tm:.2f} ms per vector step (loop/threads {lm / tm:.2f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
