"""The steady-state rate of the ``softac train`` command itself, the path users run.

Two whole processes with the same settings and two budgets, ``short`` and ``long`` environment
steps, each timed from start to exit: ``(long − short) / (t_long − t_short)``. Whatever both
processes do once (start-up, imports, building the environments, the random warm-up, CUDA-graph
capture or compilation, the final evaluation and checkpoint) cancels; what stays is the cost per
step of the training loop as the command runs it — progress bar, CSV/TensorBoard logging, the
divergence checks, periodic checkpoints — which the in-process figure of ``softac bench`` leaves
out. Evaluation is set apart (``--eval-freq`` past the budget, one episode at the end) because
the figures it is compared with, and SB3's side, exclude it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Runs the CLI in this interpreter; an older checkout's src/ first on PYTHONPATH runs its own.
_CLI = "import sys; from softac.cli import main; sys.exit(main())"


def cli_flags(options: dict[str, Any]) -> list[str]:
    """``softac train`` flags for softac config fields: ``--name value``, booleans as
    ``--name``/``--no-name``, seeds as a comma list."""
    out: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        elif key == "seeds":
            out += [flag, ",".join(str(s) for s in value)]
        elif isinstance(value, list | tuple):
            out += [flag, *(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def train_command(algo: str, env_id: str, warmup: int, budget: int, options: dict[str, Any], run_dir: Path
                  ) -> list[str]:  # fmt: skip
    return [
        sys.executable, "-c", _CLI, "train", "--algo", algo, "--env", env_id, "--preset", "none",
        "--total-steps", str(budget), "--learning-starts", str(warmup), "--eval-freq", str(10 * budget),
        "--eval-episodes", "1", "--no-progress", "--run-dir", str(run_dir), "--overwrite", *cli_flags(options),
    ]  # fmt: skip


def time_train(cmd: list[str], env: dict[str, str] | None, timeout: float | None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"softac train exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return elapsed


def measure_cli(algo: str, env_id: str, warmup: int, steps: int, options: dict[str, Any],
                env: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:  # fmt: skip
    """One round: the short budget (``warmup`` + 100 steps with updates, past any first-update
    cost) then the long one (``steps`` more); steps/s of all learners together."""
    short = warmup + 100
    with tempfile.TemporaryDirectory(prefix="softac-bench-cli-") as tmp:
        times = [
            time_train(train_command(algo, env_id, warmup, budget, options, Path(tmp) / "run"), env, timeout)
            for budget in (short, short + steps)
        ]
    learners = len(options.get("seeds", [0]))
    seconds = times[1] - times[0]
    # Not slower: the steps cost less than the two processes' start-up varies (a budget too short
    # for a loaded machine); no figure rather than a made-up one.
    rate = steps * learners / seconds if seconds > 0 else float("nan")
    return {"steps_per_s": rate, "process_s": [round(t, 2) for t in times]}
