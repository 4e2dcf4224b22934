"""Per-phase CPU cost of one SAC training step, today's softac against another checkout (v0.1),
side by side (issue 23, goal 4):

    python benchmarks/cpu_v01.py --baseline-src /path/to/v0.1/src [--rounds 3] [--reps 600]

Each figure is a fresh process (alternating between the two sources each round) that fills the
buffer with 1,000 warm-up steps of HalfCheetah-v5 and then times, at one torch thread:

* ``update``: one gradient step (batch 256, 256×256 networks), the default (eager) path;
* ``overhead``: the same update with 8×8 networks and batch 8, where the arithmetic is negligible
  and what is left is the per-update Python, dispatch and autograd cost;
* ``step``: one environment step without an update (acting, the env, the buffer write, the loop).

Why thread CPU time (``time.thread_time``) and not the wall clock: on the project's shared 2-core
machine other jobs take the core for whole time slices, which the wall clock counts and the
thread's own CPU time does not (at one thread every op runs on the calling thread). Cache and
memory-bandwidth sharing still leak in, so read medians of alternating rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_WORKER = r"""
import json, statistics, sys, time
import numpy as np, torch
reps, hidden, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kw = dict(learning_starts=1000, total_steps=1000, eval_freq=10**9, eval_episodes=1, threads=1,
          hidden_sizes=(hidden, hidden), batch_size=batch)
try:  # today's layout
    import softac.train.shell as shell
    from softac import registry
    shell.evaluate = lambda agent, envs, *a, **k: np.zeros((len(envs), 1))
    agent = registry.get("sac").agent_cls("HalfCheetah-v5", **kw)
    update = agent.update
except ImportError:  # v0.1's
    import softac.trainer as trainer
    from softac.agents import AGENTS
    trainer.evaluate = lambda *a, **k: np.zeros(1)
    agent = AGENTS["sac"]("HalfCheetah-v5", **kw)
    update = lambda: agent.update(agent.buffer.sample(batch))
agent.learn(progress=False)
torch.set_num_threads(1)
for _ in range(30):
    update()
times = []
for _ in range(reps):
    t = time.thread_time(); update(); times.append(time.thread_time() - t)
out = {"update_ms": statistics.median(times) * 1e3}
if hidden >= 256:  # steps without an update: the updates done above are ahead of the schedule
    t = time.thread_time(); agent.learn(total_steps=1000 + reps, progress=False)
    out["step_ms"] = (time.thread_time() - t) / reps * 1e3
print(json.dumps(out))
"""


def _run(src: str, reps: int, hidden: int, batch: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.run([sys.executable, "-c", _WORKER, str(reps), str(hidden), str(batch)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", required=True, help="the other checkout's src/ directory (v0.1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=600)
    args = parser.parse_args()
    today = str(Path(__file__).resolve().parents[1] / "src")
    sources = {"softac": today, "baseline": str(Path(args.baseline_src).resolve())}
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in sources}
    for rnd in range(args.rounds):
        order = list(sources) if rnd % 2 == 0 else list(reversed(sources))
        for name in order:
            full = _run(sources[name], args.reps, 256, 256)
            small = _run(sources[name], args.reps * 3, 8, 8)
            figures: dict[str, Any] = {"update": full["update_ms"], "overhead": small["update_ms"],
                                       "step": full["step_ms"]}  # fmt: skip
            for key, value in figures.items():
                rows[name].setdefault(key, []).append(value)
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"round {rnd + 1} {name:8s} " + "  ".join(f"{k} {v:.3f} ms" for k, v in figures.items())
                  + f"  (load {load}, {time.strftime('%H:%M:%S')})", flush=True)  # fmt: skip
    print("medians (ms, thread CPU time at one thread):")
    for key in rows["softac"]:
        a, b = statistics.median(rows["softac"][key]), statistics.median(rows["baseline"][key])
        print(f"  {key:9s} softac {a:7.3f}   baseline {b:7.3f}   softac/baseline {a / b:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
