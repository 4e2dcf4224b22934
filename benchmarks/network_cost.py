"""Cost of one update with each option (SimBa, LayerNorm critics, distributional critics, prioritized
replay, n-step returns, CrossQ's batch-renormalised critics) against the default SAC/TD3 MLP update,
side by side (issue 23, goal 6: each option's cost per update relative to SAC's).

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

from softac.algos.crossq import CrossQ
from softac.algos.sac import SAC
from softac.algos.td3 import TD3

# CrossQ's rows are SAC's baseline too (both are soft actor-critics); its update does the actor and α
# step every 3rd update (policy delay 3), so its figure is the mean over a cycle, as a run sees it.
VARIANTS: dict[str, tuple[type, dict[str, Any]]] = {
    "sac mlp 256x256": (SAC, {}),
    "sac critic LayerNorm": (SAC, {"critic_layer_norm": True}),
    "sac simba (paper widths)": (SAC, {"network": "simba"}),
    "sac hl_gauss critic (101 bins)": (SAC, {"critic_dist": "hl_gauss"}),
    "sac c51 critic (101 bins)": (SAC, {"critic_dist": "c51"}),
    "sac prioritized replay": (SAC, {"per": True}),
    "sac n-step 3": (SAC, {"n_step": 3}),
    "crossq critics 256x256": (CrossQ, {"critic_hidden_sizes": (256, 256)}),
    "crossq critics 512x512": (CrossQ, {"critic_hidden_sizes": (512, 512)}),
    "crossq critics 1024x1024": (CrossQ, {"critic_hidden_sizes": (1024, 1024)}),
    "crossq paper (critics 2048x2048)": (CrossQ, {}),
    "td3 mlp 256x256": (TD3, {"policy_delay": 1}),
    "td3 simba (paper widths)": (TD3, {"network": "simba", "policy_delay": 1}),
}


def _fill(agent: Any, n: int) -> None:
    rng = np.random.default_rng(0)
    spec = agent.spec
    obs = rng.normal(size=(n, spec.obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, size=(n, spec.act_dim)).astype(np.float32)
    discount = np.full((1, n), agent.config.gamma, np.float32) if agent.buffer.discount_column else None
    rows = agent.buffer.rows(obs[None], act[None], rng.normal(size=(1, n)).astype(np.float32),
                             np.zeros((1, n), np.float32), obs[None], discount)  # fmt: skip
    agent.buffer.add_all(rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="Pendulum-v1")
    p.add_argument("--only", default="", help="comma-separated substrings: run only the matching variants")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(1)
    chosen = {k: v for k, v in VARIANTS.items()
              if not args.only or k.endswith("mlp 256x256") or any(o in k for o in args.only.split(","))}  # fmt: skip
    agents = {k: cls(args.env, threads=1, device="cpu", buffer_size=4096, **kw) for k, (cls, kw) in chosen.items()}
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
        base = "td3 mlp 256x256" if k.startswith("td3") else "sac mlp 256x256"
        med = statistics.median(times[k])
        print(f"{k:28s} {med:8.2f} ms/update  ×{med / statistics.median(times[base]):.2f}")


if __name__ == "__main__":
    main()
