"""Exact resume from images: a pixel SAC run (frames stacked 3, random shift) killed with SIGKILL
after a checkpoint, then resumed, ends bit-identical to the run that never stopped — networks,
encoder, optimizer moments, the replay rows and the frame ring."""

from __future__ import annotations

from pathlib import Path

import torch
from helpers import TINY_FLAGS, assert_bit_identical, run_cli, sigkill_after_first_checkpoint, state_tensors

from softac import SAC
from softac.io.rundir import list_checkpoints

# PixelReach episodes are 50 steps: the checkpoint at step 150 is an episode boundary, and the run
# goes on 150 steps past it, so a kill soon after the checkpoint lands mid-episode.
ARGS = [
    "train", "--algo", "sac", "--env", "softac/PixelReach-v0", "--frame-stack", "3", "--augment", "shift",
    "--image-features", "8", "--learning-starts", "100", "--total-steps", "300", "--checkpoint-freq", "150",
    "--eval-freq", "150", "--seed", "3", *TINY_FLAGS, "--batch-size", "16",
]  # fmt: skip


def test_sigkill_then_resume_is_bit_identical(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = run_cli(*ARGS, "--run-dir", str(straight), timeout=300)
    assert done.returncode == 0, done.stderr

    sigkill_after_first_checkpoint(ARGS, killed)
    assert [c.name for c in list_checkpoints(killed)] == ["step_0000000150"]

    resumed = run_cli("train", "--resume", str(killed), "--total-steps", "300", "--no-progress", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = SAC.load(straight), SAC.load(killed)
    assert (a.env_steps, a.updates) == (b.env_steps, b.updates) == (300, 200)
    assert_bit_identical(state_tensors(a), state_tensors(b))
    assert torch.equal(a.buffer.storage[0, :300], b.buffer.storage[0, :300])
    # 6 episodes of 50 steps: 300 transitions wrote 306 frames, each once.
    assert int(a.buffer.frames.written[0]) == int(b.buffer.frames.written[0]) == 306
    assert torch.equal(a.buffer.frames.frames[0, :306], b.buffer.frames.frames[0, :306])
    assert torch.equal(a.buffer.frames.index[0, :300], b.buffer.frames.index[0, :300])
