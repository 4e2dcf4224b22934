"""N seeds in one process (stacked learners) vs the same N seeds as N processes, on the same CPU.

    .venv/bin/python benchmarks/seeds_cpu.py --env HalfCheetah-v5 --seeds 4 --rounds 3

Both sides run ``softac bench``'s measurement (1,000 random warm-up steps per seed, then timed
steps with one update each, no evaluation in the window). The batched side is one process with
``seeds=range(N)`` at torch's default thread count; the separate side starts N processes at once,
one seed each, with one torch thread each (more would only oversubscribe the cores further).
Aggregate throughput is environment steps of all seeds per second: for the separate processes
the sum of their rates (their timed windows overlap). Peak RSS: the batched process's, and the
sum of the separate processes'. Rounds alternate the two sides; medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from softac.bench import Variant, measure


def batched(algo: str, env_id: str, n: int, steps: int) -> dict[str, Any]:
    return measure(Variant("batched", "softac", {"seeds": list(range(n)), "device": "cpu"}), algo, env_id, 1000, steps)


def separate(algo: str, env_id: str, n: int, steps: int) -> dict[str, Any]:
    variants = [Variant(f"seed {s}", "softac", {"seed": s, "threads": 1, "device": "cpu"}) for s in range(n)]
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda v: measure(v, algo, env_id, 1000, steps), variants))
    return {
        "steps_per_s": sum(r["steps_per_s"] for r in results),
        "peak_rss_mb": sum(r["peak_rss_mb"] for r in results),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--algo", default="sac")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=1000, help="timed steps per seed")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    out: dict[str, list[dict[str, Any]]] = {"one process": [], "separate processes": []}
    print(f"{args.algo.upper()} on {args.env}, {args.seeds} seeds, {args.steps} timed steps per seed")
    for r in range(args.rounds):
        sides = [("one process", batched), ("separate processes", separate)]
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            res = fn(args.algo, args.env, args.seeds, args.steps)
            out[name].append(res)
            print(f"round {r + 1}: {name:<19} {res['steps_per_s']:>8.1f} steps/s (all seeds)   "
                  f"peak RSS {res['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
    for name, results in out.items():
        med = statistics.median(x["steps_per_s"] for x in results)
        rss = statistics.median(x["peak_rss_mb"] for x in results)
        print(f"median {name:<19} {med:>8.1f} steps/s   peak RSS {rss:.0f} MB")
    a = statistics.median(x["steps_per_s"] for x in out["one process"])
    b = statistics.median(x["steps_per_s"] for x in out["separate processes"])
    print(f"one process / separate processes: {a / b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
