"""Exact resume from images: a pixel SAC run (frames stacked 3, random shift) killed with SIGKILL
after a checkpoint, then resumed, ends bit-identical to the run that never stopped — networks,
encoder, optimizer moments, the replay rows and the frame ring."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from helpers import TINY_FLAGS, assert_bit_identical, popen_cli, run_cli, state_tensors

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

    proc = popen_cli(*ARGS, "--run-dir", str(killed))
    try:
        deadline = time.monotonic() + 240
        while not list_checkpoints(killed) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # past the checkpoint, inside the next episode
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
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
