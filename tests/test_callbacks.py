"""Callbacks of ``learn``: hooks an SB3 user recognises, a False that stops training with a
checkpoint from which the run resumes bit for bit, the built-in stops, and callbacks never saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY, assert_bit_identical, state_tensors

from softac import (
    PPO,
    SAC,
    Callback,
    CallbackInfo,
    SoftacError,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress

# Pendulum's episodes last 200 steps: a stop at step 400 falls between episodes for the one env,
# where a checkpoint resumes bit-identically (a mid-episode one restarts the open episode).
RUN: dict[str, Any] = {**TINY, "learning_starts": 200, "eval_freq": 200, "log_freq": 100,
                       "checkpoint_freq": 10_000, "seed": 5}  # fmt: skip
TOTAL = 800


class Recorder(Callback):
    """Records every hook call; stops at ``stop_at`` from on_step."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.stop_at = stop_at
        self.eval_means: list[list[float]] = []
        self.checkpoints: list[list[Path]] = []

    def on_training_start(self, info: CallbackInfo) -> None:
        self.calls.append(("start", info.num_timesteps))

    def on_step(self, info: CallbackInfo) -> bool:
        self.calls.append(("step", info.num_timesteps))
        return self.stop_at is None or info.num_timesteps < self.stop_at

    def on_evaluation(self, info: CallbackInfo) -> bool:
        self.eval_means.append(info.eval_return_mean)
        self.calls.append(("eval", info.num_timesteps))
        return True

    def on_checkpoint(self, info: CallbackInfo) -> bool:
        self.checkpoints.append(info.checkpoints)
        return True

    def on_training_end(self, info: CallbackInfo) -> None:
        self.calls.append(("end", info.num_timesteps))


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    agent = SAC("Pendulum-v1", **RUN, total_steps=TOTAL)
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates > 0
    return run_dir, state_tensors(agent)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "steps_per_s")}
            for r in read_progress(run_dir / "progress.csv")]  # fmt: skip


def test_hooks_are_called_with_what_happened(tmp_path: Path) -> None:
    rec = Recorder()
    agent = SAC("Pendulum-v1", **RUN, total_steps=400)
    agent.learn(run_dir=tmp_path / "run", progress=False, callback=rec)
    assert rec.agent is agent  # as SB3's self.model
    assert rec.calls[0] == ("start", 0) and rec.calls[-1] == ("end", 400)
    steps = [n for hook, n in rec.calls if hook == "step"]
    assert steps == list(range(1, 401))
    assert [n for hook, n in rec.calls if hook == "eval"] == [200, 400]
    rows = read_progress(tmp_path / "run" / "progress.csv")
    assert [m[0] for m in rec.eval_means] == pytest.approx([float(r["eval_return_mean"]) for r in rows], abs=1e-2)
    assert rec.checkpoints == [[tmp_path / "run" / "checkpoints" / "step_0000000400"]]


def test_stop_from_a_callback_writes_a_checkpoint_and_resumes_bit_identically(
    straight: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref_dir, ref = straight
    run_dir = tmp_path / "run"
    rec = Recorder(stop_at=400)
    agent = SAC("Pendulum-v1", **RUN, total_steps=TOTAL)
    agent.learn(run_dir=run_dir, progress=False, callback=rec)  # returns normally
    assert agent.env_steps == 400 and rec.calls[-1] == ("end", 400)
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000000400"]  # no cadence checkpoint there
    err = capsys.readouterr().err
    assert "training stopped at step 400 by Recorder" in err and "step_0000000400" in err
    # callbacks are never saved: nothing in the checkpoint names one
    state = json.loads((list_checkpoints(run_dir)[0] / "state.json").read_text())
    assert "Recorder" not in json.dumps(state)
    resumed = SAC.load(run_dir)
    resumed.learn(total_steps=TOTAL, run_dir=run_dir, progress=False)
    assert_bit_identical(ref, state_tensors(resumed))
    assert _rows(run_dir) == _rows(ref_dir)


def test_stop_then_learn_again_in_process_continues_exactly(
    straight: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    """Without a run directory nothing is written; the same agent's next learn() continues."""
    _, ref = straight
    agent = SAC("Pendulum-v1", **RUN, total_steps=TOTAL)
    agent.learn(progress=False, callback=lambda info: info.num_timesteps < 600)  # a plain function: on_step
    assert agent.env_steps == 600
    agent.learn(progress=False)
    assert_bit_identical(ref, state_tensors(agent))


def test_reward_threshold_stops_at_the_first_evaluation_that_reaches_it(tmp_path: Path) -> None:
    agent = SAC("Pendulum-v1", **RUN, total_steps=TOTAL)
    agent.learn(run_dir=tmp_path / "a", progress=False, callback=StopTrainingOnRewardThreshold(-1e9))
    assert agent.env_steps == 200  # the first evaluation already reaches −1e9
    assert [p.name for p in list_checkpoints(tmp_path / "a")] == ["step_0000000200"]
    never = SAC("Pendulum-v1", **RUN, total_steps=400)
    never.learn(progress=False, callback=StopTrainingOnRewardThreshold(1e9))
    assert never.env_steps == 400


def test_no_improvement_stops_after_n_evaluations_without_a_new_best() -> None:
    cb = StopTrainingOnNoModelImprovement(max_no_improvement_evals=2, min_evals=1)

    def info(mean: float) -> CallbackInfo:
        return CallbackInfo(None, 0, 0, eval_returns=np.array([[mean]]))

    # evaluation 1 counts only as the best (min_evals); then −5 improves, −7 and −6 do not
    assert [cb.on_evaluation(info(m)) for m in (-10.0, -5.0, -7.0, -6.0)] == [True, True, True, False]
    assert "not improved for 2 evaluations" in cb.reason
    # in a run, with a budget that allows more evaluations than it takes to stop
    agent = SAC("Pendulum-v1", **RUN, total_steps=2000)
    stop = StopTrainingOnNoModelImprovement(max_no_improvement_evals=1)
    agent.learn(progress=False, callback=[stop, Recorder()])
    assert agent.env_steps < 2000 and agent.env_steps % 200 == 0 and stop.no_improvement == 1


@pytest.mark.parametrize("bad", [3, "stop", SAC, [Recorder(), 7]])
def test_a_callback_that_is_neither_function_nor_hooks_is_one_line(bad: Any) -> None:
    agent = SAC("Pendulum-v1", **RUN, total_steps=400)
    with pytest.raises(SoftacError, match="callback must be a function"):
        agent.learn(progress=False, callback=bad)
    assert agent.env_steps == 0


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: StopTrainingOnRewardThreshold(float("nan")), "finite"),
        (lambda: StopTrainingOnRewardThreshold("high"), "a number"),  # type: ignore[arg-type]
        (lambda: StopTrainingOnNoModelImprovement(0), "max_no_improvement_evals"),
        (lambda: StopTrainingOnNoModelImprovement(2, min_evals=-1), "min_evals"),
    ],
)
def test_builtin_arguments_are_checked(make: Any, needle: str) -> None:
    with pytest.raises(SoftacError, match=needle):
        make()


def test_ppo_stops_between_rollouts_and_resumes_bit_identically(tmp_path: Path) -> None:
    """For PPO a step of the loop is a whole rollout (SB3's on_rollout_end): the stop falls between
    two rollouts, here also between two 200-step Pendulum episodes."""
    kw = {"hidden_sizes": (16,), "n_steps": 200, "minibatch_size": 50, "n_epochs": 2, "eval_freq": 200,
          "eval_episodes": 1, "threads": 1, "seed": 2}  # fmt: skip
    ref = PPO("Pendulum-v1", **kw, total_steps=600)
    ref.learn(progress=False)
    rec = Recorder(stop_at=400)
    agent = PPO("Pendulum-v1", **kw, total_steps=600)
    agent.learn(run_dir=tmp_path / "run", progress=False, callback=rec)
    assert agent.env_steps == 400 and [n for hook, n in rec.calls if hook == "step"] == [200, 400]
    resumed = PPO.load(tmp_path / "run")
    resumed.learn(run_dir=tmp_path / "run", progress=False)
    assert resumed.env_steps == 600
    assert_bit_identical(state_tensors(ref), state_tensors(resumed))


def test_several_seeds_stop_together_from_on_checkpoint_and_resume_bit_identically(tmp_path: Path) -> None:
    kw = {**RUN, "seeds": [0, 1], "checkpoint_freq": 200}
    del kw["seed"]
    ref = SAC("Pendulum-v1", **kw, total_steps=600)
    ref.learn(progress=False)

    class StopAtSecondCheckpoint(Callback):
        def on_checkpoint(self, info: CallbackInfo) -> bool:
            assert [p.parent.parent.name for p in info.checkpoints] == ["seed_0", "seed_1"]
            return info.num_timesteps < 400

    agent = SAC("Pendulum-v1", **kw, total_steps=600)
    agent.learn(run_dir=tmp_path / "run", progress=False, callback=StopAtSecondCheckpoint())
    assert agent.env_steps == 400
    resumed = SAC.load(tmp_path / "run")
    assert resumed.seeds == (0, 1) and resumed.env_steps == 400
    resumed.learn(run_dir=tmp_path / "run", progress=False)
    assert_bit_identical(state_tensors(ref), state_tensors(resumed))
