"""PPO through the training loop: exact resume at a rollout boundary, N stacked learners equal N
single runs, the compiled update equals the eager one, and the CLI end to end."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import DEVICE, assert_bit_identical, assert_learners_equal_singles, on_cpu, run_cli, state_tensors
from test_ppo import PPO_TINY, collect

from softac import PPO
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress

# Pendulum's episodes last 200 steps: rollouts of 200 steps × 2 envs end on an episode boundary
# every 400 env steps, where the checkpoints fall. Every piece of state a resume must carry is on:
# observation and reward statistics, annealed lr and clip range (schedules of the step counter).
RESUME: dict[str, Any] = {
    **PPO_TINY, "n_steps": 200, "minibatch_size": 100, "normalize_obs": True, "normalize_reward": True,
    "anneal_lr": True, "anneal_clip_range": True, "clip_vloss": True, "ent_coef": 0.01,
    "eval_freq": 400, "log_freq": 400, "checkpoint_freq": 400, "keep_checkpoints": 5, "seed": 3,
}  # fmt: skip


@pytest.mark.skipif(not on_cpu(), reason="bit-identical resume is a CPU guarantee (same kernels, same threads)")
def test_resume_at_a_rollout_boundary_is_bit_identical(tmp_path: Path) -> None:
    straight_dir = tmp_path / "straight"
    straight = PPO("Pendulum-v1", **RESUME, total_steps=1200)
    straight.learn(run_dir=straight_dir, progress=False)
    assert straight.updates == 3 * 2 * 4  # 3 rollouts × 2 epochs × 4 minibatches
    # the run as if it had been stopped right after its step-400 checkpoint
    run_dir = tmp_path / "resumed"
    shutil.copytree(straight_dir, run_dir)
    for ckpt in list_checkpoints(run_dir)[1:]:
        shutil.rmtree(ckpt)
    resumed = PPO.load(run_dir)
    assert (resumed.env_steps, resumed.updates) == (400, 8)
    assert resumed.resume_state is not None and resumed.resume_state[0]["collector"]["at_episode_boundary"]
    assert resumed.obs_norm is not None and float(resumed.obs_norm.count[0]) == pytest.approx(400, abs=1e-3)
    resumed.learn(run_dir=run_dir, progress=False)
    assert (resumed.env_steps, resumed.updates, resumed.episodes) == (1200, 24, straight.episodes)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
    assert {"extra/obs_norm/mean", "extra/reward_norm/var"} <= set(state_tensors(resumed))
    rows, ref = read_progress(run_dir / "progress.csv"), read_progress(straight_dir / "progress.csv")
    assert [r["step"] for r in rows] == [r["step"] for r in ref] == ["400", "800", "1200"]
    for key in ("updates", "episodes", "eval_return_mean", "loss_value", "approx_kl", "explained_variance"):
        assert [r[key] for r in rows] == [r[key] for r in ref], key


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_two_stacked_learners_equal_two_single_learners(env_id: str) -> None:
    """Seeds (3, 7) in one agent against PPO(seed=3) and PPO(seed=7): the same initial networks,
    rollouts (environments, actions from each learner's stream), shuffles, clipped updates and
    observation/reward statistics, through two rollouts and their updates."""
    cfg = {**PPO_TINY, "normalize_obs": True, "normalize_reward": True, "max_grad_norm": 0.1, "total_steps": 64}
    stacked = PPO(env_id, **cfg, seeds=[3, 7])
    singles = [PPO(env_id, **{**cfg, "seed": s}) for s in (3, 7)]

    assert_learners_equal_singles(stacked, singles, 0, 0)
    stacked.learn(progress=False)
    for single in singles:
        single.learn(progress=False)
    assert stacked.updates == singles[0].updates == 2 * 2 * 4
    assert_learners_equal_singles(stacked, singles, 1e-4, 1e-5)
    assert stacked.episodes == [s.episodes[0] for s in singles]


def test_compiled_update_equals_eager_update() -> None:
    """The minibatch step under torch.compile (one graph: forward, torch.func.grad, the clip, Adam)
    against the eager one, on the same rollout: every tensor after an update of 2 × 4 steps."""
    cfg = {**PPO_TINY, "normalize_obs": True, "anneal_lr": True, "anneal_clip_range": True, "clip_vloss": True,
           "total_steps": 64, "seed": 5}  # fmt: skip
    eager = PPO("Pendulum-v1", **cfg, cuda_graph=False)
    compiled = PPO("Pendulum-v1", **cfg, compile_update=True, cuda_graph=False)
    for agent in (eager, compiled):
        collect(agent)
    assert_bit_identical(state_tensors(eager), state_tensors(compiled))  # the same rollout
    metrics = [eager.update(), compiled.update()]
    assert not compiled._runner().failed  # type: ignore[attr-defined]
    a, b = state_tensors(eager), state_tensors(compiled)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)
    for key in metrics[0]:
        torch.testing.assert_close(metrics[0][key], metrics[1][key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.skipif(on_cpu(), reason="CUDA graphs need a CUDA device (pytest --device cuda)")
def test_cuda_graph_update_equals_eager_update() -> None:
    """The minibatch step captured once in a CUDA graph and replayed (the minibatch position, lr and
    ε read from device tensors changed between replays) against the eager step, on one rollout."""
    cfg = {**PPO_TINY, "normalize_obs": True, "anneal_lr": True, "anneal_clip_range": True, "total_steps": 64,
           "seed": 6}  # fmt: skip
    eager, graphed = PPO("Pendulum-v1", **cfg, cuda_graph=False), PPO("Pendulum-v1", **cfg, cuda_graph=True)
    for _ in range(2):  # two rollouts: the second replays the graphs captured in the first
        for agent in (eager, graphed):
            collect(agent)
        metrics = [eager.update(), graphed.update()]
        a, b = state_tensors(eager), state_tensors(graphed)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6, msg=key)
        for key in metrics[0]:
            torch.testing.assert_close(metrics[0][key], metrics[1][key], rtol=1e-4, atol=1e-6, msg=key)
    assert type(graphed._runner()).__name__ == "CudaGraphed"


def test_cli_trains_evaluates_and_resumes_ppo(tmp_path: Path) -> None:
    run_dir = tmp_path / "ppo"
    flags = ["--algo", "ppo", "--env", "CartPole-v1", "--n-steps", "32", "--n-envs", "2", "--minibatch-size", "16",
             "--n-epochs", "2", "--hidden-sizes", "16", "16", "--eval-episodes", "1", "--eval-freq", "128",
             "--checkpoint-freq", "128", "--threads", "1", "--device", DEVICE, "--no-progress"]  # fmt: skip
    proc = run_cli("train", *flags, "--total-steps", "128", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert "step 128: eval return" in proc.stdout
    proc = run_cli("eval", str(run_dir), "--episodes", "2")
    assert proc.returncode == 0 and "ppo on CartPole-v1 at step 128" in proc.stdout, proc.stderr
    proc = run_cli("train", "--resume", str(run_dir), "--total-steps", "256", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    agent = PPO.load(run_dir)
    assert (agent.env_steps, agent.updates) == (256, 4 * 2 * 4)
