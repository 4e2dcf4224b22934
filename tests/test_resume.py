"""Exact resume (issue 4): a run stopped at a checkpoint and resumed is bit-identical to one that
never stopped, through the Python API and the CLI, and its progress.csv has each step once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, run_cli, state_tensors

from softac import SAC, TD3, cli
from softac.io.rundir import list_checkpoints
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


@pytest.fixture(scope="module")
def half(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run stopped at step 1000 (its one checkpoint). Tests resume private copies."""
    run_dir = tmp_path_factory.mktemp("half") / "run"
    first = SAC("Pendulum-v1", **RESUME, total_steps=1000)
    first.learn(run_dir=run_dir, progress=False)
    assert first.updates == 250
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000001000"]
    return run_dir


@pytest.mark.slow
def test_resume_through_api_is_bit_identical(straight: Any, half: Path, tmp_path: Path) -> None:
    ref_dir, ref_tensors, ref_agent = straight
    run_dir = tmp_path / "run"
    shutil.copytree(half, run_dir)
    resumed = SAC.load(run_dir)
    assert (resumed.env_steps, resumed.updates) == (1000, 250)
    resumed.learn(total_steps=2000, run_dir=run_dir, progress=False)
    assert resumed.updates == 750
    assert_bit_identical(ref_tensors, state_tensors(resumed))
    assert torch.equal(resumed.buffer.storage[0, :2000], ref_agent.buffer.storage[0, :2000])
    assert (resumed.env_steps, resumed.episodes) == (ref_agent.env_steps, ref_agent.episodes)
    _assert_same_progress(ref_dir, run_dir)
    # the checkpoint written at the end of the resumed run is identical to the straight run's
    assert_bit_identical(state_tensors(SAC.load(ref_dir)), state_tensors(SAC.load(run_dir)))


@pytest.mark.slow
def test_resume_through_cli_is_bit_identical(straight: Any, half: Path, tmp_path: Path) -> None:
    ref_dir, ref_tensors, _ = straight
    run_dir = tmp_path / "cli-run"
    shutil.copytree(half, run_dir)
    proc = run_cli("train", "--resume", str(run_dir), "--total-steps", "2000", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "resuming sac on Pendulum-v1 at step 1000" in proc.stderr
    assert "step 2000: eval return" in proc.stdout
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000001000", "step_0000002000"]
    assert_bit_identical(ref_tensors, state_tensors(SAC.load(run_dir)))
    _assert_same_progress(ref_dir, run_dir)


def test_cli_flags_make_the_same_run_as_the_api(tmp_path: Path) -> None:
    """The CLI's main() builds exactly the config (and so the run) the Python API does: the same
    checkpoint, bit for bit (400 steps, in-process to stay fast). The CLI applies the preset of
    (sac, Pendulum-v1) by default, the API when asked: the flags and keywords override it alike."""
    run_dir = tmp_path / "cli"
    flags = [f if f != "1000" else "400" for f in RESUME_FLAGS]  # checkpoint at 400 instead of 1000
    argv = ["train", *flags, "--learning-starts", "300", "--total-steps", "400", "--run-dir", str(run_dir)]
    assert cli.main(argv) == 0
    api = SAC("Pendulum-v1", **{**RESUME, "learning_starts": 300, "checkpoint_freq": 400}, total_steps=400,
              preset="auto")  # fmt: skip
    assert api.config.actor_lr == 1e-3  # the preset's (rl-zoo3), not the default 3e-4
    api.learn(progress=False)
    assert api.updates == 50
    from_cli = SAC.load(run_dir)
    assert from_cli.config == api.config
    assert_bit_identical(state_tensors(api), state_tensors(from_cli))


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
    assert (agent.env_steps, agent.updates) == (200, 100)
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
    assert agent.updates == 200
    assert agent.resume_state is not None
    assert agent.resume_state[0]["collector"]["at_episode_boundary"] is False
    agent.learn(total_steps=500, run_dir=run_dir, progress=False)
    assert (agent.env_steps, agent.updates) == (500, 400)
    assert agent.buffer.size[0] == 500
    assert [r["step"] for r in _progress(run_dir)] == ["300", "500"]


def test_resume_with_parallel_envs_sync_and_async_agree(tmp_path: Path) -> None:
    """Two envs (step 400 = 200 vector steps = an episode boundary for both): a straight async run
    and a sync run resumed from a checkpoint at 400 end bit-identical."""
    settings = {**TINY, "learning_starts": 300, "eval_freq": 400, "n_envs": 2, "seed": 5, "policy_delay": 2}
    straight = TD3("Pendulum-v1", **settings, total_steps=600, vectorization="async")
    straight.learn(progress=False)  # (an async run used to crash at its very end, see trainer.py)
    assert straight.updates == 300 and straight.buffer.size[0] == 600

    run_dir = tmp_path / "run"
    first = TD3("Pendulum-v1", **settings, total_steps=400, vectorization="sync")
    first.learn(run_dir=run_dir, progress=False)
    assert first.updates == 100
    resumed = TD3.load(run_dir)
    assert resumed.resume_state is not None and resumed.resume_state[0]["collector"]["at_episode_boundary"]
    resumed.config = resumed.config.replace(vectorization="async")
    assert (resumed.env_steps, resumed.updates) == (400, 100)
    resumed.learn(total_steps=600, run_dir=run_dir, progress=False)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
    assert torch.equal(straight.buffer.storage[0, :600], resumed.buffer.storage[0, :600])


def test_resume_after_the_buffer_wrapped_is_bit_identical(tmp_path: Path) -> None:
    """A 256-transition buffer has wrapped around by step 400: its rows and cursor must survive."""
    settings = {**TINY, "buffer_size": 256, "learning_starts": 300, "eval_freq": 400, "seed": 7}
    straight = TD3("Pendulum-v1", **settings, total_steps=600)
    straight.learn(progress=False)
    run_dir = tmp_path / "run"
    TD3("Pendulum-v1", **settings, total_steps=400).learn(run_dir=run_dir, progress=False)
    resumed = TD3.load(run_dir)
    assert resumed.updates == 100
    assert resumed.buffer.size[0] == 256 and resumed.buffer.cursor[0] == 400 % 256
    resumed.learn(total_steps=600, run_dir=run_dir, progress=False)
    assert resumed.updates == straight.updates == 300
    assert resumed.buffer.cursor[0] == straight.buffer.cursor[0] == 600 % 256
    assert torch.equal(resumed.buffer.storage, straight.buffer.storage)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))


def test_cli_resume_from_a_checkpoint_directory_continues_its_run(sac_checkpoint: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(sac_checkpoint, run_dir)
    ckpt = list_checkpoints(run_dir)[-1]
    assert cli.main(["train", "--resume", str(ckpt), "--total-steps", "600", "--no-progress"]) == 0
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000000400", "step_0000000600"]
    assert [r["step"] for r in _progress(run_dir)] == ["400", "600"]
    agent = SAC.load(run_dir)
    assert (agent.env_steps, agent.updates) == (600, 400)


def test_compiled_update_run_resumes_bit_identically(tmp_path: Path) -> None:
    """A run with ``compile_update`` goes through the whole training loop past learning_starts, and
    its resume — a new agent, so a new compiled graph over the loaded tensors — continues it bit
    for bit (the optimizer state the compiled Adam created is saved and restored like eager's)."""
    cfg = {**RESUME, "learning_starts": 200, "checkpoint_freq": 400, "eval_freq": 400, "compile_update": True}
    straight = SAC("Pendulum-v1", **cfg, total_steps=600)
    straight.learn(progress=False)
    assert straight.updates == 200
    run_dir = tmp_path / "run"
    SAC("Pendulum-v1", **cfg, total_steps=400).learn(run_dir=run_dir, progress=False)
    resumed = SAC.load(run_dir)
    assert resumed.config.compile_update and resumed.updates == 100
    resumed.learn(total_steps=600, run_dir=run_dir, progress=False)
    assert resumed.updates == 200
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
