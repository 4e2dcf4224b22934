"""Divergence: a non-finite loss, parameter or action stops training with DivergenceError naming
the step and the quantity, and the last checkpoint on disk stays finite and loadable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, run_cli

from softac import SAC, TD3, DivergenceError
from softac.io.rundir import list_checkpoints
from softac.io.state import check_finite


def _poison_after(agent: Any, n_updates: int, module: str = "critic") -> None:
    """From the ``n_updates``-th update on, a weight of ``module`` becomes NaN (as if it blew up)."""
    original = agent.update

    def update() -> Any:
        if agent.updates == n_updates:
            with torch.no_grad():
                next(getattr(agent, module).parameters()).view(-1)[0] = float("nan")
        return original()

    agent.update = update


@pytest.mark.parametrize(
    ("log_freq", "diverged_at"),
    [(100, 500), (1000, 600)],  # found at the next log step, or at the latest before the next checkpoint
)
def test_nan_weights_raise_divergence_and_keep_last_good_checkpoint(
    log_freq: int, diverged_at: int, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    settings = {**TINY, "learning_starts": 100, "total_steps": 1000, "eval_freq": 1000}
    settings["checkpoint_freq"] = 300
    # policy_delay keeps the actor (and so the actions) finite: only the critic blows up here
    agent = TD3("Pendulum-v1", **settings, log_freq=log_freq, policy_delay=10_000)
    _poison_after(agent, 350)  # the update at step 451
    with pytest.raises(DivergenceError) as info:
        agent.learn(run_dir=run_dir, progress=False)
    msg = str(info.value)
    assert f"diverged at step {diverged_at}:" in msg
    assert "loss/critic became nan" in msg
    assert "step_0000000300" in msg  # the last good checkpoint is named
    assert agent.updates > 350
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000000300"]
    loaded = TD3.load(run_dir)
    assert loaded.env_steps == 300 and loaded.updates == 200
    assert check_finite(loaded) == [None]


def test_nan_in_actor_is_named(tmp_path: Path) -> None:
    agent = SAC("Pendulum-v1", **TINY, learning_starts=100, total_steps=400, eval_freq=400, log_freq=100)
    _poison_after(agent, 50, module="actor")
    with pytest.raises(DivergenceError) as info:
        agent.learn(progress=False)
    msg = str(info.value)
    # the NaN actor makes NaN actions at the very next step, before any log step
    assert "diverged at step 151: the policy's action became non-finite" in msg, msg
    assert "no checkpoint was written" in msg
    assert agent.updates == 51


def test_absurd_learning_rate_exits_3_and_keeps_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli(
        "train", "--algo", "td3", "--env", "Pendulum-v1", "--total-steps", "2000", "--learning-starts", "200",
        "--critic-lr", "1e30", "--log-freq", "50", "--checkpoint-freq", "200", "--eval-freq", "2000",
        "--run-dir", str(run_dir), *TINY_FLAGS,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    match = re.search(r"training diverged at step (\d+): (.+?); the last good checkpoint is (\S+)\.", lines[0])
    assert match, lines[0]
    step = int(match.group(1))
    assert 200 < step < 2000
    ckpt = Path(match.group(3))
    assert list_checkpoints(run_dir)[-1] == ckpt
    loaded = TD3.load(ckpt)
    assert check_finite(loaded) == [None]
    assert loaded.env_steps == 200
