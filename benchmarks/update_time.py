"""Time of one gradient update, the same autograd update three ways, side by side.

    .venv/bin/python benchmarks/update_time.py --env HalfCheetah-v5 --rounds 5

Three agents with identical settings (default networks and batch size) and the same replay data
take turns — ``compile_update=True`` (torch.compile), the default (the fused layer stack,
``softac.nn.fused``), ``fast_update=False`` (every layer from separate autograd ops) — each round
running ``--updates`` updates on each, in an order rotated every round (compilation happens in
the untimed warm-up). Prints the medians over rounds of the median ms per update, and the ratios
to the autograd update. Also prints the Python/dispatch overhead, measured the same way with 8-unit networks and
batch 8 (where the arithmetic is negligible).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np

VARIANTS = {
    "compiled": {"compile_update": True},
    "fused": {},
    "plain": {"fast_update": False},
}


def _agent(algo: str, env_id: str, variant: str, **overrides: Any) -> Any:
    from softac import registry

    settings = {"learning_starts": 0, "buffer_size": 10_000, **VARIANTS[variant], **overrides}
    agent = registry.get(algo).agent_cls(env_id, **settings)
    fill(agent, 10_000)
    return agent


def fill(agent: Any, n: int) -> None:
    """n random transitions in every learner's replay region (Gaussian observations and rewards)."""
    rng = np.random.default_rng(0)
    o, a, lead = agent.spec.obs_dim, agent.spec.act_dim, (agent.learners, n)
    agent.buffer.add_all(agent.buffer.rows(
        rng.normal(size=(*lead, o)).astype(np.float32),
        rng.uniform(-1, 1, size=(*lead, a)).astype(np.float32),
        rng.normal(size=lead).astype(np.float32),
        np.zeros(lead, dtype=np.float32),
        rng.normal(size=(*lead, o)).astype(np.float32),
    ))  # fmt: skip


def _median_ms(agent: Any, updates: int) -> float:
    times = []
    for _ in range(updates):
        t0 = time.perf_counter()
        agent.update()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def compare(algo: str, env_id: str, rounds: int, updates: int, **overrides: Any) -> dict[str, float]:
    agents = {name: _agent(algo, env_id, name, **overrides) for name in VARIANTS}
    for agent in agents.values():
        _median_ms(agent, 50)  # warm-up: allocations, optimizer state, compilation
    results: dict[str, list[float]] = {name: [] for name in agents}
    names = list(agents)
    for r in range(rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            results[name].append(_median_ms(agents[name], updates))
    return {name: statistics.median(v) for name, v in results.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--algos", nargs="+", default=["sac", "td3"], choices=["sac", "td3", "ddpg"])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=200, help="updates per agent per round")
    args = p.parse_args()
    import torch

    print(f"{args.env}, torch threads {torch.get_num_threads()}, {args.rounds} rounds × {args.updates} updates")
    print(f"{'algo':>5} {'networks':>9} {'compiled ms':>12} {'fused ms':>9} {'plain ms':>9} "
          f"{'plain/compiled':>15} {'plain/fused':>12}")  # fmt: skip
    for algo in args.algos:
        for label, overrides in (("256x256", {}), ("8x8 (*)", {"hidden_sizes": (8, 8), "batch_size": 8})):
            ms = compare(algo, args.env, args.rounds, args.updates, **overrides)
            c, f, a = ms["compiled"], ms["fused"], ms["plain"]
            print(f"{algo:>5} {label:>9} {c:>12.2f} {f:>9.2f} {a:>9.2f} {a / c:>15.2f} {a / f:>12.2f}", flush=True)
    print("(*) batch 8 and 8-unit layers: almost no arithmetic, i.e. the per-update Python/dispatch overhead")
    return 0


if __name__ == "__main__":
    sys.exit(main())
