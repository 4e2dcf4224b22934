"""Exact resume with hindsight relabelling: a SAC + HER run killed with SIGKILL while its episodes are
in flight, then resumed from its checkpoint, ends bit-identical to the run that never stopped —
networks, optimizer moments, α, the replay rows and the episode bookkeeping relabelling reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_FLAGS, assert_bit_identical, run_cli, sigkill_after_first_checkpoint, state_tensors

from softac import SAC
from softac.io.rundir import list_checkpoints

pytest.importorskip("gymnasium_robotics")

# PointMaze episodes cut to 50 steps: the checkpoint at step 300 is an episode boundary, and the run
# goes on 300 steps past it, so a kill soon after the checkpoint lands mid-episode.
ARGS = [
    "train", "--algo", "sac", "--env", "PointMaze_UMaze-v3", "--env-kwargs", "max_episode_steps=50", "--her",
    "--her-strategy", "future", "--learning-starts", "100", "--total-steps", "600", "--checkpoint-freq", "300",
    "--eval-freq", "300", "--seed", "7", *TINY_FLAGS,
]  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_episode_then_resume_is_bit_identical(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = run_cli(*ARGS, "--run-dir", str(straight), timeout=300)
    assert done.returncode == 0, done.stderr

    sigkill_after_first_checkpoint(ARGS, killed)
    assert [c.name for c in list_checkpoints(killed)] == ["step_0000000300"]
    at_kill = SAC.load(killed)
    assert at_kill.env_steps == 300 and int(at_kill.buffer.written[0]) == 300 and at_kill.buffer.open[0] == -1

    resumed = run_cli("train", "--resume", str(killed), "--total-steps", "600", "--no-progress", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = SAC.load(straight), SAC.load(killed)
    assert (a.env_steps, a.updates) == (b.env_steps, b.updates) == (600, 500)
    assert_bit_identical(state_tensors(a), state_tensors(b))
    assert torch.equal(a.buffer.storage[0, :600], b.buffer.storage[0, :600])
    for name in ("ep_start", "ep_end", "written", "open"):
        assert np.array_equal(getattr(a.buffer, name), getattr(b.buffer, name)), name
    assert (a.buffer.ep_end[0, :600] == np.repeat(np.arange(50, 601, 50), 50)).all()
