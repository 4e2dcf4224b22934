"""The GPU measurements of issue 23, side by side in one bounded run on one CUDA machine.

    python3 benchmarks/gpu.py --part timed [--quick] [--device cuda] [--deadline S] [--json OUT.json]
    python3 benchmarks/gpu.py --part compile [--device cuda] [--log-dir DIR]

HalfCheetah-v5, batch 256, 256×256, one update per environment step, float32, learning_starts
1,000. ``--part timed`` runs, in this order, one figure at a time (nothing else runs meanwhile):

(a) SAC and TD3: the in-process figure of ``softac bench`` (fresh subprocess, evaluation outside
    the timed window, first 20 updates apart) alternating with the ``softac train`` command itself
    (two whole processes, two budgets, the difference: ``softac.cli.bench``), 3 rounds, medians;
    then Stable-Baselines3 SAC and TD3 on the same device;
(b) 16 seeds of SAC in one process (sync envs), steps/s per seed; then, while the deadline
    allows, 1, 4 and 64 seeds (the curve).

``--part compile`` runs ``softac train --compile-update`` on the device for every continuous
algorithm in three forms — the plain CLI (its first update, at step 1,001, inside the step graph),
learning_starts 999 (the first update on the episode-ending step, outside the step graph, inside
CudaGraphed) and ``--no-cuda-graph`` — all at once (untimed), and prints for each whether it compiled; on a failure
the compiler's whole traceback is written to ``--log-dir``.

Every figure is its own subprocess under a time limit: one that fails or runs out of time is
reported as such and the others still run; past ``--deadline`` seconds the rest are skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from softac.bench import Variant, measure

ENV = "HalfCheetah-v5"
# The CLI with the compile-failure warning extended by the traceback of the exception it reports
# (``warn`` is called inside Compiled's ``except`` block, so print_exc shows the real error).
_TRACED_CLI = (
    "import sys, traceback, softac.accel.runner as r\n"
    "_w = r.warn\n"
    "def _warn(m):\n"
    "    traceback.print_exc()\n"
    "    _w(m)\n"
    "r.warn = _warn\n"
    "from softac.cli import main\n"
    "sys.exit(main())\n"
)


class Clock:
    def __init__(self, deadline: float) -> None:
        self.t0, self.deadline = time.perf_counter(), deadline

    def left(self) -> float:
        return self.deadline - (time.perf_counter() - self.t0)


class Results(list[dict[str, Any]]):
    """The figures so far, rewritten to ``path`` after each one: a part stopped by its time limit
    still leaves everything it measured."""

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self.path = path

    def add(self, entry: dict[str, Any]) -> None:
        self.append(entry)
        if self.path:
            Path(self.path).write_text(json.dumps(self, indent=1))


def say(results: Results, name: str, **fields: Any) -> None:
    results.add({"name": name, **fields})
    if "error" in fields:
        print(f"{name:<48} FAILED: {fields['error']}", flush=True)
    else:
        extra = "   ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()
                           if k not in ("steps_per_s", "rounds"))  # fmt: skip
        print(f"{name:<48} {fields['steps_per_s']:>9.1f} steps/s   {extra}", flush=True)


def one(variant: Variant, algo: str, warmup: int, steps: int, clock: Clock, timeout: float) -> dict[str, Any]:
    if clock.left() < 10:
        return {"error": "skipped: past the deadline"}
    try:
        return measure(variant, algo, ENV, warmup, steps, timeout=min(timeout, clock.left()))
    except Exception as exc:  # report and go on: one failure must not cost the other figures
        text = str(exc).strip()
        return {"error": text.splitlines()[-1][:300] if text else type(exc).__name__}


def timed(args: argparse.Namespace, results: Results) -> None:
    clock = Clock(args.deadline)
    dev: dict[str, Any] = {"device": args.device}
    warmup, steps, sb3_steps, seed_steps = (300, 300, 100, 50) if args.quick else (1000, 3000, 600, 300)
    rounds = 1 if args.quick else 3
    for algo in ("sac", "td3"):  # (a) the in-process figure and the command, alternating
        pair = [Variant("in-process", "softac", dev), Variant("softac train", "cli", dev)]
        for r in range(rounds):
            for v in pair if r % 2 == 0 else pair[::-1]:
                out = one(v, algo, warmup, steps, clock, args.timeout)
                v.results.append(out)
                say(results, f"{algo.upper()} {v.label} round {r + 1}", **out)
        for v in pair:
            ok = [x["steps_per_s"] for x in v.results if math.isfinite(x.get("steps_per_s", math.nan))]
            if ok:
                say(results, f"{algo.upper()} {v.label} MEDIAN", steps_per_s=statistics.median(ok), rounds=len(ok))
    for algo in ("sac", "td3"):
        out = one(Variant("SB3", "sb3", device=args.device), algo, warmup, sb3_steps, clock, args.timeout)
        say(results, f"{algo.upper()} SB3 {args.device}", **out)
    for n in (16, 1, 4, 64):  # (b) 16 seeds first, then the curve while time allows
        opts = {**dev, "seeds": list(range(n))}
        out = one(Variant("softac", "softac", opts), "sac", warmup, seed_steps, clock, args.timeout)
        if "steps_per_s" in out:
            out["per_seed"] = out["steps_per_s"] / n
        say(results, f"SAC {n} seeds in one process (sync envs)", **out)


def compile_checks(args: argparse.Namespace, results: Results) -> None:
    """All forms at once: untimed, each a whole process compiling on its own CPU cores."""
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    total = 1300 if not args.quick else 400
    starts = 1000 if not args.quick else 300
    # learning_starts 999: the first update falls on the step that ends HalfCheetah's first
    # episode (1,000 steps), which the step graph does not serve, so it compiles inside CudaGraphed.
    forms = {"cli": [], "first-update-outside-step-graph": ["--learning-starts", str(starts - 1)],
             "no-cuda-graph": ["--no-cuda-graph"]}  # fmt: skip
    procs = {}
    for algo in args.algos.split():
        for form, extra in forms.items():
            cmd = [sys.executable, "-c", _TRACED_CLI, "train", "--algo", algo, "--env", ENV, "--preset", "none",
                   "--device", args.device, "--compile-update", "--total-steps", str(total), "--learning-starts",
                   str(starts), "--eval-freq", str(10 * total), "--eval-episodes", "1", "--no-progress",
                   "--run-dir", f"/tmp/softac-compile-runs/{algo}-{form}", "--overwrite", *extra]  # fmt: skip
            log = open(log_dir / f"{algo}-{form}.log", "w")  # noqa: SIM115  (closed below)
            procs[(algo, form)] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, time.time())
    for (algo, form), (proc, log, t0) in procs.items():
        try:
            rc = proc.wait(timeout=max(1.0, args.timeout - (time.time() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        log.close()
        text = (log_dir / f"{algo}-{form}.log").read_text()
        failed = "could not compile" in text
        verdict = "TIMEOUT" if rc in (-9, 137) else f"exit {rc}, " + ("NOT COMPILED" if failed else "compiled")
        line = next((x for x in text.splitlines() if "could not compile" in x), "")
        results.add({"name": f"compile {algo} {form}", "rc": rc, "compiled": not failed, "warning": line})
        print(f"compile_update {algo:<5} {form:<28} {verdict}   {line[:160]}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--part", choices=["timed", "compile"], default="timed")
    p.add_argument("--device", default="cuda", help="torch device of softac and SB3 (cpu to test the script)")
    p.add_argument("--quick", action="store_true", help="tiny budgets (a smoke test of the script)")
    p.add_argument("--timeout", type=float, default=150.0, help="seconds per figure (per process for compile)")
    p.add_argument("--deadline", type=float, default=330.0, help="skip what would start after this many seconds")
    p.add_argument("--json", default=None, help="also write the results as JSON here")
    p.add_argument("--algos", default="sac td3 ddpg", help="--part compile: the algorithms (space-separated)")
    p.add_argument("--log-dir", default="/tmp/softac-compile", help="--part compile: each run's output")
    args = p.parse_args()
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, {gpu}, {time.strftime('%Y-%m-%d %H:%M')}, part {args.part}", flush=True)
    (timed if args.part == "timed" else compile_checks)(args, Results(args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
