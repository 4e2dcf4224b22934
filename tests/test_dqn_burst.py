"""DQN's burst_every (SB3's train_freq kept as a burst): the updates owed and the target copies
follow SB3's schedule, and a burst that is not a whole number of updates is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from softac import DQN
from softac.errors import SoftacError


def test_bursts_and_target_copies_follow_sb3(tmp_path: Path) -> None:
    # SB3: after each rollout of train_freq = 8 steps, once num_timesteps > learning_starts = 10,
    # gradient_steps = 4 updates; the target is copied on env steps that are multiples of 12.
    agent = DQN("CartPole-v1", total_steps=64, learning_starts=10, burst_every=8, utd_ratio=0.5, batch_size=4,
                buffer_size=100, target_update_interval=12, eval_freq=64, seed=0, threads=1)  # fmt: skip
    owed = {}
    for t in (15, 16, 23, 24, 64):
        agent.env_steps = t
        owed[t] = agent.updates_due()
    assert owed == {15: 0, 16: 4, 23: 4, 24: 8, 64: 28}
    # Bursts at 16 (updates 0-3), 24, 32, ..., 64 (24-27); a copy follows a burst's last update when
    # a multiple of 12 lies in the rollout (e, e + 8] after it: 24, 36, 48, 60 and 72 follow the
    # bursts at 16, 32, 40, 56 and 64; none lies in (24, 32] or (48, 56].
    assert [i for i in range(28) if agent.update_phase(i)] == [3, 11, 15, 23, 27]
    agent.env_steps = 0
    agent.learn(run_dir=tmp_path / "run", progress=False)
    assert agent.updates == 28


def test_a_burst_must_be_whole_updates() -> None:
    with pytest.raises(SoftacError, match="whole number"):
        DQN("CartPole-v1", burst_every=3, utd_ratio=0.5)
