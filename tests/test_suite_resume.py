"""softac suite survives SIGKILL: a suite killed (process group and all, as a lost machine) while a
cell is training is continued by --resume: finished cells are not rerun, the interrupted cell
resumes from its newest checkpoint, and its results equal those of an uninterrupted suite."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softac.io.rundir import list_checkpoints
from softac.suite.runner import train_argv
from softac.suite.spec import Cell

SRC = str(Path(__file__).resolve().parents[1] / "src")
# Tiny Pendulum cells that still reach gradient updates (from step 100; a checkpoint every 200 steps).
TRAIN = ["--learning-starts", "100", "--eval-freq", "200", "--eval-episodes", "1", "--checkpoint-freq", "200",
         "--hidden-sizes", "16", "16", "--batch-size", "16"]  # fmt: skip


def _suite(out: Path, algos: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "softac.cli", "suite", "classic", "--out", str(out), "--algos", algos, "--envs",
            "Pendulum-v1", "--seeds", "0,1", "--budget", "600", "--threads", "1", *extra, "--", *TRAIN]  # fmt: skip


def _rows(out: Path, algo: str) -> list[dict[str, str]]:
    with (out / "results.csv").open() as f:
        return [r for r in csv.DictReader(f) if r["algorithm"] == algo]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.slow
def test_killed_suite_resumes_to_the_uninterrupted_results(tmp_path: Path) -> None:
    run, ref = tmp_path / "run", tmp_path / "ref"
    proc = subprocess.Popen(_suite(run, "sac,td3"), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    td3 = run / "runs" / "td3__Pendulum-v1" / "seed_1"
    deadline = time.monotonic() + 300  # a loaded machine
    try:
        # Kill once the td3 cell (the second) has a checkpoint on its last learner: sac is done, td3
        # is mid-run with a checkpoint both learners reached.
        while not list_checkpoints(td3):
            assert proc.poll() is None and time.monotonic() < deadline, "the suite ended before it could be killed"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the suite and its `softac train` child, as a lost machine
        proc.wait()
    assert not (run / "cells" / "td3__Pendulum-v1.json").exists() and not (run / "results.csv").exists()
    sac_state = (run / "cells" / "sac__Pendulum-v1.json").read_text()
    sac_progress = run / "runs" / "sac__Pendulum-v1" / "seed_0" / "progress.csv"
    sac_mtime = sac_progress.stat().st_mtime_ns

    resumed = subprocess.run(_suite(run, "sac,td3", "--resume"), env=_env(), capture_output=True, text=True,
                             timeout=300, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "cell sac" not in resumed.stdout and "cell td3 on Pendulum-v1: done" in resumed.stdout  # sac not rerun
    assert (run / "cells" / "sac__Pendulum-v1.json").read_text() == sac_state
    assert sac_progress.stat().st_mtime_ns == sac_mtime
    assert "softac: resuming td3 on Pendulum-v1 at step" in (run / "logs" / "td3__Pendulum-v1.log").read_text()

    # The uninterrupted reference: td3 alone (a cell's result does not depend on the others).
    done = subprocess.run(_suite(ref, "td3"), env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    got, want = _rows(run, "td3"), _rows(ref, "td3")
    assert [int(r["step"]) for r in want if r["seed"] == "0"] == [200, 400, 600]
    assert got == want
    assert len(_rows(run, "sac")) == 6


def test_a_cell_killed_before_a_common_checkpoint_starts_again(tmp_path: Path) -> None:
    """Learners write their checkpoints one after another: killed between seed 0's first and seed 1's,
    the batched run has no checkpoint to resume exactly (softac train --resume refuses it), so the
    cell starts again from step 0, its old directory kept aside."""
    run_dir = tmp_path / "runs" / "td3__Pendulum-v1"
    (run_dir / "seed_0" / "checkpoints" / "step_0000000200").mkdir(parents=True)
    (run_dir / "seed_0" / "checkpoints" / "step_0000000200" / "state.json").write_text("{}")
    (run_dir / "seed_1" / "checkpoints" / "step_0000000200.tmp-1").mkdir(parents=True)
    (run_dir / "runs.json").write_text('{"seeds": [0, 1]}')
    argv = train_argv(Cell("td3", "Pendulum-v1"), run_dir, [0, 1], 600, "cpu", 1, [])
    assert "--resume" not in argv and argv[argv.index("--run-dir") + 1] == str(run_dir)
    assert not run_dir.exists()
    assert (tmp_path / "runs" / "td3__Pendulum-v1.unresumable-0" / "seed_0" / "checkpoints").is_dir()
    # With a checkpoint on every seed the cell resumes.
    for s in (0, 1):
        (run_dir / f"seed_{s}" / "checkpoints" / "step_0000000200").mkdir(parents=True)
        (run_dir / f"seed_{s}" / "checkpoints" / "step_0000000200" / "state.json").write_text("{}")
    (run_dir / "runs.json").write_text('{"seeds": [0, 1]}')
    again = train_argv(Cell("td3", "Pendulum-v1"), run_dir, [0, 1], 600, "cpu", 1, [])
    assert again[-4:-2] == ["--resume", str(run_dir)]
