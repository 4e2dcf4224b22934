"""Learning tests: each continuous-action algorithm solves Pendulum-v1 within a step budget its
multi-seed measurements support, each discrete-action one CartPole-v1 with its preset, as a user runs it, and PPO
CartPole-v1 and a Pendulum-v1 return with its presets.

TD3 and DDPG use the defaults as a user would run them (256×256 networks, batch 256, lr 3e-4);
only the budget, learning_starts (1,000) and the seed are set. SAC uses 64×64 networks with rl-zoo3's
Pendulum learning rates (its docstring says why and what was measured). 64×64 did not hold TD3's bar on
three seeds (at 20k steps, seeds 0-2 as stacked learners: −186, −190, −210 with lr 3e-4; −188, −201,
−205 with lr 1e-3; 128×128, lr 3e-4: −730, −217, −197, seed 0 collapsing after −189 at 15k; 2026-12-06),
so TD3 and DDPG keep 256×256. ``threads=1`` makes the run reproducible
(GEMM reduction order depends on the thread count) and lets two test workers share two cores.
The final row of progress.csv is the deterministic evaluation over 10 episodes at the budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softac import DDPG, DQN, PPO, SAC, TD3, DiscreteSAC
from softac.algos.base import Agent
from softac.algos.offpolicy import OffPolicyAgent
from softac.evaluate import EVAL_SEED_OFFSET, evaluate
from softac.logging import read_progress
from softac.presets import get_preset

# Pendulum-v1's bar: −200 over the 10 evaluation episodes. The untrained policy scores ≈ −1,400 on the same
# episodes (seed 0: SAC's 64×64 −1,464, TD3's and DDPG's 256×256 −1,408; 2026-12-06), so each test first
# measures its own untrained agent on them and requires the bar to be at least 500 above it.
PENDULUM_BAR = -200.0


def untrained_eval(agent: Agent) -> float:
    """The mean return of ``agent`` as constructed, on the evaluation episodes its run ends with
    (the same start states: each learner's seed + EVAL_SEED_OFFSET + episode). Evaluation draws
    from no training stream, so the training that follows is unchanged."""
    envs = agent.env_source.evaluation_envs(agent.learners)
    try:
        seeds = [s + EVAL_SEED_OFFSET for s in agent.seeds]
        return float(evaluate(agent, envs, agent.config.eval_episodes, seeds).mean())
    finally:
        for env in envs:
            agent.env_source.release(env)


def _final_eval(agent: OffPolicyAgent, run_dir: Path) -> float:
    assert untrained_eval(agent) <= PENDULUM_BAR - 500.0  # the bar is far from what no learning scores
    agent.learn(run_dir=run_dir, progress=False)
    rows = read_progress(run_dir / "progress.csv")
    assert agent.updates == agent.env_steps - 1000  # one update per step past learning_starts
    assert int(rows[-1]["step"]) == agent.config.total_steps
    return float(rows[-1]["eval_return_mean"])


@pytest.mark.slow
def test_sac_solves_pendulum_in_15k_steps(tmp_path: Path) -> None:
    """64×64 networks and lr 1e-3 (actor, critics, α: rl-zoo3's Pendulum-v1 setting, softac's SAC preset
    there), not the defaults: the test is about SAC learning, and a 256×256 update costs 4.3× a 64×64 one
    on one CPU thread (35.0 vs 8.1 ms per step with its update, medians of 5 alternating repetitions of
    300 steps in one process, load 8, 2026-12-06), 14,000 of them per run.

    Evidence (2026-12-06), seeds 0-2 as stacked learners evaluated every 1,000 steps: with lr 1e-3 all
    three were ≥ −200 from 12k steps on (at 15k: −189, −186, −197); with the default lr 3e-4 at 64×64
    they hovered at the bar (at 15k: −195, −201, −203), so that was not taken. Seed 0 alone, as here:
    −189 at 15k; the test alone took 91 s (load 7-8), the 256×256 one it replaced 292 s (load 7)."""
    agent = SAC("Pendulum-v1", total_steps=15_000, learning_starts=1_000, seed=0, threads=1,
                hidden_sizes=(64, 64), actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)  # fmt: skip
    assert _final_eval(agent, tmp_path / "sac") >= PENDULUM_BAR


@pytest.mark.slow
def test_td3_solves_pendulum_in_20k_steps(tmp_path: Path) -> None:
    agent = TD3("Pendulum-v1", total_steps=20_000, learning_starts=1_000, seed=0, threads=1)
    assert _final_eval(agent, tmp_path / "td3") >= PENDULUM_BAR


@pytest.mark.slow
def test_ddpg_solves_pendulum_in_15k_steps(tmp_path: Path) -> None:
    """Why 15,000 steps, evaluated every 1,000 steps (`softac train --algo ddpg --env Pendulum-v1 --seeds 0-4
    --total-steps 20000 --learning-starts 1000 --eval-freq 1000 --threads 1 --preset none`; seeds 5-9 the
    same to 15000; evaluation draws from no training stream, so the runs are the test's):
    - seeds 0-4 as stacked learners (2026-12-06) were all ≥ −200 at every evaluation from 12k to 20k;
    - seeds 5-9 as stacked learners (2026-12-07) were all ≥ −200 at every evaluation from 7k to 15k, at 15k
      −152, −152, −170, −155, −142;
    - seed 0 run alone, as here (2026-12-07): −200.4 at 12k (the float rounding of a single run differs
      from a stacked learner's), then −176 to −178 at every evaluation from 13k to 20k, −176.7 at 15k.
    12k was tried and dropped for that −200.4; 15k leaves seed 0 a 23-point margin and every one of the ten
    seeds above the bar from 13k on."""
    agent = DDPG("Pendulum-v1", total_steps=15_000, learning_starts=1_000, seed=0, threads=1)
    assert _final_eval(agent, tmp_path / "ddpg") >= PENDULUM_BAR


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


class _StopAtFirstEvaluation:
    """Stops the run after its first evaluation (``learn``'s callbacks): the test then holds the first
    ``eval_freq`` steps of the preset's run, whose schedules (DQN's ε) still span the preset's whole budget."""

    def on_evaluation(self, info: object) -> bool:
        return False


def _cartpole_first_eval(agent: OffPolicyAgent, run_dir: Path) -> float:
    """Train the preset's run up to its first evaluation (10 deterministic episodes, the greedy policy,
    at ``eval_freq``) and stop there."""
    cfg = agent.config
    agent.learn(run_dir=run_dir, progress=False, callback=_StopAtFirstEvaluation())
    rows = read_progress(run_dir / "progress.csv")
    assert agent.env_steps == cfg.eval_freq < cfg.total_steps
    assert agent.updates == int((cfg.eval_freq - cfg.learning_starts) * cfg.utd_ratio) > 0
    assert [int(r["step"]) for r in rows] == [cfg.eval_freq]
    return float(rows[-1]["eval_return_mean"])


@pytest.mark.slow
def test_dqn_solves_cartpole_with_its_preset_in_400k_steps(tmp_path: Path) -> None:
    """`softac train --algo dqn --env CartPole-v1` with nothing else: the preset (CleanRL's dqn.py:
    500,000 steps, an update every 10 steps = 49,000 updates, target copy every 500 steps, ε from 1
    to 0.05 over 250,000 steps, MSE loss, 120×84). Budget 500k env steps; 94 s alone on the 2-core
    machine, 111–217 s inside the whole `pytest -n 2` suite, the machine shared (2026-11-26).

    Seeds: seed 0 alone, as here, scored 500.0 (2026-11-26). The same preset with --seeds 0-9 (ten
    learners batched in one process, whose float rounding differs from single runs) ended ≥ 450 on
    10 of 10 seeds (eight at 500, then 481 and 470); of their evaluations from 350k steps on, 39 of
    40 were ≥ 450 (one 444).

    So the test trains the preset's 500k-step run to 400,000 steps (39,000 updates; ε reached 0.05 at
    250k, as in the whole run) and stops there after its evaluation. Seed 0 alone, evaluated every 50,000
    steps (2026-12-06): 241, 334, 363, 263, 298, 354, 467 (350k), 496 (400k), 500, 500."""
    agent = DQN("CartPole-v1", preset="auto", seed=0, threads=1, eval_freq=400_000)
    assert agent.config.total_steps == 500_000 and agent.config.lr == 2.5e-4  # the preset's
    assert _cartpole_first_eval(agent, tmp_path / "dqn") >= 450.0


@pytest.mark.slow
def test_discrete_sac_solves_cartpole_with_its_preset_in_40k_steps(tmp_path: Path) -> None:
    """`softac train --algo sac-discrete --env CartPole-v1` with nothing else: the preset (50,000
    steps, one update per step after 1,000 = 49,000 updates, 64×64, batch 64, target entropy
    0.7·log 2). Budget 50k env steps; 58 s alone, 60–100 s inside the whole `pytest -n 2` suite
    (2026-11-26).

    Seeds: seed 0 alone, as here, scored 500.0 (2026-11-26). The same preset with --seeds 0-9 (ten
    learners batched in one process) ended at 500 on 10 of 10 seeds, and 30 of 30 of their
    evaluations from 40k steps on were ≥ 450; α stayed within [0.69, 2.23].

    So the test trains the preset's run to 40,000 steps (39,000 updates) and stops there after its
    evaluation: nothing in the preset depends on the budget, so these are the first 40k steps of the
    50k run. Seed 0 alone, evaluated every 5,000 steps (2026-12-06): 270, 268, 252, 278, 352, 400,
    then 500 at 35k, 40k, 45k and 50k."""
    agent = DiscreteSAC("CartPole-v1", preset="auto", seed=0, threads=1, eval_freq=40_000)
    assert agent.config.total_steps == 50_000 and agent.config.target_entropy_scale == 0.7  # the preset's
    assert _cartpole_first_eval(agent, tmp_path / "sac-discrete") >= 450.0
