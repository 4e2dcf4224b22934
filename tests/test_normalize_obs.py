"""``normalize_obs`` for every algorithm: the statistics take in each observation the training
policy acts on (and nothing in evaluation), the networks see normalised observations, the replay
buffer keeps raw ones and an off-policy update normalises its sample with the current statistics,
and the statistics travel with checkpoints (an exact resume included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, assert_bit_identical, on_cpu, state_tensors
from test_ppo import PPO_TINY

from softac import PPO, SAC, TD3, registry
from softac.io.state import live_tensors

ALGO_SETTINGS = {"sac": TINY, "td3": TINY, "ddpg": TINY, "ppo": PPO_TINY}


@pytest.mark.parametrize("algo", registry.names())
def test_every_algorithm_checkpoints_its_observation_statistics(algo: str) -> None:
    """Catches an algorithm whose ``extra_tensors`` forgets ``super().extra_tensors()``."""
    info = registry.get(algo)
    env_id = "Pendulum-v1" if "Box" in info.action_spaces else "CartPole-v1"
    agent = info.agent_cls(env_id, **ALGO_SETTINGS.get(algo, {}), normalize_obs=True, seeds=[0, 1])
    names = set(live_tensors(agent))
    assert {"extra/obs_norm/mean", "extra/obs_norm/var", "extra/obs_norm/count"} <= names
    assert live_tensors(agent)["extra/obs_norm/mean"].shape == (2, agent.spec.obs_dim)  # learner-major
    plain = info.agent_cls(env_id, **ALGO_SETTINGS.get(algo, {}))
    assert not any(n.startswith("extra/obs_norm") for n in live_tensors(plain))


def test_off_policy_statistics_buffer_and_update() -> None:
    agent = SAC("Pendulum-v1", **TINY, learning_starts=200, total_steps=400, normalize_obs=True, seed=1)
    agent.learn(progress=False)  # evaluation at the end too (10 × 200 steps would double the count)
    assert agent.updates == 200
    norm = agent.obs_norm
    assert norm is not None
    # one observation per acted-on step, warm-up included: exactly the buffer's s column
    assert float(norm.count[0]) == pytest.approx(400 + 1e-4)
    raw = agent.buffer.storage[0, :400, : agent.spec.obs_dim].double()
    torch.testing.assert_close(norm.mean[0], raw.mean(0))
    torch.testing.assert_close(norm.var[0], raw.var(0, correction=0), rtol=1e-6, atol=1e-9)
    assert raw[:, 2].abs().max() > 1.5  # Pendulum's angular velocity: stored raw, not normalised
    # a sample is the stored rows with s and s' normalised by the current statistics
    state = agent.rng.dev[0].get_state()
    agent.buffer.normaliser = None
    plain = agent.buffer.sample(32, agent.rng)
    agent.buffer.normaliser = norm
    agent.rng.dev[0].set_state(state)
    batch = agent.buffer.sample(32, agent.rng)
    torch.testing.assert_close(batch.obs, norm.normalise(plain.obs))
    torch.testing.assert_close(batch.next_obs, norm.normalise(plain.next_obs))
    torch.testing.assert_close(batch.action, plain.action, rtol=0, atol=0)
    torch.testing.assert_close(batch.reward, plain.reward, rtol=0, atol=0)
    # acting deterministically (evaluation, predict) never updates the statistics
    before = {k: v.clone() for k, v in norm.live_tensors().items()}
    agent.act(np.ones((1, 5, 3), dtype=np.float32) * 7.0)
    agent.predict(np.zeros(3, dtype=np.float32))
    assert all(torch.equal(before[k], v) for k, v in norm.live_tensors().items())
    # and the policy acts on the normalised observation
    obs = np.array([[[0.3, -0.8, 4.0]]], dtype=np.float32)
    with torch.no_grad():
        mean, _ = agent.actor(norm.normalise(torch.from_numpy(obs).to(agent.device)))
    np.testing.assert_allclose(agent.act(obs), torch.tanh(mean).cpu().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not on_cpu(), reason="bit-identical resume is a CPU guarantee")
def test_off_policy_resume_with_normalised_observations_is_bit_identical(tmp_path: Path) -> None:
    settings = {**TINY, "learning_starts": 200, "eval_freq": 400, "normalize_obs": True, "seed": 2}
    straight = TD3("Pendulum-v1", **settings, total_steps=600)
    straight.learn(progress=False)
    run_dir = tmp_path / "run"
    TD3("Pendulum-v1", **settings, total_steps=400).learn(run_dir=run_dir, progress=False)
    resumed = TD3.load(run_dir)
    assert resumed.obs_norm is not None and float(resumed.obs_norm.count[0]) == pytest.approx(400, abs=1e-3)
    resumed.learn(total_steps=600, run_dir=run_dir, progress=False)
    assert resumed.updates == straight.updates == 400
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))


def test_on_policy_rollout_holds_normalised_observations() -> None:
    from test_ppo import collect

    agent = PPO("Pendulum-v1", **PPO_TINY, normalize_obs=True, seed=4)
    collect(agent)
    norm = agent.obs_norm
    assert norm is not None and float(norm.count[0]) == pytest.approx(32 + 1e-4)  # 16 steps × 2 envs
    r = agent.rollout
    # the last step's observations were normalised with the statistics that had just taken them in
    raw_last = r.obs[:, -1] * torch.sqrt(norm.var.unsqueeze(1) + 1e-8).float() + norm.mean.unsqueeze(1).float()
    torch.testing.assert_close(norm.normalise(raw_last), r.obs[:, -1], rtol=1e-4, atol=1e-5)
    assert r.obs.abs().max() <= 10.0  # clipped to ±10
