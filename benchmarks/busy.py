"""Speed on a busy machine (issue 23, goal 5): the in-process figure of ``softac bench`` for
several torch thread settings, alone and beside one other CPU-bound process (a Python busy loop,
standing in for a user's second experiment), in alternating rounds; SB3 the same way.

    python benchmarks/busy.py [--algo sac] [--steps 600] [--rounds 2] [--threads 2,1,0] [--no-sb3]

``--threads 0`` is softac's default rule (``softac.runtime.choose_threads``). Each line gives the
rate and, for the busy case, the share of the same setting's quiet rate (medians over rounds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from softac.bench import Variant, measure
from softac.runtime import available_cores, others_running


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--algo", default="sac")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", default="2,1,0", help="softac thread settings to compare (0: the default rule)")
    p.add_argument("--no-sb3", action="store_true")
    args = p.parse_args()
    variants = [Variant(f"softac threads={t}", "softac", {"threads": int(t)}) for t in args.threads.split(",")]
    if not args.no_sb3:
        variants.append(Variant("SB3 (torch default threads)", "sb3"))
    rates: dict[tuple[str, bool], list[float]] = {}
    load = Path("/proc/loadavg").read_text().strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {available_cores()} cores, load {load}", flush=True)
    for r in range(args.rounds):
        for busy in (False, True) if r % 2 == 0 else (True, False):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                time.sleep(0.5)  # the spinner is running before the measured process starts
                for v in variants if r % 2 == 0 else variants[::-1]:
                    seen = others_running()
                    rate = measure(v, args.algo, args.env, args.warmup, args.steps)["steps_per_s"]
                    rates.setdefault((v.label, busy), []).append(rate)
                    print(f"round {r + 1} {'busy ' if busy else 'quiet'} {v.label:<28} {rate:7.1f} steps/s "
                          f"(other runnable threads at start: {seen})", flush=True)  # fmt: skip
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
    print("medians:")
    for v in variants:
        quiet = statistics.median(rates[(v.label, False)])
        busy_rate = statistics.median(rates[(v.label, True)])
        print(f"  {v.label:<28} quiet {quiet:7.1f}   busy {busy_rate:7.1f}   busy/quiet {busy_rate / quiet:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
