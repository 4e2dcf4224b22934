"""``softac suite robotics`` end to end (the real CLI in a subprocess, as a user runs it): softac's
SAC + HER (``sac-her``) beside Stable-Baselines3's SAC + HerReplayBuffer (``sb3-sac-her``) on
PointMaze_UMaze-v3, one seed, a budget past both libraries' first gradient updates; then the report
holds each variant's success rate (per task and the success-rate IQM across tasks) and results.csv
the rows of both.

Duration: 26.1 s and 29.6 s (two runs) on the project's 2-core machine while other engineers' work
loaded it (load average 3.0 to 3.9), measured with ``pytest --durations=0`` on 2026-12-06."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("gymnasium_robotics")
pytest.importorskip("rliable")

SRC = str(Path(__file__).resolve().parents[1] / "src")
MAZE = "PointMaze_UMaze-v3"
# 50-step episodes (SB3's HER samples only ended episodes), updates from step 100, evaluations at 150 and 300.
TRAIN = ["--learning-starts", "100", "--eval-freq", "150", "--eval-episodes", "2", "--batch-size", "32",
         "--hidden-sizes", "16", "16", "--env-kwargs", "max_episode_steps=50"]  # fmt: skip
VARIANTS = ("sac-her", "sb3-sac-her")


def test_robotics_suite_reports_both_variants_success(tmp_path: Path) -> None:
    out = tmp_path / "suite"
    argv = [sys.executable, "-m", "softac.cli", "suite", "robotics", "--out", str(out), "--algos", ",".join(VARIANTS),
            "--envs", MAZE, "--seeds", "0", "--budget", "300", "--threads", "1", "--", *TRAIN]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(2 of 2 cells done)" in proc.stdout
    for v in VARIANTS:  # both reached their gradient updates (from step 100: 200 by step 300)
        with (out / "runs" / f"{v}__{MAZE}" / "seed_0" / "progress.csv").open(newline="") as f:
            last = list(csv.DictReader(f))[-1]
        assert int(last["step"]) == 300 and int(last["updates"]) >= 150, (v, last)
    with (out / "results.csv").open(newline="") as f:
        results = list(csv.DictReader(f))
    assert {(r["algorithm"], r["env"], r["seed"], r["step"]) for r in results} == {
        (v, MAZE, "0", s) for v in VARIANTS for s in ("150", "300")
    }
    assert all(0.0 <= float(r["success"]) <= 1.0 for r in results)

    from softac.suite import scores
    from softac.suite.report import write_report

    scores.REPS, scores.CURVE_REPS = 50, 20  # a bootstrap resample costs ~1 ms: the default 2000 is slow here
    text = write_report(out, tmp_path / "report", figures=False).read_text()
    finals = {r["algorithm"]: float(r["success"]) for r in results if r["step"] == "300"}
    maze = text.split(f"## {MAZE}")[1].split("\n## ")[0]
    assert "| success mean | success IQM | success IQM 95% CI |" in maze
    across = text.split("## Success rate")[1].split("\n## ")[0]
    assert f"Across tasks: {MAZE}." in across
    for v, name in zip(VARIANTS, ("softac sac-her", "SB3 sac-her"), strict=True):  # named by the library that ran it
        row = re.search(rf"^\| {re.escape(name)} \| 300 \| 1 \| ([0-9.]+) \| ([0-9.]+) \|", maze, re.M)
        assert row is not None, maze
        assert float(row.group(2)) == pytest.approx(finals[v], abs=0.005)  # one seed: its IQM is its rate
        iqm = re.search(rf"^\| {re.escape(name)} \| ([0-9.]+) \|", across, re.M)
        assert iqm is not None and 0.0 <= float(iqm.group(1)) <= 1.0, across
        assert float(iqm.group(1)) == pytest.approx(finals[v], abs=0.0005)
