"""Kill a training run with SIGKILL at random moments, resume it each time, and check the result.

    .venv/bin/python scripts/kill_resume.py --kills 10

Each round starts ``softac train --resume`` (or a fresh run while no checkpoint exists yet),
waits a random time and SIGKILLs it, whatever it is doing (stepping, updating, writing a
checkpoint). After the kills the run is resumed to completion; then every checkpoint left on disk
must load, and ``softac eval`` must evaluate the final policy. Exit code 0 means all of that held.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOFTAC = [sys.executable, "-m", "softac.cli"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--total-steps", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", type=Path, default=None)
    args = p.parse_args()
    rng = random.Random(args.seed)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="softac-kill-")) / "run"
    train = [
        *SOFTAC, "train", "--env", "Pendulum-v1", "--total-steps", str(args.total_steps),
        "--learning-starts", "1000", "--checkpoint-freq", "200", "--keep-checkpoints", "3",
        "--eval-freq", "1000", "--eval-episodes", "5",
        "--threads", "1", "--no-progress", "--run-dir", str(run_dir),
    ]  # fmt: skip
    from softac.io.load import load_agent
    from softac.io.rundir import list_checkpoints

    for k in range(args.kills):
        fresh = not list_checkpoints(run_dir)
        cmd = [*train, "--overwrite"] if fresh else [*SOFTAC, "train", "--resume", str(run_dir), "--no-progress"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(6.0, 15.0)  # start-up takes a few seconds; then steps, updates, saves
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        found = list_checkpoints(run_dir)
        latest = found[-1].name if found else "none"
        print(f"kill {k + 1:2d}: after {delay:4.1f} s ({'fresh' if fresh else 'resumed'}), newest checkpoint {latest}")
    done = subprocess.run([*SOFTAC, "train", "--resume", str(run_dir), "--no-progress"], check=False)
    if done.returncode != 0:
        print(f"final resume failed with exit code {done.returncode}")
        return 1
    for ckpt in list_checkpoints(run_dir):
        agent = load_agent(ckpt)
        print(f"{ckpt.name}: loads (step {agent.env_steps}, {agent.updates} updates)")
    final = load_agent(run_dir)
    if final.env_steps < args.total_steps:
        print(f"the run stopped at step {final.env_steps} < {args.total_steps}")
        return 1
    ev = subprocess.run([*SOFTAC, "eval", str(run_dir), "--episodes", "10"], check=False)
    return ev.returncode


if __name__ == "__main__":
    sys.exit(main())
