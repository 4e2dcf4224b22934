"""The arithmetic floor of a training step on this machine: how fast softac could possibly go.

    .venv/bin/python benchmarks/floor.py --env HalfCheetah-v5 [--sb3-steps-per-s 49.5]

Counts the floating-point operations of one update of the fast path (``FlopCounterMode`` over
the real update, so the count follows the code, not a formula), measures this machine's float32
rate on the update's dominant product (two 256×256×256 members in one ``bmm``, at torch's
thread setting; median of repeats), and the environment's own step time (``env.step`` alone,
no wrappers of ours). Their sum is a lower bound for one environment step with one update —
no real implementation reaches it, since the elementwise work, Adam, acting and the Python
around it all cost something. With ``--sb3-steps-per-s`` (SB3's figure from ``softac bench``)
it prints the largest softac/SB3 ratio that bound allows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any


def _median_s(fn: Any, repeats: int = 7, inner: int = 50) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def update_flops(algo: str, env_id: str) -> float:
    """Floating-point operations per update, averaged over ``policy_delay`` updates for TD3."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from update_time import fill

    from softac import registry

    agent = registry.get(algo).agent_cls(env_id, learning_starts=0, buffer_size=10_000)
    fill(agent, 2_000)
    agent.update()  # everything the update allocates once exists from here on
    period = int(getattr(agent.config, "policy_delay", 1))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        for _ in range(period):
            agent.update()
    return counter.get_total_flops() / period


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--algos", nargs="+", default=["sac", "td3"], choices=["sac", "td3", "ddpg"])
    p.add_argument("--sb3-steps-per-s", type=float, nargs="*", default=None,
                   help="SB3's steps/s from `softac bench`, one per algorithm, in --algos order")  # fmt: skip
    args = p.parse_args()
    import gymnasium as gym
    import torch

    x, w = torch.randn(2, 256, 256), torch.randn(2, 256, 256)
    out = torch.empty(2, 256, 256)
    t_gemm = _median_s(lambda: torch.bmm(x, w, out=out))
    rate = 2 * 2 * 256**3 / t_gemm
    env = gym.make(args.env)
    env.reset(seed=0)
    action = env.action_space.sample()

    def env_step() -> None:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    t_env = _median_s(env_step, inner=200)
    print(f"{args.env}, torch threads {torch.get_num_threads()}: float32 rate {rate / 1e9:.1f} GFLOP/s "
          f"(2×256³ bmm), env.step {t_env * 1e3:.3f} ms")  # fmt: skip
    print(f"{'algo':>5} {'MFLOP/update':>13} {'products ms':>12} {'floor ms/step':>14} {'floor steps/s':>14} "
          f"{'SB3 steps/s':>12} {'max ratio':>10}")  # fmt: skip
    for i, algo in enumerate(args.algos):
        flops = update_flops(algo, args.env)
        t_update = flops / rate
        floor = t_update + t_env
        sb3 = args.sb3_steps_per_s[i] if args.sb3_steps_per_s and i < len(args.sb3_steps_per_s) else None
        tail = f"{sb3:>12.1f} {1.0 / floor / sb3:>10.2f}" if sb3 else f"{'-':>12} {'-':>10}"
        row = f"{algo:>5} {flops / 1e6:>13.1f} {t_update * 1e3:>12.2f} {floor * 1e3:>14.2f} {1.0 / floor:>14.1f}"
        print(f"{row} {tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
