"""Issue 22, what the first round left: a second ``learn()`` continues the live environments, a
signal during an evaluation that never ends exits at once (the evaluation is owed, and done first
on resume), the resume section and the counters of state.json are checked at load, messages name
the right thing, and ``softac sweep`` refuses before Ray starts what ``softac train`` refuses."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import TINY, TINY_FLAGS, popen_cli, state_tensors

from softac import PPO, SAC, SoftacError
from softac.io.files import read_tensors, write_safetensors
from softac.io.load import load_agent
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress
from softac.train import Interrupted

# The progress.csv columns that are the run's results (not its timing).
RESULT_COLUMNS = ("step", "updates", "episodes", "eval_return_mean", "eval_return_std", "train_return_mean")


def _results(run: Path) -> list[list[str]]:
    return [[row[c] for c in RESULT_COLUMNS] for row in read_progress(run / "progress.csv")]


def _assert_same_state(a: Any, b: Any) -> None:
    sa, sb = state_tensors(a), state_tensors(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    assert (a.env_steps, a.updates, a.episodes) == (b.env_steps, b.updates, b.episodes)


# -- a second learn() continues ------------------------------------------------------------------
_PPO_TINY = {k: v for k, v in TINY.items() if k not in ("batch_size", "buffer_size")}


@pytest.mark.parametrize(
    ("algo", "settings", "half"),
    [  # Pendulum's episodes are 200 steps: both halves end mid-episode
        (SAC, {**TINY, "learning_starts": 200, "eval_freq": 250}, 250),
        (PPO, {**_PPO_TINY, "n_steps": 64, "minibatch_size": 32, "n_epochs": 2, "eval_freq": 192}, 192),
    ],
)
def test_two_learn_calls_equal_one_run_of_their_sum(
    algo: Any, settings: dict[str, Any], half: int, tmp_path: Path, capsys: Any
) -> None:
    """As SB3's ``learn(reset_num_timesteps=False)``: the second call continues the live
    environments (before: every unfinished episode restarted, with the mid-episode checkpoint note)."""
    straight = algo("Pendulum-v1", **settings, total_steps=2 * half)
    straight.learn(run_dir=tmp_path / "straight", progress=False)
    capsys.readouterr()
    twice = algo("Pendulum-v1", **settings, total_steps=2 * half)
    twice.learn(half, run_dir=tmp_path / "twice", progress=False)
    twice.learn(2 * half, run_dir=tmp_path / "twice", progress=False)
    err = capsys.readouterr().err
    assert straight.updates > 0
    assert "mid-episode" not in err and "restart" not in err, err
    _assert_same_state(straight, twice)
    assert len(_results(tmp_path / "straight")) == 2 and _results(tmp_path / "twice") == _results(tmp_path / "straight")


# -- a signal during an evaluation ----------------------------------------------------------------
class _SignalInEvaluation(gym.Wrapper):  # type: ignore[type-arg]
    """Pendulum for evaluation that sends SIGTERM to its own process at its ``at``-th step counted
    over every instance (``at=None``: never); the returns are Pendulum's."""

    steps = 0

    def __init__(self, at: int | None) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.at = at

    def step(self, action: Any) -> Any:
        type(self).steps += 1
        if type(self).steps == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return self.env.step(action)


def test_sigterm_during_an_evaluation_saves_the_training_state_and_the_owed_evaluation(
    tmp_path: Path, capsys: Any
) -> None:
    """Evaluations at 200 and 400 (episode boundaries: a resume there is exact). SIGTERM at the
    50th step of the evaluation at 200: the checkpoint is the training state at 200; resuming does
    the owed evaluation first, trains on and ends bit-identical to the run that went straight through."""
    kwargs = {**TINY, "learning_starts": 150, "total_steps": 400, "eval_freq": 200, "checkpoint_freq": 400}
    straight = SAC("Pendulum-v1", **kwargs, eval_env=lambda: _SignalInEvaluation(None))
    straight.learn(run_dir=tmp_path / "straight", progress=False)
    _SignalInEvaluation.steps = 0
    run = tmp_path / "run"
    agent = SAC("Pendulum-v1", **kwargs, eval_env=lambda: _SignalInEvaluation(50))
    with pytest.raises(Interrupted) as caught:
        agent.learn(run_dir=run, progress=False)
    assert caught.value.exit_code == 143
    assert caught.value.checkpoint is not None and agent.updates > 0
    assert [p.name for p in list_checkpoints(run)] == ["step_0000000200"] == [caught.value.checkpoint.name]
    assert _results(run) == []  # the abandoned evaluation logged nothing
    capsys.readouterr()
    resumed = SAC.load(run)
    assert resumed.resume_state is not None and resumed.resume_state[0]["pending_evaluation"] is True
    resumed.learn(run_dir=run, progress=False)
    _assert_same_state(straight, resumed)
    assert _results(run) == _results(tmp_path / "straight")


def test_sigterm_during_an_evaluation_that_never_ends_exits_at_once(tmp_path: Path) -> None:
    """An evaluation episode of 10⁹ steps: SIGTERM must not wait for it (a scheduler's grace period
    ends in SIGKILL). The run can be nowhere but in that evaluation at step 300."""
    run = tmp_path / "run"
    proc = popen_cli(
        "train", "--env", "Pendulum-v1", "--env-kwargs", "max_episode_steps=1000000000", "--total-steps", "600",
        "--learning-starts", "200", "--eval-freq", "300", "--checkpoint-freq", "250", *TINY_FLAGS,
        "--no-compile-update", "--run-dir", str(run),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not list_checkpoints(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(3.0)  # 50 more steps and updates of a 32×32 network: far less than this
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert took < 10, took
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"softac: interrupted by SIGTERM; checkpoint saved to \S+step_0000000300", last), err
    assert "Traceback" not in err


# -- state.json's counters, the buffer file, messages ---------------------------------------------
def _rewrite_state(ckpt: Path, edit: Any) -> None:
    state = json.loads((ckpt / "state.json").read_text())
    edit(state)
    (ckpt / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda s: s["counters"].update(env_steps=100), "its buffer holds 400 rows but env_steps is 100"),
    (lambda s: s["counters"].update(env_steps=0, episodes=0), "its buffer holds 400 rows but env_steps is 0"),
    (lambda s: s["data"].update(cursor=7), "its position is 7 (it must be 400)"),
])  # fmt: skip
def test_counters_below_the_buffers_rows_are_refused(run_copy: Path, edit: Any, needle: str) -> None:
    """The session's run is at step 400 with 400 rows in a buffer of 4000."""
    _rewrite_state(list_checkpoints(run_copy)[-1], edit)
    with pytest.raises(SoftacError, match=re.escape(needle)):
        load_agent(run_copy)


def test_nan_rows_in_a_buffer_file_are_a_corrupted_file_not_a_divergence(run_copy: Path) -> None:
    ckpt = list_checkpoints(run_copy)[-1]
    rows = {n: t.clone() for n, t in read_tensors(ckpt / "buffer.safetensors").items()}
    rows["storage"][5, 0] = float("nan")
    digest = write_safetensors(ckpt / "buffer.safetensors", rows)  # a consistent checksum: an edited file
    _rewrite_state(ckpt, lambda s: s["files"].update({"buffer.safetensors": digest}))
    with pytest.raises(
        SoftacError, match=r"buffer.safetensors: stored storage holds NaN/inf .* buffer file is corrupted"
    ):
        SAC.load(run_copy)  # before: loaded, and training 'diverged at step 404'


def test_load_with_another_env_names_both_environments(sac_checkpoint: Path) -> None:
    for env in ("MountainCarContinuous-v0", gym.make("MountainCarContinuous-v0")):
        with pytest.raises(SoftacError) as caught:
            SAC.load(sac_checkpoint, env=env)
        msg = str(caught.value)
        assert "made on Pendulum-v1 (observations of size 3" in msg, msg
        assert "the environment given (MountainCarContinuous-v0) has 2 and 1" in msg, msg


class _UnboundedActions(gym.Env):  # type: ignore[type-arg]
    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action: Any) -> Any:
        return np.zeros(3, np.float32), float(np.asarray(action).sum()), False, False, {}


def test_the_advice_for_unbounded_actions_works_with_this_gymnasium() -> None:
    """ClipAction and RescaleAction keep infinite bounds in Gymnasium 1.x (the old advice led nowhere);
    the wrapper the message names gives an environment SAC accepts."""
    with pytest.raises(SoftacError, match="infinite bounds") as caught:
        SAC(_UnboundedActions(), **TINY)
    assert "TransformAction" in str(caught.value)
    assert not np.isfinite(gym.wrappers.ClipAction(_UnboundedActions()).action_space.high).all()
    wrapped = gym.wrappers.TransformAction(
        _UnboundedActions(), lambda a: a, gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    )
    agent = SAC(wrapped, **TINY)
    assert agent.spec.action_high.tolist() == [2.0]
