"""Learning tests: each algorithm solves Pendulum-v1 within the issue's step budget.

Defaults are used as a user would run them (256×256 networks, batch 256, lr 3e-4); only the
budget, learning_starts (1,000) and the seed are set. ``threads=1`` makes the run reproducible
(GEMM reduction order depends on the thread count) and lets two test workers share two cores.
The final row of progress.csv is the deterministic evaluation over 10 episodes at the budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softac import DDPG, SAC, TD3
from softac.algos.offpolicy import OffPolicyAgent
from softac.logging import read_progress


def _final_eval(agent: OffPolicyAgent, run_dir: Path) -> float:
    agent.learn(run_dir=run_dir, progress=False)
    rows = read_progress(run_dir / "progress.csv")
    assert agent.updates == agent.env_steps - 1000  # one update per step past learning_starts
    assert int(rows[-1]["step"]) == agent.config.total_steps
    return float(rows[-1]["eval_return_mean"])


@pytest.mark.slow
def test_sac_solves_pendulum_in_15k_steps(tmp_path: Path) -> None:
    agent = SAC("Pendulum-v1", total_steps=15_000, learning_starts=1_000, seed=0, threads=1)
    assert _final_eval(agent, tmp_path / "sac") >= -200.0


@pytest.mark.slow
def test_td3_solves_pendulum_in_20k_steps(tmp_path: Path) -> None:
    agent = TD3("Pendulum-v1", total_steps=20_000, learning_starts=1_000, seed=0, threads=1)
    assert _final_eval(agent, tmp_path / "td3") >= -200.0


@pytest.mark.slow
def test_ddpg_solves_pendulum_in_20k_steps(tmp_path: Path) -> None:
    agent = DDPG("Pendulum-v1", total_steps=20_000, learning_starts=1_000, seed=0, threads=1)
    assert _final_eval(agent, tmp_path / "ddpg") >= -200.0
