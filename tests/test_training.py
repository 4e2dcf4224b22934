"""Short training runs through the Python API: they go past learning_starts, update every network,
and the algorithm-specific machinery (policy delay, DDPG = TD3 settings, save/load) is exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY, assert_bit_identical, fill_buffer, module_params, on_cpu, state_tensors

from softac import DDPG, SAC, TD3, SoftacError
from softac.logging import read_progress


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return all(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize("cls", [SAC, TD3, DDPG])
def test_short_run_updates_every_network(cls: type, tmp_path: Path) -> None:
    agent = cls("Pendulum-v1", **TINY, learning_starts=200, total_steps=600, eval_freq=300, log_freq=300)
    snapshots = {name: module_params(m) for name, m in agent.modules().items()}
    agent.learn(run_dir=tmp_path / cls.algo, progress=False)
    assert agent.env_steps == 600
    assert agent.updates == 400  # utd 1: one gradient step per env step after learning_starts
    for name, module in agent.modules().items():
        assert _changed(snapshots[name], module), f"{name} did not change"
    rows = read_progress(tmp_path / cls.algo / "progress.csv")
    assert [int(r["step"]) for r in rows] == [300, 600]
    assert [int(r["updates"]) for r in rows] == [100, 400]
    assert all(np.isfinite(float(r["eval_return_mean"])) for r in rows)
    assert rows[-1]["loss_critic"] != ""  # training scalars were logged into the last row
    if cls is SAC:
        assert agent.alpha != pytest.approx(1.0)  # autotuned α moved from alpha_init


def test_utd_ratio_sets_the_number_of_updates() -> None:
    agent = TD3("Pendulum-v1", **TINY, learning_starts=100, total_steps=300, eval_freq=300, utd_ratio=0.5)
    agent.learn(progress=False)
    assert agent.updates == 100
    agent = TD3("Pendulum-v1", **TINY, learning_starts=250, total_steps=300, eval_freq=300, utd_ratio=2)
    agent.learn(progress=False)
    assert agent.updates == 100


def test_td3_policy_delay_counted_exactly() -> None:
    agent = TD3("Pendulum-v1", **TINY, policy_delay=3)
    fill_buffer(agent, 512)
    actor_changes = critic_changes = actor_target_changes = critic_target_changes = 0
    for k in range(1, 11):
        before = {name: module_params(m) for name, m in agent.modules().items()}
        agent.update()
        after = agent.modules()
        actor_moved = _changed(before["actor"], after["actor"])
        assert actor_moved == (k % 3 == 0), f"update {k}"
        actor_changes += actor_moved
        critic_changes += _changed(before["critic"], after["critic"])
        actor_target_changes += _changed(before["actor_target"], after["actor_target"])
        critic_target_changes += _changed(before["critic_target"], after["critic_target"])
    assert agent.updates == 10
    assert actor_changes == 10 // 3
    assert critic_changes == 10
    assert actor_target_changes == critic_target_changes == 10 // 3  # targets follow the policy delay
    actor_steps = [int(s["step"]) for s in agent.actor_opt.state_dict()["state"].values()]
    critic_steps = [int(s["step"]) for s in agent.critic_opt.state_dict()["state"].values()]
    assert set(actor_steps) == {3} and set(critic_steps) == {10}


def test_ddpg_equals_td3_with_ddpg_settings() -> None:
    td3 = TD3("Pendulum-v1", **TINY, n_critics=1, policy_delay=1, target_noise=0.0, target_noise_clip=0.0)
    ddpg = DDPG("Pendulum-v1", **TINY, seed=123)  # other seed: different initial weights
    assert not torch.equal(next(td3.actor.parameters()), next(ddpg.actor.parameters()))
    for name, module in td3.modules().items():
        ddpg.modules()[name].load_state_dict(module.state_dict())
    ddpg.rng.set_state(0, td3.rng.state(0))  # the same replay samples
    fill_buffer(td3, 512)
    fill_buffer(ddpg, 512)
    for _ in range(3):
        m_td3 = td3.update()
        m_ddpg = ddpg.update()
        for key in m_td3:
            assert torch.equal(m_td3[key], m_ddpg[key]), key
    assert_bit_identical(state_tensors(td3), state_tensors(ddpg))
    # and the update did do something
    assert not torch.equal(next(td3.actor.parameters()), next(td3.actor_target.parameters()))


def _after_sampling_only(agent: Any) -> torch.Tensor:
    """The learner's stream state had the update drawn its replay sample and nothing else."""
    gen = torch.Generator().manual_seed(agent.seeds[0])
    gen.set_state(agent.rng.state(0)["host"])
    torch.empty(agent.config.batch_size, dtype=torch.float64).uniform_(generator=gen)
    return gen.get_state()


@pytest.mark.skipif(not on_cpu(), reason="reads the learner's CPU stream, which the update uses only on the CPU")
def test_ddpg_does_not_draw_target_noise() -> None:
    ddpg = DDPG("Pendulum-v1", **TINY)
    fill_buffer(ddpg, 512)
    expected = _after_sampling_only(ddpg)
    global_state = torch.get_rng_state()
    ddpg.update()
    assert torch.equal(ddpg.rng.state(0)["host"], expected)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global generator is never touched


@pytest.mark.skipif(not on_cpu(), reason="reads the learner's CPU stream, which the update uses only on the CPU")
def test_td3_target_noise_is_drawn() -> None:
    td3 = TD3("Pendulum-v1", **TINY)
    fill_buffer(td3, 512)
    expected = _after_sampling_only(td3)
    td3.update()
    assert not torch.equal(td3.rng.state(0)["host"], expected)


@pytest.mark.parametrize("cls", [SAC, TD3])
def test_save_load_round_trip(cls: type, tmp_path: Path) -> None:
    agent = cls("Pendulum-v1", **TINY, learning_starts=100, total_steps=300, eval_freq=300)
    agent.learn(progress=False)
    assert agent.updates == 200
    agent.save(tmp_path / "model")
    loaded = cls.load(tmp_path / "model")
    assert type(loaded) is cls
    counters = (agent.env_steps, agent.updates, agent.episodes)
    assert (loaded.env_steps, loaded.updates, loaded.episodes) == counters
    assert_bit_identical(state_tensors(agent), state_tensors(loaded))
    assert loaded.buffer.size[0] == agent.buffer.size[0]
    n = int(agent.buffer.size[0])
    assert torch.equal(loaded.buffer.storage[0, :n], agent.buffer.storage[0, :n])
    obs = np.random.default_rng(0).uniform(-1, 1, size=(20, 3)).astype(np.float32)
    a1, _ = agent.predict(obs)
    a2, _ = loaded.predict(obs)
    np.testing.assert_array_equal(a1, a2)
    # single observation: one action of the env's shape, inside the env's bounds
    single, _ = loaded.predict(obs[0])
    assert single.shape == (1,)
    np.testing.assert_allclose(single, a1[0], rtol=1e-5, atol=1e-6)  # batched matmul may differ by an ulp
    # a checkpoint without the buffer loads too (an empty buffer)
    agent.save(tmp_path / "small", include_buffer=False)
    small = cls.load(tmp_path / "small")
    assert small.buffer.size[0] == 0
    np.testing.assert_array_equal(small.predict(obs)[0], a1)


def test_predict_returns_env_scaled_actions_within_bounds() -> None:
    agent = SAC("Pendulum-v1", **TINY)
    with torch.no_grad():
        agent.actor.trunk.biases[-1][0, 0, 0] = 50.0  # tanh(μ) → 1: the action saturates at the high bound
    obs = np.zeros((4, 3), dtype=np.float32)
    action, _ = agent.predict(obs)
    assert action.dtype == np.float32 and action.shape == (4, 1)
    np.testing.assert_allclose(action, 2.0)
    assert (action <= 2.0).all()
    with torch.no_grad():
        agent.actor.trunk.biases[-1][0, 0, 0] = 0.0
        agent.actor.trunk.weights[-1].zero_()
    action, _ = agent.predict(obs)
    np.testing.assert_allclose(action, 0.0, atol=1e-6)  # tanh(0) = 0 maps to the middle of [-2, 2]
    # stochastic actions also stay within bounds
    sampled, _ = agent.predict(np.random.default_rng(0).normal(size=(500, 3)) * 10, deterministic=False)
    assert (np.abs(sampled) <= 2.0).all() and sampled.std() > 0.1
    with pytest.raises(SoftacError, match="expects"):
        agent.predict(np.zeros(5))


def test_learn_continues_and_refuses_no_more_steps() -> None:
    agent = TD3("Pendulum-v1", **TINY, learning_starts=100, total_steps=200, eval_freq=200)
    agent.learn(progress=False)
    assert agent.updates == 100
    agent.learn(total_steps=400, progress=False)
    assert agent.env_steps == 400 and agent.updates == 300
    with pytest.raises(SoftacError, match="already at step 400"):
        agent.learn(total_steps=300, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_checkpoint_loads_on_cpu_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    agent = SAC("Pendulum-v1", **{**TINY, "device": "cuda"}, learning_starts=100, total_steps=300, eval_freq=300)
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates == 200 and agent.device.type == "cuda"
    on_cpu = SAC.load(run_dir, device="cpu")
    assert on_cpu.device.type == "cpu"
    cuda_state, cpu_state = state_tensors(agent), state_tensors(on_cpu)
    assert cuda_state.keys() == cpu_state.keys()
    for key, value in cuda_state.items():
        assert torch.equal(value.cpu(), cpu_state[key].cpu()), key
    obs = np.zeros((3, 3), dtype=np.float32)
    np.testing.assert_allclose(agent.predict(obs)[0], on_cpu.predict(obs)[0], rtol=1e-5, atol=1e-5)
    resumed = SAC.load(run_dir)  # on the device of its config (cuda)
    resumed.learn(total_steps=400, run_dir=run_dir, progress=False)
    assert resumed.updates == 300


def test_evaluate_is_deterministic_and_leaves_training_rng_alone() -> None:
    from softac.envs import make_env
    from softac.evaluate import evaluate

    agent = SAC("Pendulum-v1", **TINY)
    env = make_env("Pendulum-v1")
    torch_state, stream = torch.get_rng_state(), agent.rng.state(0)
    first = evaluate(agent, [env], 2, seeds=[123])[0]
    second = evaluate(agent, [env], 2, seeds=[123])[0]
    assert torch.equal(torch.get_rng_state(), torch_state)  # no draw from any training stream
    assert all(torch.equal(stream[k], agent.rng.state(0)[k]) for k in stream)
    assert first.shape == (2,)
    np.testing.assert_array_equal(first, second)
    assert first[0] != first[1]  # episode k starts from reset(seed + k): different start states
    assert (first < 0).all()
    other = evaluate(agent, [env], 1, seeds=[124])[0]
    assert other[0] == first[1]
