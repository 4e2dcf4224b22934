"""Issue 22, what the first round left: a second ``learn()`` continues the live environments, a
signal during an evaluation that never ends exits at once (the evaluation is owed, and done first
on resume), the resume section and the counters of state.json are checked at load, messages name
the right thing, and ``softac sweep`` refuses before Ray starts what ``softac train`` refuses."""

from __future__ import annotations

import argparse
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

from softac import PPO, SAC, SoftacError, cli
from softac.io.files import read_tensors, write_safetensors
from softac.io.load import load_agent
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress
from softac.sweep.cli import prepare
from softac.sweep.trial import run_one
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


def test_a_signal_during_the_final_evaluation_leaves_it_to_the_resume(tmp_path: Path, capsys: Any) -> None:
    _SignalInEvaluation.steps = 0
    run = tmp_path / "run"
    agent = SAC("Pendulum-v1", **TINY, learning_starts=150, total_steps=200, eval_freq=200,
                eval_env=lambda: _SignalInEvaluation(50))  # fmt: skip
    with pytest.raises(Interrupted):
        agent.learn(run_dir=run, progress=False)
    assert agent.updates > 0 and _results(run) == []
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    assert [r[0] for r in _results(run)] == ["200"]  # the run is at its budget, and the evaluation was done
    assert SAC.load(run).resume_state[0]["pending_evaluation"] is False  # type: ignore[index]


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
    assert re.fullmatch(r"softac: interrupted by SIGTERM; checkpoint saved to \S+step_0000000300"
                        rf" — to continue it: softac train --resume {re.escape(str(run))}", last), err
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


# -- softac sweep ---------------------------------------------------------------------------------
SWEEP_TINY = [
    "--total-steps", "300", "--learning-starts", "200", "--hidden-sizes", "32", "32", "--batch-size", "64",
    "--buffer-size", "4000", "--eval-freq", "300", "--eval-episodes", "1", "--checkpoint-freq", "300",
    "--device", "cpu", "--no-progress",
]  # fmt: skip


@pytest.mark.parametrize(("args", "needle"), [
    (["--algo", "dqn"], "Pendulum-v1 has a Box action space, which dqn does not support"),
    (["--grid", "buffer_size=1e12"], "setting buffer_size=1e12: the replay buffer would need"),
    (["--search", "optuna", "--space", "buffer_size=int:1000:1000000000000"], "the replay buffer would need"),
    (["--env-kwargs", "max_episode_steps=-1"], "max_episode_steps must be a positive"),
    (["--env-kwargs", '{"max_episode_steps": 0}'], "max_episode_steps must be a positive"),
    (["--seeds", "0-99999999999999999999"], "at most 4096 seeds"),
    (["--gpus-per-trial", "1"], "this machine has none"),
])  # fmt: skip
def test_sweep_refuses_before_ray_what_train_refuses(args: list[str], needle: str, tmp_path: Path, capsys: Any) -> None:
    ray = pytest.importorskip("ray")
    if "--gpus-per-trial" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert not ray.is_initialized()
    out = tmp_path / "sweep"
    code = cli.main(["sweep", "--env", "Pendulum-v1", "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not ray.is_initialized() and not out.exists()  # Ray never started, nothing written


def test_sweep_takes_a_module_env_id_as_train_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--env module:EnvId`` typed by the user imports the module (as `softac train` does); its
    trials resume from their checkpoints; ``--resume`` of the sweep needs ``--allow-import``."""
    (tmp_path / "hostile_envs.py").write_text(
        "import gymnasium\n"
        "gymnasium.register('HostilePendulum-v0', entry_point='gymnasium.envs.classic_control:PendulumEnv',"
        " max_episode_steps=200)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pytest.importorskip("ray")
    from softac.sweep.runner import grid_trials  # imports Ray (does not start it)

    env_id = "hostile_envs:HostilePendulum-v0"
    argv = ["--env", env_id, "--env-kwargs", "g=9.5", "--out", str(tmp_path / "sweep"), *SWEEP_TINY]
    spec, out, _ = prepare(argv, argparse.ArgumentParser)
    assert spec.envs == [env_id] and spec.given_values()["env_kwargs"] == {"g": 9.5}
    trial = grid_trials(spec, out)[0]
    first = run_one("sac", trial["values"], Path(trial["run_dir"]))
    assert first["error"] is None and first["state"] == "fresh"
    more = run_one("sac", {**trial["values"], "total_steps": 400}, Path(trial["run_dir"]))
    assert more["error"] is None and (more["state"], more["resumed_from"]) == ("resume", 300)
    agent = SAC.load(trial["run_dir"], allow_import=["hostile_envs"])
    assert agent.env_steps == 400 and agent.updates > 0 and agent.config.env_kwargs == (("g", 9.5),)
    with pytest.raises(SoftacError, match="would import the Python module 'hostile_envs'"):
        prepare(["--resume", str(out)], argparse.ArgumentParser)
    prepare(["--resume", str(out), "--allow-import", "hostile_envs"], argparse.ArgumentParser)


def test_sigterm_ends_a_sweep_with_one_line_and_143(tmp_path: Path) -> None:
    """Starts a real local Ray (slow): SIGTERM while Ray Tune runs the sweep (before: exit 1 and Ray's
    stack dump, as Ray's own handler calls sys.exit)."""
    pytest.importorskip("ray")
    out = tmp_path / "sweep"
    proc = popen_cli(
        "sweep", "--env", "Pendulum-v1", "--out", str(out), *SWEEP_TINY[2:], "--total-steps", "1000000",
        "--no-compile-update", "--cpus-per-trial", "1",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # Tune's experiment directory: Ray has started and Tune runs (its trial may still be starting)
        while not (out / ".tune").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [line for line in err.splitlines() if line.strip() and "trial/s" not in line]  # the bar's redraws
    assert proc.returncode == 143, err
    assert "Traceback" not in err and lines[-1] == (
        f"softac: sweep interrupted by SIGTERM; continue it with: softac sweep --resume {out}"
    ), err
