"""Real `softac suite` processes: SIGTERM (to the suite) and Ctrl-C (SIGINT to its whole process
group, as a terminal sends it) stop the running cell, which checkpoints; the suite records the cell's
state and says in one line what was saved and how to continue; --resume finishes it. A suite killed
with SIGKILL takes its cell with it (no orphan training on). A finished cell whose files are then
damaged is named and left out of results.csv, never counted done; one whose state file was deleted
is found finished again."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import processes_on, signal_at_checkpoint

from softac.io.rundir import list_checkpoints

SRC = str(Path(__file__).resolve().parents[1] / "src")
TRAIN = ["--learning-starts", "100", "--eval-freq", "200", "--eval-episodes", "1", "--checkpoint-freq", "100",
         "--hidden-sizes", "16", "16", "--batch-size", "16"]  # fmt: skip
KEY = "sac__Pendulum-v1"


def _argv(out: Path, budget: int, *extra: str) -> list[str]:
    cell = ["--algos", "sac", "--envs", "Pendulum-v1", "--seeds", "0,1", "--budget", str(budget), "--threads", "1"]
    return [sys.executable, "-m", "softac.cli", "suite", "classic", "--out", str(out), *cell, *extra, "--", *TRAIN]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _start(out: Path, budget: int) -> subprocess.Popen[str]:
    # A session of its own: its process group is the suite's, as in a terminal or a batch job.
    return subprocess.Popen(_argv(out, budget), env=_env(), text=True, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _wait_for_checkpoint(proc: subprocess.Popen[str], out: Path) -> None:
    seed1 = out / "runs" / KEY / "seed_1"
    deadline = time.monotonic() + 240  # a loaded machine
    while not list_checkpoints(seed1):
        assert proc.poll() is None and time.monotonic() < deadline, "the suite ended before the signal"
        time.sleep(0.05)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["term", "ctrl-c"])
def test_a_signal_stops_the_cell_with_a_checkpoint_and_one_line(
    tmp_path: Path, signum: int, group: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    proc = _start(out, 800)
    stdout, stderr = signal_at_checkpoint(proc, out / "runs" / KEY / "seed_1", signum, group)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert not processes_on(out), "the cell outlived the suite"
    state = json.loads((out / "cells" / f"{KEY}.json").read_text())
    assert state["status"] == "interrupted"
    step = state["saved_step"]
    assert all(any(p.name.endswith(f"{step:010d}") for p in list_checkpoints(out / "runs" / KEY / f"seed_{s}"))
               for s in (0, 1))  # fmt: skip
    last = stderr.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last.startswith(f"softac: suite stopped by {name}; checkpoints saved: sac on Pendulum-v1 at step {step}; ")
    assert "0 of 1 cells done" in last and last.endswith("--resume -- " + " ".join(TRAIN))
    assert "nothing was saved" not in stderr and "Traceback" not in stderr
    assert "cell sac on Pendulum-v1: interrupted" in stdout
    log = (out / "logs" / f"{KEY}.log").read_text()
    assert log.count(f"{name} received, saving a checkpoint") == 1  # one signal reached it, not two
    if signum == signal.SIGINT:  # the same command with --resume finishes the cell from that checkpoint
        from softac.cli import main

        argv = _argv(out, 800)[3:]
        assert main([*argv[: argv.index("--")], "--resume", *argv[argv.index("--") :]]) == 0
        assert f"resuming sac on Pendulum-v1 at step {step}" in (out / "logs" / f"{KEY}.log").read_text()
        assert "(1 of 1 cells done)" in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_suite_leaves_no_orphan_cell(tmp_path: Path) -> None:
    out = tmp_path / "s"
    proc = _start(out, 800)
    try:
        _wait_for_checkpoint(proc, out)
        assert processes_on(out / "runs")
        proc.send_signal(signal.SIGKILL)  # the suite alone, not its cell
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while processes_on(out / "runs") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes_on(out / "runs"), "the cell trains on, orphaned"
    finally:
        for pid in processes_on(out):
            os.kill(pid, signal.SIGKILL)


def test_damaged_files_of_a_finished_cell_are_named_not_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process suites (their cells are real `softac train` processes)."""
    from softac.cli import main

    out = tmp_path / "s"
    argv = _argv(out, 200)[3:]  # the `suite ...` arguments
    resume = [*argv[: argv.index("--")], "--resume", *argv[argv.index("--") :]]
    assert main(argv) == 0
    assert "(1 of 1 cells done)" in capsys.readouterr().out
    with (out / "results.csv").open() as f:
        assert {(r["seed"], r["step"]) for r in csv.DictReader(f)} == {("0", "200"), ("1", "200")}
    # A deleted cell state: the run is found finished again (softac train --resume: nothing to do).
    (out / "cells" / f"{KEY}.json").unlink()
    assert main(resume) == 0
    assert "(1 of 1 cells done)" in capsys.readouterr().out
    # A NaN row in one seed: named, the cell not done, its rows not in results.csv.
    progress = out / "runs" / KEY / "seed_1" / "progress.csv"
    lines = progress.read_text().splitlines()
    cols = lines[0].split(",")
    row = lines[1].split(",")
    row[cols.index("eval_return_mean")] = "nan"
    progress.write_text("\n".join([lines[0], ",".join(row)]) + "\n")
    assert main(resume) == 1
    text = capsys.readouterr().out
    assert "recorded done, but" in text and "seed_1/progress.csv line 2 has a non-finite return" in text
    assert "(0 of 1 cells done)" in text and "cell sac on Pendulum-v1: not done:" in text
    assert (out / "results.csv").read_text().strip() == "algorithm,env,seed,step,return"
