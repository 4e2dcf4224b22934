"""Exact resume (issue 4): a run stopped at a checkpoint and resumed is bit-identical to one that
never stopped, through the Python API and the CLI, and its progress.csv has each step once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, run_cli, state_tensors

from softac import SAC, TD3
from softac.checkpoint import list_checkpoints
from softac.logging import read_progress

# Pendulum episodes last 200 steps, so step 1000 is an episode boundary; updates begin at 500 and
# run at a UTD ratio of 0.5 (so the fractional schedule must survive the resume too).
RESUME: dict[str, Any] = {
    **TINY, "learning_starts": 500, "utd_ratio": 0.5, "eval_freq": 500, "log_freq": 500,
    "checkpoint_freq": 1000, "seed": 3,
}  # fmt: skip
RESUME_FLAGS = [
    "--algo", "sac", "--env", "Pendulum-v1", "--learning-starts", "500", "--utd-ratio", "0.5",
    "--eval-freq", "500", "--log-freq", "500", "--checkpoint-freq", "1000", "--seed", "3", *TINY_FLAGS,
]  # fmt: skip


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor], SAC]:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    agent = SAC("Pendulum-v1", **RESUME, total_steps=2000)
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates == 750
    return run_dir, state_tensors(agent), agent


def _progress(run_dir: Path) -> list[dict[str, str]]:
    return read_progress(run_dir / "progress.csv")


def _assert_same_progress(a: Path, b: Path) -> None:
    ra, rb = _progress(a), _progress(b)
    assert [r["step"] for r in rb] == [r["step"] for r in ra] == ["500", "1000", "1500", "2000"]
    for key in ("updates", "episodes", "eval_return_mean", "eval_return_std", "loss_critic", "alpha"):
        assert [r[key] for r in rb] == [r[key] for r in ra], key


@pytest.mark.slow
def test_resume_through_api_is_bit_identical(straight: Any, tmp_path: Path) -> None:
    ref_dir, ref_tensors, ref_agent = straight
    run_dir = tmp_path / "run"
    first = SAC("Pendulum-v1", **RESUME, total_steps=1000)
    first.learn(run_dir=run_dir, progress=False)
    assert first.updates == 250
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000001000"]
    del first

    resumed = SAC.load(run_dir)
    assert (resumed.env_steps, resumed.updates) == (1000, 250)
    resumed.learn(total_steps=2000, run_dir=run_dir, progress=False)
    assert resumed.updates == 750
    assert_bit_identical(ref_tensors, state_tensors(resumed))
    assert torch.equal(resumed.buffer.storage[:2000], ref_agent.buffer.storage[:2000])
    assert (resumed.env_steps, resumed.episodes) == (ref_agent.env_steps, ref_agent.episodes)
    _assert_same_progress(ref_dir, run_dir)
    # the checkpoint written at the end of the resumed run is identical to the straight run's
    assert_bit_identical(state_tensors(SAC.load(ref_dir)), state_tensors(SAC.load(run_dir)))


@pytest.mark.slow
def test_resume_through_cli_is_bit_identical(straight: Any, tmp_path: Path) -> None:
    ref_dir, ref_tensors, _ = straight
    run_dir = tmp_path / "cli-run"
    proc = run_cli("train", *RESUME_FLAGS, "--total-steps", "1000", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("train", "--resume", str(run_dir), "--total-steps", "2000", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "resuming sac on Pendulum-v1 at step 1000" in proc.stderr
    assert "step 2000: eval return" in proc.stdout
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000001000", "step_0000002000"]
    assert_bit_identical(ref_tensors, state_tensors(SAC.load(run_dir)))
    _assert_same_progress(ref_dir, run_dir)


def test_resume_cannot_change_learned_settings(sac_checkpoint: Path) -> None:
    proc = run_cli("train", "--resume", str(sac_checkpoint), "--gamma", "0.5", "--total-steps", "800")
    assert proc.returncode == 2
    assert "--gamma cannot be changed" in proc.stderr


def test_progress_rows_after_the_checkpoint_are_redone_once(tmp_path: Path) -> None:
    """A run killed after writing evaluation rows past its last checkpoint: on resume those rows
    are dropped and written again, so every step appears exactly once."""
    settings = {**TINY, "learning_starts": 100, "eval_freq": 100, "checkpoint_freq": 200}
    settings["keep_checkpoints"] = 5
    run_dir = tmp_path / "run"
    TD3("Pendulum-v1", **settings, total_steps=300).learn(run_dir=run_dir, progress=False)
    assert [r["step"] for r in _progress(run_dir)] == ["100", "200", "300"]
    shutil.rmtree(list_checkpoints(run_dir)[-1])  # as if killed just before the step-300 checkpoint
    agent = TD3.load(run_dir)
    assert agent.env_steps == 200
    agent.learn(total_steps=500, run_dir=run_dir, progress=False)
    assert agent.updates == 400
    steps = [int(r["step"]) for r in _progress(run_dir)]
    assert steps == [100, 200, 300, 400, 500]
    names = [p.name for p in list_checkpoints(run_dir)]
    assert names == ["step_0000000200", "step_0000000400", "step_0000000500"]


def test_resume_mid_episode_continues_with_fresh_episodes(tmp_path: Path) -> None:
    """Step 300 is mid-episode for Pendulum: the resumed run still finishes, with every counter
    continuing from the checkpoint (the simulator state is not in the checkpoint)."""
    run_dir = tmp_path / "run"
    TD3("Pendulum-v1", **TINY, learning_starts=100, total_steps=300, eval_freq=300).learn(
        run_dir=run_dir, progress=False
    )
    agent = TD3.load(run_dir)
    assert agent.resume_state is not None
    assert agent.resume_state["collector"]["at_episode_boundary"] is False
    agent.learn(total_steps=500, run_dir=run_dir, progress=False)
    assert (agent.env_steps, agent.updates) == (500, 400)
    assert agent.buffer.size == 500
    assert [r["step"] for r in _progress(run_dir)] == ["300", "500"]
