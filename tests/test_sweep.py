"""`softac sweep` on a REAL local Ray instance (2 CPUs, shared by the tests of this module):
a grid sweep with a trial SIGKILLed mid-run and retried, an Optuna search, --resume, bad specs."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_bit_identical, assert_one_line_error, cli_env, state_tensors

from softac import SAC
from softac.cli import main
from softac.errors import SoftacError
from softac.sweep.cli import prepare
from softac.sweep.trial import KILL_ENV, run_state

ray = pytest.importorskip("ray")

TINY_SWEEP = [
    "--env", "Pendulum-v1", "--total-steps", "600", "--learning-starts", "200", "--hidden-sizes", "32", "32",
    "--batch-size", "64", "--buffer-size", "4000", "--eval-freq", "100", "--eval-episodes", "1",
    "--checkpoint-freq", "200", "--device", "cpu", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def kill_control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray instance for the module. The kill hook's control file (see
    softac.sweep.trial) is named in the environment before Ray starts its workers, so they
    inherit it; it only acts once a test writes the file."""
    control = tmp_path_factory.mktemp("kill") / "kill.json"
    os.environ[KILL_ENV] = str(control)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             object_store_memory=100 * 2**20)  # sweeps pass no data through Ray: keep the store small  # fmt: skip
    yield control
    ray.shutdown()
    del os.environ[KILL_ENV]


def _sweep(argv: list[str]) -> dict[str, Any]:
    from softac.sweep.runner import run_sweep

    spec, out, _ = prepare(argv, argparse.ArgumentParser)
    return run_sweep(spec, out, progress=False)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def grid_sweep(kill_control: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """2 settings × 2 seeds; the first run to log an evaluation at step >= 300 is SIGKILLed."""
    out = tmp_path_factory.mktemp("sweeps") / "grid"
    kill_control.write_text(json.dumps({"after_step": 300}))
    capture = tmp_path_factory.mktemp("out") / "stdout.txt"
    with capture.open("w") as f, contextlib.redirect_stdout(f):  # the trial lines (capsys is per test)
        result = _sweep(["--seeds", "0-1", "--grid", "actor_lr=1e-4,3e-4", "--out", str(out), *TINY_SWEEP])
    claimed = kill_control.with_name(kill_control.name + ".claimed")
    return {"out": out, "result": result, "stdout": capture.read_text(), "killed": json.loads(claimed.read_text())}


def test_grid_sweep_makes_run_dirs_and_summary(grid_sweep: dict[str, Any]) -> None:
    out = grid_sweep["out"]
    assert grid_sweep["result"]["failed"] == []
    runs = sorted(out.glob("Pendulum-v1/*/seed_*"))
    assert [str(r.relative_to(out)) for r in runs] == [
        "Pendulum-v1/actor_lr=1e-4/seed_0", "Pendulum-v1/actor_lr=1e-4/seed_1",
        "Pendulum-v1/actor_lr=3e-4/seed_0", "Pendulum-v1/actor_lr=3e-4/seed_1",
    ]  # fmt: skip
    for run in runs:
        assert run_state(run, 600) == ("finished", 600)
        written = json.loads((run / "config.json").read_text())
        config = written["config"]
        assert config["actor_lr"] == float(run.parent.name.split("=")[1]) and config["seed"] == int(run.name[5:])
        # The sweep applies sac/Pendulum-v1's preset under the flags and the grid, as `softac train` does.
        assert config["critic_lr"] == 1e-3 and config["alpha_lr"] == 1e-3  # the preset's, given nowhere else
        assert written["preset"]["name"] == "sac/Pendulum-v1"
        assert {"actor_lr", "total_steps", "hidden_sizes", "learning_starts"} <= set(written["preset"]["overridden"])
        assert config["threads"] == 1  # --cpus-per-trial 1
        state = json.loads(max((run / "checkpoints").iterdir()).joinpath("state.json").read_text())
        assert state["counters"]["updates"] == 400  # gradient updates from step 200 on
    lines = [line for line in grid_sweep["stdout"].splitlines() if "final return" in line]
    assert len(lines) == 4 and all(line.startswith("Pendulum-v1 actor_lr=") for line in lines)
    rows = _rows(out / "summary.csv")
    assert [(r["setting"], r["n_seeds"], r["last_step"]) for r in rows] == [
        ("actor_lr=1e-4", "2", "600"), ("actor_lr=3e-4", "2", "600"),
    ]  # fmt: skip
    for r in rows:
        assert float(r["iqm_ci_low"]) <= float(r["iqm"]) <= float(r["iqm_ci_high"])
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "sweep.json").read_text())["grid"] == {"actor_lr": ["1e-4", "3e-4"]}


def test_killed_trial_resumes_to_the_uninterrupted_result(grid_sweep: dict[str, Any], tmp_path: Path) -> None:
    killed = Path(grid_sweep["killed"]["run_dir"])
    assert grid_sweep["killed"]["killed_after"] >= 300  # killed after the checkpoint at 200, before 600
    assert "its worker died; retrying" in grid_sweep["stdout"]
    # resumed from its checkpoint, not started again: two training sessions wrote TensorBoard events
    assert len(list((killed / "tb").glob("events.out.tfevents.*"))) == 2
    config = json.loads((killed / "config.json").read_text())["config"]
    env_id = config.pop("env_id")
    SAC(env_id, **config).learn(run_dir=tmp_path / "ref", progress=False)  # the same trial, never killed
    assert_bit_identical(state_tensors(SAC.load(killed)), state_tensors(SAC.load(tmp_path / "ref")))
    ref_rows, got_rows = _rows(tmp_path / "ref" / "progress.csv"), _rows(killed / "progress.csv")
    assert [(r["step"], r["eval_return_mean"]) for r in got_rows] == [
        (r["step"], r["eval_return_mean"]) for r in ref_rows
    ]  # the rows after the checkpoint were redone, not duplicated


def test_resume_skips_finished_runs(
    grid_sweep: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid"
    shutil.copytree(grid_sweep["out"], out)
    redo = out / "Pendulum-v1" / "actor_lr=3e-4" / "seed_1"
    shutil.rmtree(redo / "checkpoints")  # as if it died before its first checkpoint
    kept = {p: p.stat().st_mtime_ns for p in out.glob("Pendulum-v1/*/seed_*/progress.csv") if redo not in p.parents}
    capsys.readouterr()
    assert _sweep(["--resume", str(out), "--no-progress"])["failed"] == []
    printed = capsys.readouterr().out
    assert "3 already finished, 1 to run" in printed
    assert [line for line in printed.splitlines() if "final return" in line] == [
        line for line in printed.splitlines() if "actor_lr=3e-4 seed 1" in line
    ]  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished runs untouched
    assert run_state(redo, 600) == ("finished", 600)
    assert [r["step"] for r in _rows(redo / "progress.csv")] == [str(s) for s in range(100, 700, 100)]
    assert len(list((redo / "tb").glob("events.out.tfevents.*"))) == 1  # its partial files were removed first
    assert "0 to run" in _sweep_output(out, capsys)  # a finished sweep: nothing to do, Tune not even called


def _sweep_output(out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    _sweep(["--resume", str(out), "--no-progress"])
    return capsys.readouterr().out


def test_optuna_search_writes_best(kill_control: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "search"
    argv = ["sweep", "--search", "optuna", "--trials", "2", "--space", "actor_lr=loguniform:1e-4:1e-3",
            "--seeds", "0", "--out", str(out), *TINY_SWEEP]  # fmt: skip
    argv[argv.index("--total-steps") + 1] = "400"
    assert main(argv) == 0  # the command itself (Ray is already up: it joins this instance)
    printed = capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    assert f"best eval_return_mean {best['value']:.2f}" in printed
    assert best["metric"] == "eval_return_mean" and best["seeds"] == [0]
    assert 1e-4 <= best["config"]["actor_lr"] <= 1e-3
    trials = sorted(out.glob("Pendulum-v1/trial_*"))
    assert len(trials) == 2 and Path(best["trial_dir"]) in trials
    finals = [float(_rows(t / "seed_0" / "progress.csv")[-1]["eval_return_mean"]) for t in trials]
    assert best["value"] == pytest.approx(max(finals), abs=1e-3)
    assert len(_rows(out / "summary.csv")) == 2
    # --resume of a finished search: the saved Optuna study has both trials, nothing runs again
    capsys.readouterr()
    assert main(["sweep", "--resume", str(out), "--no-progress"]) == 0
    assert "2 finished, 0 to run" in capsys.readouterr().out
    assert json.loads((out / "best.json").read_text()) == best


def test_an_optional_switch_takes_none_in_a_grid() -> None:
    """``compile_update`` is true, false or none (unset: decided by the run's length)."""
    from softac.sweep.spec import parse_value

    assert [parse_value("sac", "compile_update", t) for t in ("true", "false", "none")] == [True, False, None]
    with pytest.raises(SoftacError, match="expected true, false or none"):
        parse_value("sac", "compile_update", "maybe")


def test_presets_per_environment_under_the_flags_and_the_grid() -> None:
    """Which values each run gets, without Ray: preset < fixed flags < grid setting, per env."""
    from softac.algos.dqn import DQNConfig
    from softac.sweep.runner import grid_trials
    from softac.sweep.spec import SweepSpec

    spec = SweepSpec(algo="dqn", envs=["CartPole-v1", "Acrobot-v1"], seeds=[0], config={"batch_size": "64"},
                     grid={"lr": ["1e-3"]}, preset="auto")  # fmt: skip
    spec.validate()
    cart = spec.run_values("CartPole-v1", {"lr": 1e-3})
    assert (cart["total_steps"], cart["target_update_interval"], cart["batch_size"], cart["lr"]) == (
        500_000, 500, 64, 1e-3
    )  # the preset's, the flag's, the grid's
    acro = spec.run_values("Acrobot-v1", {"lr": 1e-3})
    assert (acro["total_steps"], acro["hidden_sizes"], acro["batch_size"]) == (100_000, (256, 256), 64)
    trials = grid_trials(spec, Path("S"))
    assert [t["total_steps"] for t in trials] == [500_000, 100_000]
    assert all(t["preset"] == "auto" and "total_steps" not in t["values"] for t in trials)  # the agent applies it
    plain = SweepSpec(algo="dqn", envs=["CartPole-v1"], seeds=[0], preset="none")
    assert plain.run_values("CartPole-v1", {})["total_steps"] == DQNConfig().total_steps
    with pytest.raises(SoftacError, match="--preset must be auto or none"):
        SweepSpec(algo="dqn", envs=["CartPole-v1"], seeds=[0], preset="best").validate()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--grid", "actor_rate=1e-4"], "unknown sac config field 'actor_rate'"),
        (["--grid", "actor_lr="], "--grid actor_lr has an empty value"),
        (["--grid", "actor_lr=1e-4,"], "--grid actor_lr has an empty value"),
        (["--grid", "batch_size=abc"], "invalid value for batch_size: 'abc'"),
        (["--grid", "gamma=0.9,1.5"], "setting gamma=1.5: gamma must be in [0, 1]"),
        (["--grid", "seed=1,2"], "seed is a sweep axis: give it with --seeds"),
        (["--seeds", "4-1"], "invalid --seeds '4-1'"),
        (["--seeds", "0,x"], "invalid --seeds"),
        (["--seeds", "0,0"], "names a seed twice"),
        (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["--batch-size", "abc"], "invalid value for batch_size"),
        (["--search", "optuna", "--space", "actor_lr=normal:1:2"], "unknown kind 'normal'"),
        (["--search", "optuna", "--space", "batch_size=loguniform:16:256"], "batch_size is not a float field"),
        (["--search", "optuna", "--space", "actor_lr=loguniform:0:1"], "LOW > 0"),
    ],
)
def test_bad_specs_exit_2_before_ray(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["sweep", "--env", "Pendulum-v1", "--out", str(tmp_path / "sweep"), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("softac: error:") and needle in err[0], err
    assert not (tmp_path / "sweep").exists()  # nothing written


def test_sweep_cli_errors_in_a_subprocess(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    proc = subprocess.run(
        [sys.executable, "-m", "softac.cli", "sweep", "--env", "Pendulum-v1", "--out", str(tmp_path / "busy")],
        capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
    )  # fmt: skip
    assert_one_line_error(proc, "is not empty")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    # Without Ray installed (its import fails), one line saying how to install it.
    code = "import sys; sys.modules['ray'] = None; from softac.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "sweep", "--env", "Pendulum-v1", "--out", str(tmp_path / "s")],
        capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
    )  # fmt: skip
    assert_one_line_error(proc, 'pip install "softac[ray]"')
