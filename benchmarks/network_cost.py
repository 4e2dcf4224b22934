"""Cost of one SAC/TD3 update with SimBa networks against the default MLP, side by side.

    PYTHONPATH=src .venv/bin/python benchmarks/network_cost.py --env Pendulum-v1 --rounds 5

Agents with the same batch and replay data take turns, in an order rotated every round; each round
times ``--updates`` updates per agent. Prints the median over rounds of the ms per update and the
ratio to the same algorithm's MLP update. One thread (the test machine's share of its cores).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from softac.algos.sac import SAC
from softac.algos.td3 import TD3

VARIANTS: dict[str, tuple[type, dict[str, Any]]] = {
    "sac mlp 256x256": (SAC, {}),
    "sac simba (paper widths)": (SAC, {"network": "simba"}),
    "td3 mlp 256x256": (TD3, {"policy_delay": 1}),
    "td3 simba (paper widths)": (TD3, {"network": "simba", "policy_delay": 1}),
}


def _fill(agent: Any, n: int) -> None:
    rng = np.random.default_rng(0)
    spec = agent.spec
    obs = rng.normal(size=(n, spec.obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(n, spec.act_dim)).astype(np.float32)
    rows = agent.buffer.rows(obs[None], act[None], rng.normal(size=(1, n)).astype(np.float32),
                             np.zeros((1, n), np.float32), obs[None])  # fmt: skip
    agent.buffer.add_all(rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    agents = {k: cls(args.env, threads=1, device="cpu", buffer_size=4096, **kw) for k, (cls, kw) in VARIANTS.items()}
    for a in agents.values():
        _fill(a, 4096)
        for _ in range(3):
            a.update()
    times: dict[str, list[float]] = {k: [] for k in agents}
    names = list(agents)
    for r in range(args.rounds):
        for k in names[r % len(names):] + names[: r % len(names)]:
            t = time.perf_counter()
            for _ in range(args.updates):
                agents[k].update()
            times[k].append(1e3 * (time.perf_counter() - t) / args.updates)
    for k in names:
        base = "sac mlp 256x256" if k.startswith("sac") else "td3 mlp 256x256"
        med = statistics.median(times[k])
        print(f"{k:28s} {med:8.2f} ms/update  ×{med / statistics.median(times[base]):.2f}")


if __name__ == "__main__":
    main()
