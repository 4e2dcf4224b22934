"""`softac sweep --search optuna --metric eval_success_rate` on a REAL local Ray instance: a goal
environment that reports success (tests/test_success.py's GoalEnv, imported in each Ray worker by
``--allow-import``) gets best.json by its final success rate; one that reports none (Pendulum) is
refused in one line before any trial starts (a probe episode finds no success flag), never a traceback."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_success import GOAL

from softac.cli import main

ray = pytest.importorskip("ray")
pytest.importorskip("optuna")

TINY = [
    "--search", "optuna", "--trials", "1", "--space", "actor_lr=loguniform:1e-4:1e-3", "--seeds", "0",
    "--metric", "eval_success_rate", "--total-steps", "300", "--learning-starts", "100", "--hidden-sizes", "16", "16",
    "--batch-size", "32", "--buffer-size", "1000", "--eval-freq", "150", "--eval-episodes", "6", "--device", "cpu",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance; its workers import the test environment's module from tests/ (they
    inherit PYTHONPATH from this process's environment, not its sys.path)."""
    saved = os.environ.get("PYTHONPATH")
    here = str(Path(__file__).parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([here, *([saved] if saved else [])])
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             object_store_memory=100 * 2**20)  # fmt: skip
    yield
    ray.shutdown()
    if saved is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = saved


def test_search_on_the_success_rate(local_ray: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "goal"
    argv = ["sweep", "--env", f"test_success:{GOAL}", "--allow-import", "test_success", "--out", str(out), *TINY]
    assert main(argv) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["metric"] == "eval_success_rate"
    (progress,) = out.glob("*/trial_*/seed_0/progress.csv")
    with progress.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [150, 300] and float(rows[-1]["updates"]) > 0  # past learning_starts
    # GoalEnv's outcome is a coin the policy cannot change: the final rate is 6 episodes' flags.
    assert best["value"] == pytest.approx(float(rows[-1]["eval_success_rate"]))
    assert best["value"] * 6 == pytest.approx(round(best["value"] * 6))
    assert f"best eval_success_rate {best['value']:.2f}" in capsys.readouterr().out


def test_search_on_success_without_success_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pendulum"
    assert main(["sweep", "--env", "Pendulum-v1", "--out", str(out), *TINY]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert err[0] == (
        "softac: error: --metric eval_success_rate needs an environment that reports success; Pendulum-v1 reported "
        "neither info['is_success'] nor info['success'] in 200 random steps of an episode: choose another --metric, "
        "e.g. eval_return_mean"
    )
    assert not list(tmp_path.rglob("progress.csv")) and not out.exists()  # refused before the sweep was written


def test_the_success_probe_runs_one_episode_of_the_trials_environment() -> None:
    from softac.errors import SoftacError
    from softac.sweep.values import check_reports_success

    check_reports_success(GOAL, None, "eval_success_rate")  # reports it in every step: passes
    with pytest.raises(SoftacError, match=r"in 20 random steps of an episode"):  # the run's max_episode_steps
        check_reports_success("Pendulum-v1", {"max_episode_steps": 20}, "train_success_rate")


def test_unknown_metric_is_refused_before_ray(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--env", "Pendulum-v1", "--out", str(tmp_path / "s"), *TINY]
    argv[argv.index("eval_success_rate")] = "eval_sucess_rate"
    assert main(argv) == 2
    assert "unknown --metric 'eval_sucess_rate'" in capsys.readouterr().err
