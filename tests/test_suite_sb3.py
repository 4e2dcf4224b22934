"""``softac suite --algos sb3-sac``: Stable-Baselines3's real SAC as a cell. Its seeds' progress.csv
land in results.csv and the report as algorithm sb3-sac, SB3 did gradient updates, a resumed cell
skips a finished seed (file untouched) and restarts an unfinished one (old directory set aside),
and without SB3 the variant is refused in one line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

SRC = str(Path(__file__).resolve().parents[1] / "src")
# Tiny Pendulum cells that reach SB3's gradient updates (from step 50), evaluated at 150 and 300.
TRAIN = ["--learning-starts", "50", "--eval-freq", "150", "--eval-episodes", "2", "--batch-size", "32",
         "--hidden-sizes", "32", "32"]  # fmt: skip
KEY = "sb3-sac__Pendulum-v1"


def _suite(out: Path, *extra: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "softac.cli", "suite", "classic", "--out", str(out), "--algos", "sb3-sac", "--envs",
            "Pendulum-v1", "--seeds", "0,1", "--budget", "300", "--threads", "1", *extra, "--", *TRAIN]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sb3") / "suite"
    tmpdir = tmp_path_factory.mktemp("tmpdir")
    proc = _suite(out, tmpdir=tmpdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # SB3's default logger made an empty $TMPDIR/SB3-<date-time> per seed, left behind
    assert not list(tmpdir.glob("SB3-*")), sorted(p.name for p in tmpdir.iterdir())
    return out


def _progress(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_sb3_cell_rows_reach_results_and_report(suite: Path) -> None:
    for seed in (0, 1):
        d = suite / "runs" / KEY / f"seed_{seed}"
        rows = _progress(d / "progress.csv")
        assert [int(r["step"]) for r in rows] == [150, 300]
        assert [int(r["updates"]) for r in rows] == [100, 250]  # SB3 updated from step 50 on, once a step
        config = json.loads((d / "config.json").read_text())
        assert config["library"] == "stable-baselines3" and config["updates"] == 250 and config["seed"] == seed
        assert config["settings"]["learning_rate"] == 1e-3  # softac's (rl-zoo3's) Pendulum preset
    with (suite / "results.csv").open() as f:
        results = list(csv.DictReader(f))
    assert {(r["algorithm"], r["seed"], r["step"]) for r in results} == {
        ("sb3-sac", s, t) for s in "01" for t in ("150", "300")
    }
    pytest.importorskip("rliable")
    from softac.suite import scores
    from softac.suite.report import write_report

    scores.REPS, scores.CURVE_REPS = 50, 20  # a bootstrap resample costs ~1 ms: the default 2000 is slow here
    write_report(suite, suite.parent / "report", figures=False)
    table = (suite.parent / "report" / "table.md").read_text()
    assert "SB3 sac: IQM" in table and "softac sb3-sac" not in table  # named by the library that ran it


def test_resume_skips_finished_seed_and_restarts_unfinished(suite: Path) -> None:
    out = suite.parent / "resumed"
    shutil.copytree(suite, out)
    (out / "cells" / f"{KEY}.json").unlink()  # as a suite killed while the cell ran
    seed0, seed1 = out / "runs" / KEY / "seed_0" / "progress.csv", out / "runs" / KEY / "seed_1" / "progress.csv"
    lines = seed1.read_text().splitlines(keepends=True)
    seed1.write_text("".join(lines[:-1]))  # seed 1 stopped after its evaluation at 150
    before = (seed0.read_bytes(), seed0.stat().st_mtime_ns)
    proc = _suite(out, "--resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (out / "logs" / f"{KEY}.log").read_text()
    assert "seed 0: already trained to 300 steps, skipped" in log
    assert (seed0.read_bytes(), seed0.stat().st_mtime_ns) == before
    aside = out / "runs" / KEY / "seed_1.unfinished-0" / "progress.csv"
    assert aside.read_text() == "".join(lines[:-1])  # set aside, not deleted
    assert [int(r["step"]) for r in _progress(seed1)] == [150, 300]


def test_without_sb3_the_variant_is_refused_in_one_line(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['stable_baselines3'] = None; from softac.cli import main; "
            f"sys.argv = ['softac', 'suite', 'classic', '--out', {str(tmp_path / 'x')!r}, '--algos', 'sb3-sac', "
            "'--envs', 'Pendulum-v1', '--seeds', '0', '--budget', '10']; sys.exit(main())")  # fmt: skip
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    # Its only cell skipped, the suite has nothing to run: refused, naming the reason, no directory written.
    assert proc.returncode == 2, proc.stdout + proc.stderr
    want = "nothing to run in suite classic (sb3-sac__Pendulum-v1: sb3-sac needs stable-baselines3 (pip install"
    assert proc.stderr.strip() == f"softac: error: {want} 'softac[bench]'))"
    assert not (tmp_path / "x").exists()


def test_a_train_flag_sb3_has_no_counterpart_of_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from softac.suite.sb3_cell import main

    argv = ["--env", "Pendulum-v1", "--seeds", "0", "--budget", "10", "--run-dir", str(tmp_path / "r"), "--n-step", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softac: error: sb3-sac cells do not take --n-step 3") and "\n" not in err
    assert not (tmp_path / "r").exists()
