"""The GPU measurements (issues 12 and 13), side by side in one run on one CUDA machine.

    python3 benchmarks/gpu.py [--quick] [--json OUT.json]

HalfCheetah-v5, batch 256, 256×256, one update per environment step, float32, as ``softac bench``
measures it (fresh subprocess per figure, 1,000 random warm-up steps, then timed steps with
updates; evaluation outside the timed window; the first 20 updates — CUDA-graph capture,
compilation — timed apart and reported as such):

* softac SAC and TD3 on the GPU (CUDA graphs, the default there), softac without graphs, and with
  ``--compile-update`` under the graphs;
* Stable-Baselines3 SAC and TD3 on the same GPU, softac SAC and TD3 on the same machine's CPU;
* softac SAC with 4 and 16 environments (async vector env) and with batch 1,024;
* 16 seeds in one process (16 learners stacked, 16 environments in an async vector env) against
  one seed alone, steps/s per seed.

Every figure is its own subprocess under a time limit: one that fails or runs out of time is
reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from softac.bench import Variant, measure


def cases(quick: bool) -> list[tuple[str, str, Variant, int]]:
    """(name, algo, variant, timed steps)."""
    gpu: dict[str, Any] = {"device": "cuda"}
    steps, slow = (1000, 300) if quick else (3000, 600)
    out = [
        ("SAC softac GPU (CUDA graphs)", "sac", Variant("softac", "softac", gpu), steps),
        ("TD3 softac GPU (CUDA graphs)", "td3", Variant("softac", "softac", gpu), steps),
        ("SAC SB3 GPU", "sac", Variant("SB3", "sb3", device="cuda"), slow),
        ("TD3 SB3 GPU", "td3", Variant("SB3", "sb3", device="cuda"), slow),
        ("SAC softac CPU", "sac", Variant("softac", "softac", {"device": "cpu"}), slow),
        ("TD3 softac CPU", "td3", Variant("softac", "softac", {"device": "cpu"}), slow),
        ("SAC softac GPU, no CUDA graphs", "sac", Variant("softac", "softac", {**gpu, "cuda_graph": False}), slow),
        ("SAC softac GPU, compile_update + graphs", "sac",
         Variant("softac", "softac", {**gpu, "compile_update": True}), steps),
        ("TD3 softac GPU, compile_update + graphs", "td3",
         Variant("softac", "softac", {**gpu, "compile_update": True}), steps),
        ("SAC softac GPU, batch 1024", "sac", Variant("softac", "softac", {**gpu, "batch_size": 1024}), steps),
        ("SAC softac GPU, 4 envs (async)", "sac",
         Variant("softac", "softac", {**gpu, "n_envs": 4, "vectorization": "async"}), steps),
        ("SAC softac GPU, 16 envs (async)", "sac",
         Variant("softac", "softac", {**gpu, "n_envs": 16, "vectorization": "async"}), steps),
        ("SAC softac GPU, 1 seed (async env)", "sac",
         Variant("softac", "softac", {**gpu, "vectorization": "async", "n_envs": 1}), slow),
        ("SAC softac GPU, 16 seeds in one process", "sac",
         Variant("softac", "softac", {**gpu, "seeds": list(range(16)), "vectorization": "async"}), slow),
    ]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="fewer timed steps (a smoke test of the script)")
    p.add_argument("--only", default=None, help="run only the cases whose name contains one of these (comma-separated)")
    p.add_argument("--timeout", type=float, default=150.0, help="seconds per figure")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    args = p.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)  # fmt: skip
    results: list[dict[str, object]] = []
    for name, algo, variant, steps in cases(args.quick):
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        t0 = time.perf_counter()
        try:
            r = measure(variant, algo, "HalfCheetah-v5", 1000, steps, timeout=args.timeout)
        except Exception as exc:  # report and go on: one failure must not cost the other figures
            reason = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
            print(f"{name:<44} FAILED after {time.perf_counter() - t0:.0f} s: {reason}", flush=True)
            results.append({"name": name, "error": reason})
            continue
        learners = len(variant.options.get("seeds", [0]))
        per_seed = r["steps_per_s"] / learners
        first = f"   first 20 updates {r['first_updates_s']:.1f} s" if "first_updates_s" in r else ""
        print(f"{name:<44} {r['steps_per_s']:>9.1f} steps/s   {per_seed:>8.1f} per seed   "
              f"device {r['device']}{first}", flush=True)  # fmt: skip
        results.append({"name": name, "algo": algo, "timed_steps": steps, **r})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
