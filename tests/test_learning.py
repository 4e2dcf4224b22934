"""Learning tests: each algorithm solves Pendulum-v1 within the issue's step budget (PPO: CartPole-v1
and a Pendulum-v1 return, with its presets).

Defaults are used as a user would run them (256×256 networks, batch 256, lr 3e-4); only the
budget, learning_starts (1,000) and the seed are set. ``threads=1`` makes the run reproducible
(GEMM reduction order depends on the thread count) and lets two test workers share two cores.
The final row of progress.csv is the deterministic evaluation over 10 episodes at the budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softac import DDPG, PPO, SAC, TD3
from softac.algos.offpolicy import OffPolicyAgent
from softac.logging import read_progress
from softac.presets import get_preset


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


def _ppo_final_eval(env_id: str, run_dir: Path, **overrides: object) -> float:
    preset = get_preset("ppo", env_id)
    assert preset is not None
    agent = PPO(env_id, **{**preset.params, **overrides}, seed=0, threads=1, eval_freq=10**9)
    agent.learn(run_dir=run_dir, progress=False)
    rollout = agent.config.n_steps * agent.config.n_envs
    assert agent.env_steps == -(-agent.config.total_steps // rollout) * rollout  # whole rollouts
    per_rollout = agent.config.n_epochs * (rollout // agent.config.minibatch_size)
    assert agent.updates == agent.env_steps // rollout * per_rollout
    return float(read_progress(run_dir / "progress.csv")[-1]["eval_return_mean"])


@pytest.mark.slow
def test_ppo_solves_cartpole_with_its_preset(tmp_path: Path) -> None:
    """rl-zoo3's preset (8 envs × 32 steps, 20 epochs, lr 1e-3 and ε annealed), 100k steps = 391
    rollouts, 7,820 gradient steps, one thread: 31 s in a full `make test` run on the 2-core
    machine (50 s while other jobs loaded it). Seeds 0-4 all scored 500 at 100k (2026-11-26; also
    SB3 on the same settings, benchmarks/learning_compare.py)."""
    assert _ppo_final_eval("CartPole-v1", tmp_path / "ppo-cartpole") >= 450.0


@pytest.mark.slow
def test_ppo_learns_pendulum_with_its_preset(tmp_path: Path) -> None:
    """rl-zoo3's preset without its gSDE (4 envs × 1024 steps, γ 0.9, lr 1e-3), cut to 61,440 steps
    (15 rollouts, 9,600 gradient steps; no schedule depends on the budget, so this is the first
    part of the 100k run), one thread: 27 s in a full `make test` run (49 s loaded). At 61,440
    steps seeds 0-5 scored −231, −240, −233, −230, −223, −178 (at 102,400: −222, −235, −232,
    −223, −276, −178; 2026-11-26); plain Gaussian PPO does not reach SAC's −200 reliably, hence
    −300 (a random policy scores ≈ −1200)."""
    assert _ppo_final_eval("Pendulum-v1", tmp_path / "ppo-pendulum", total_steps=61_440) >= -300.0
