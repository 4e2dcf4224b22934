"""softac suite --ray local: the cells run as Ray Tune trials through softac sweep's machinery and
leave the same cell states, run directories and results.csv as local cells."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import cli_env, processes_on, signal_at_checkpoint

from softac.cli import main
from softac.io.rundir import list_checkpoints

pytest.importorskip("ray")

TRAIN = ["--learning-starts", "100", "--eval-freq", "200", "--eval-episodes", "1", "--hidden-sizes", "16", "16",
         "--batch-size", "16"]  # fmt: skip


@pytest.mark.slow
def test_suite_cells_as_local_ray_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "suite"
    argv = ["suite", "classic", "--out", str(out), "--algos", "sac,td3", "--envs", "Pendulum-v1", "--seeds", "0",
            "--budget", "400", "--jobs", "2", "--ray", "local"]  # fmt: skip
    train = ["--", "--learning-starts", "100", "--eval-freq", "200", "--eval-episodes", "1", "--hidden-sizes", "16",
             "16", "--batch-size", "16"]  # fmt: skip
    assert main(argv + train) == 0
    text = capsys.readouterr().out
    assert "cell sac on Pendulum-v1: done" in text and "cell td3 on Pendulum-v1: done" in text
    for key in ("sac__Pendulum-v1", "td3__Pendulum-v1"):
        assert json.loads((out / "cells" / f"{key}.json").read_text())["status"] == "done"
        rows = list(csv.DictReader((out / "runs" / key / "seed_0" / "progress.csv").open()))
        assert [int(r["step"]) for r in rows] == [200, 400] and int(rows[-1]["updates"]) > 0  # updates reached
    with (out / "results.csv").open() as f:
        results = list(csv.DictReader(f))
    assert sorted((r["algorithm"], r["step"]) for r in results) == [("sac", "200"), ("sac", "400"), ("td3", "200"),
                                                                    ("td3", "400")]  # fmt: skip
    # A second call finds every cell done and starts no Ray at all.
    assert main([*argv, "--resume", *train]) == 0
    assert "cell " not in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("signum", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["term", "ctrl-c"])
def test_a_signal_ends_the_ray_trials_and_says_which_checkpoint_each_cell_keeps(
    tmp_path: Path, signum: int, group: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGTERM to a `--ray local` suite, or Ctrl-C to its whole process group: the trials stop, no `softac
    train` trains on, the cell is recorded as interrupted at its newest checkpoint, and the suite's one line
    names that step (before: "nothing was saved" after Ctrl-C; Ray's stack dump and exit 1 after SIGTERM)."""
    out, key = tmp_path / "suite", "sac__Pendulum-v1"
    # --threads 1: the default, every core for the one cell, made the resumed cell's 1,400 steps of
    # 16×16 nets take 38 s inside the whole suite, its two threads fighting the other test worker.
    argv = ["suite", "classic", "--out", str(out), "--algos", "sac", "--envs", "Pendulum-v1", "--seeds", "0",
            "--budget", "1500", "--ray", "local", "--threads", "1",
            "--", *TRAIN, "--checkpoint-freq", "100"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "softac.cli", *argv], env=cli_env(), text=True,
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _, stderr = signal_at_checkpoint(proc, out / "runs" / key / "seed_0", signum, group)
    assert proc.returncode == 128 + signum, stderr[-2000:]
    deadline = time.monotonic() + 30  # the trial's `softac train` ends with its Ray worker
    while processes_on(out / "runs") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_on(out / "runs"), "a cell trains on after the suite stopped"
    state = json.loads((out / "cells" / f"{key}.json").read_text())
    step = state["saved_step"]
    assert state["status"] == "interrupted" and 100 <= step < 1500
    newest = max(int(p.name.split("_")[1]) for p in list_checkpoints(out / "runs" / key / "seed_0"))
    assert step == newest
    last = stderr.strip().splitlines()[-1]
    name = signal.Signals(signum).name
    assert last.startswith(f"softac: suite stopped by {name}; checkpoints saved: sac on Pendulum-v1 at step {step}; ")
    assert "nothing was saved" not in stderr and "Traceback" not in stderr and "SIGTERM received at" not in stderr
    assert not (out / "results.csv").exists() or len(list(csv.DictReader((out / "results.csv").open()))) == 0
    if signum == signal.SIGINT:  # --resume finishes the cell from that checkpoint
        assert main([*argv[: argv.index("--")], "--resume", *argv[argv.index("--") :]]) == 0
        assert f"resuming sac on Pendulum-v1 at step {step}" in (out / "logs" / f"{key}.log").read_text()
        assert "(1 of 1 cells done)" in capsys.readouterr().out
