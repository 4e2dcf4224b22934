"""--resume in the cases a scheduler meets (issue 16, items 9 and 11): a run killed before its first
checkpoint restarts, a finished run is a no-op that exits 0, a mid-episode checkpoint says so, and a
damaged config.json neither refuses a healthy run nor hides which field is wrong."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from helpers import TINY, TINY_FLAGS, popen_cli, run_cli

from softac import SAC, cli
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != ".lock"}


def test_run_killed_before_its_first_checkpoint_restarts_from_step_0(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = popen_cli("train", "--env", "Pendulum-v1", "--total-steps", "100000", "--learning-starts", "100",
                     "--eval-freq", "100", "--run-dir", str(run), *TINY_FLAGS)  # fmt: skip
    deadline = time.monotonic() + 90
    while not (run / "progress.csv").is_file() or len(read_progress(run / "progress.csv")) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not list_checkpoints(run) and (run / "config.json").is_file()
    done = run_cli("train", "--resume", str(run), "--total-steps", "300", "--no-progress")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("softac:")]
    assert notes == [f"softac: note: {run} has no checkpoint (it stopped before its first); restarting it from "
                     "step 0 with its saved config"]  # fmt: skip
    assert [r["step"] for r in read_progress(run / "progress.csv")] == ["100", "200", "300"]
    assert SAC.load(run).env_steps == 300


def test_batched_run_without_checkpoints_restarts_every_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    SAC("Pendulum-v1", **TINY, seeds=[3, 5], learning_starts=50, total_steps=100, eval_freq=100).learn(
        run_dir=run, progress=False
    )
    for seed in (3, 5):  # what a kill before the first checkpoint leaves: everything else
        shutil.rmtree(run / f"seed_{seed}" / "checkpoints")
    code, err = _main(capsys, "train", "--resume", str(run), "--no-progress")
    assert code == 0 and any("restarting it from step 0" in line for line in err), err
    agent = SAC.load(run)
    assert agent.seeds == (3, 5) and agent.env_steps == 100


def test_resume_of_a_finished_run_is_a_no_op_that_exits_0(
    sac_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(sac_checkpoint, run)
    before = _files(run)
    for extra in ([], ["--total-steps", "400"], ["--total-steps", "300"]):
        code, err = _main(capsys, "train", "--resume", str(run), *extra, "--no-progress")
        assert code == 0 and err == [f"softac: {run} is already at step 400 of {extra[-1] if extra else 400}: "
                                     "nothing to do (pass a larger --total-steps to extend it)"], err  # fmt: skip
    assert _files(run) == before


@pytest.mark.parametrize(("checkpoint_at", "mid_episode"), [(300, True), (400, False)])
def test_mid_episode_resume_says_so_once(
    checkpoint_at: int, mid_episode: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    SAC("Pendulum-v1", **TINY, learning_starts=100, total_steps=checkpoint_at, eval_freq=checkpoint_at).learn(
        run_dir=run, progress=False
    )  # Pendulum's episodes last 200 steps: step 300 is mid-episode, 400 is between two
    capsys.readouterr()
    code, err = _main(capsys, "train", "--resume", str(run), "--total-steps", str(checkpoint_at + 100),
                      "--no-progress")  # fmt: skip
    assert code == 0
    notes = [line for line in err if "mid-episode" in line]
    assert len(notes) == (1 if mid_episode else 0), err
    if mid_episode:
        assert notes[0].startswith(f"softac: note: the checkpoint at step {checkpoint_at} was taken mid-episode")


# -- item 9: config.json damaged or incomplete -------------------------------------------------
@pytest.mark.parametrize(("damage", "problem"), [
    (lambda c: "{not json", "is not valid JSON"),
    (lambda c: json.dumps({k: v for k, v in c.items() if k != "algo"}), "has no 'algo' field"),
    (lambda c: json.dumps([1, 2]), "is not a JSON object"),
])  # fmt: skip
def test_damaged_config_json_does_not_refuse_a_healthy_run(
    damage: object, problem: str, sac_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(sac_checkpoint, run)
    good = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(damage(good))  # type: ignore[operator]
    # resuming into another directory that holds this damaged file: refused, naming the problem
    other = tmp_path / "other"
    shutil.copytree(run, other)
    shutil.rmtree(other / "checkpoints")
    code, err = _main(capsys, "train", "--resume", str(run), "--run-dir", str(other), "--total-steps", "500",
                      "--no-progress")  # fmt: skip
    assert code == 2 and problem in err[-1] and "None on None" not in err[-1], err
    # the run's own directory: the checkpoint is the truth, config.json is rewritten from it
    code, err = _main(capsys, "train", "--resume", str(run), "--total-steps", "500", "--no-progress")
    assert code == 0, err
    assert any(problem in line and "rewriting it from the checkpoint" in line for line in err), err
    assert json.loads((run / "config.json").read_text())["algo"] == "sac"
