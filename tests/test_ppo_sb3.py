"""softac's PPO against Stable-Baselines3's on the same data (SB3 is the `bench` extra; skipped
without it): GAE with truncations and terminations against SB3's ``RolloutBuffer``, and whole
updates — several epochs of minibatches, clipping, entropy bonus, gradient-norm clipping, Adam —
against ``PPO.train`` from the same weights, rollout and minibatch order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from test_ppo import PPO_TINY, collect

from softac import PPO

sb3 = pytest.importorskip("stable_baselines3")
pytestmark = pytest.mark.skipif(PPO_TINY["device"] != "cpu", reason="compares with SB3 on the CPU")


@pytest.mark.parametrize("env_id", ["SoftacTest/Counter-v0", "SoftacTest/CounterTerminates-v0", "CartPole-v1"])
def test_gae_equals_sb3_rollout_buffer(env_id: str) -> None:
    """SB3 bootstraps a truncation by adding γ V(final observation) to the reward and cuts the
    recursion at ``episode_starts``; softac keeps V(final) as the step's next value and the end
    as e_t. Same advantages and returns."""
    from stable_baselines3.common.buffers import RolloutBuffer

    T, n, gamma, lam = 12, 2, 0.9, 0.8
    agent = PPO(env_id, **{**PPO_TINY, "n_steps": T, "n_envs": n, "minibatch_size": 8}, gamma=gamma, gae_lambda=lam)
    collect(agent)
    r = agent.rollout
    assert r.episode_end.any()
    rew, val, nxt = r.reward[0].numpy(), r.value[0].numpy(), r.next_value[0].numpy()
    end, term = r.episode_end[0].numpy(), r.terminated[0].numpy()
    env = agent.spec
    import gymnasium as gym

    buf = RolloutBuffer(T, gym.spaces.Box(-1e6, 1e6, (env.obs_dim,)), gym.spaces.Box(-1, 1, (1,)), n_envs=n,
                        gae_lambda=lam, gamma=gamma)  # fmt: skip
    buf.rewards[:] = rew + gamma * nxt * end * (1 - term)  # SB3's truncation bootstrap
    buf.values[:] = val
    buf.episode_starts[1:] = end[:-1]
    buf.compute_returns_and_advantage(torch.from_numpy(nxt[-1]), end[-1].astype(bool))
    r.finish(gamma, lam)
    np.testing.assert_allclose(r.advantage[0].numpy(), buf.advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r.returns[0].numpy(), buf.returns, rtol=1e-5, atol=1e-5)


def _sb3_layers(model: Any) -> list[torch.Tensor]:
    p = model.policy
    out = []
    for net, head in ((p.mlp_extractor.policy_net, p.action_net), (p.mlp_extractor.value_net, p.value_net)):
        for layer in (net[0], net[2], head):
            out += [layer.weight, layer.bias]
    return out


def _softac_layers(agent: PPO) -> list[torch.Tensor]:
    """softac's (1, in, out) weights and (1, 1, out) biases in SB3's (out, in) / (out,) layout."""
    out = []
    for mlp in (agent.net.policy, agent.net.value):
        for w, b in zip(mlp.weights, mlp.biases, strict=True):
            out += [w.detach()[0].T, b.detach()[0, 0]]
    return out


UPDATE_CASES = [("HalfCheetah-v5", 32), ("HalfCheetah-v5", 128), ("CartPole-v1", 32)]


@pytest.mark.parametrize(("env_id", "minibatch"), UPDATE_CASES)
def test_update_equals_sb3_train(env_id: str, minibatch: int) -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure

    T, n, epochs = 64, 2, 3
    agent = PPO(env_id, **{**PPO_TINY, "hidden_sizes": (64, 64), "n_steps": T, "n_envs": n,
                           "minibatch_size": minibatch, "n_epochs": epochs},
                lr=1e-3, ent_coef=0.01, log_std_init=-0.3, max_grad_norm=0.5, seed=0)  # fmt: skip
    collect(agent)
    agent.rollout.finish(agent.config.gamma, agent.config.gae_lambda)
    model = sb3.PPO("MlpPolicy", make_vec_env(env_id, n), n_steps=T, batch_size=minibatch, n_epochs=epochs,
                    learning_rate=1e-3, ent_coef=0.01, max_grad_norm=0.5, policy_kwargs={"log_std_init": -0.3},
                    device="cpu", seed=0)  # fmt: skip
    model.set_logger(configure(None, []))
    with torch.no_grad():
        for mine, theirs in zip(_softac_layers(agent), _sb3_layers(model), strict=True):
            theirs.copy_(mine)
        if agent.net.log_std is not None:
            model.policy.log_std.copy_(agent.net.log_std[0])
    r, buf = agent.rollout, model.rollout_buffer
    for name, field in (("observations", r.obs), ("actions", r.action), ("values", r.value),
                        ("log_probs", r.log_prob), ("advantages", r.advantage), ("returns", r.returns)):  # fmt: skip
        getattr(buf, name)[:] = field[0].numpy().reshape(getattr(buf, name).shape)
    buf.full, buf.generator_ready, buf.pos = True, False, T
    # The same minibatches: softac's per-epoch permutations, translated from its time-major sample
    # order (j = t·n + e) to SB3's env-major one (j = e·T + t).
    perms: list[np.ndarray] = []
    draw = agent._draw

    def spy(phase: Any) -> Any:
        if int(agent._mb_start) == 0:
            perms.append(agent._perm[0].numpy().copy())
        return draw(phase)

    agent._draw = spy  # type: ignore[method-assign]
    before = [t.clone() for t in _softac_layers(agent)]
    agent.update()
    assert len(perms) == epochs and agent.updates == epochs * T * n // minibatch
    it = iter(perms)
    original = np.random.permutation
    try:
        np.random.permutation = lambda size: np.array([(j % n) * T + j // n for j in next(it)])  # type: ignore[assignment]
        model.train()
    finally:
        np.random.permutation = original
    for mine, theirs in zip(_softac_layers(agent), _sb3_layers(model), strict=True):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-5, atol=2e-6)
    if agent.net.log_std is not None:
        torch.testing.assert_close(agent.net.log_std.detach()[0], model.policy.log_std.detach(), rtol=1e-5, atol=2e-6)
    assert all(not torch.equal(b, a) for b, a in zip(before, _softac_layers(agent), strict=True))  # it learned


def test_reward_and_observation_normalisation_follow_sb3_vecnormalize() -> None:
    """SB3's ``VecNormalize`` on the rollout's raw rewards and observations: G ← γG + r, Var[G]
    updated with every env's G, r / √(Var[G] + 1e-8) clipped to ±10, G reset at episode ends;
    observation statistics over the observations acted on."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    cfg = {**PPO_TINY, "n_steps": 250, "n_envs": 2, "minibatch_size": 100}  # Pendulum: 200-step episodes
    agent = PPO("Pendulum-v1", **cfg, normalize_obs=True, normalize_reward=True, gamma=0.95, seed=1)
    seen = collect(agent)
    ret_rms, obs_rms, ret = RunningMeanStd(shape=()), RunningMeanStd(shape=(3,)), np.zeros(2)
    scaled = []
    ends = agent.rollout.episode_end[0].numpy() > 0
    assert ends[199].all()  # the time limit, inside the rollout
    for t, tr in enumerate(seen):
        obs_rms.update(tr.obs[0].astype(np.float64))
        ret = ret * 0.95 + tr.reward[0]
        ret_rms.update(ret)
        scaled.append(np.clip(tr.reward[0] / np.sqrt(ret_rms.var + 1e-8), -10, 10))
        ret[ends[t]] = 0.0  # SB3: returns[dones] = 0, truncation included
    np.testing.assert_allclose(agent.rollout.reward[0].numpy(), np.stack(scaled), rtol=1e-5, atol=1e-6)
    assert agent.reward_norm is not None and agent.obs_norm is not None
    np.testing.assert_allclose(agent.reward_norm.var[0].item(), ret_rms.var, rtol=1e-10)
    np.testing.assert_allclose(agent.obs_norm.mean[0].numpy(), obs_rms.mean, rtol=1e-10)
    np.testing.assert_allclose(agent.obs_norm.var[0].numpy(), obs_rms.var, rtol=1e-10)


ROLLOUT_CASES = [("Pendulum-v1", 450, 2.0, [199, 399]), ("HalfCheetah-v5", 2048, 1.0, [999, 1999])]


@pytest.mark.parametrize(("env_id", "T", "half_range", "ends"), ROLLOUT_CASES)
def test_rollout_equals_sb3_collect_rollouts_with_vecnormalize(
    env_id: str, T: int, half_range: float, ends: list[int]
) -> None:
    """A rollout through two time limits (Pendulum: 450 steps; HalfCheetah: 2,048, the default
    rollout, as in the README's comparison) from the same weights and env seed,
    softac acting with the actions SB3 sampled: the normalised observations, scaled rewards (SB3's
    carry γ V(final) at a truncation), values, advantages and returns SB3's ``collect_rollouts``
    stores under ``VecNormalize``. Not bit-equal: a final observation (and the last one of the
    rollout) is normalised by SB3 after the statistics took in the observation that follows it,
    by softac before (see algos/onpolicy.py), a change of order 1/count.

    SB3's Gaussian lives in the environment's units, softac's in [−1, 1] (DESIGN.md principle 4:
    the box is mapped in one place), so Pendulum's [−2, 2] torque a is softac's a / 2 (HalfCheetah's
    box is [−1, 1]: the same units)."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecNormalize

    from softac.distributions import clip_action, diag_gaussian_log_prob

    cfg = {**PPO_TINY, "hidden_sizes": (64, 64), "n_steps": T, "n_envs": 1, "minibatch_size": T // 2}
    agent = PPO(env_id, **cfg, normalize_obs=True, normalize_reward=True, seed=0)
    venv = VecNormalize(make_vec_env(env_id, 1, seed=0), gamma=agent.config.gamma)
    model = sb3.PPO("MlpPolicy", venv, n_steps=T, batch_size=T // 2, device="cpu", seed=0)
    model.set_logger(configure(None, []))
    with torch.no_grad():
        for mine, theirs in zip(_softac_layers(agent), _sb3_layers(model), strict=True):
            theirs.copy_(mine)
        assert agent.net.log_std is not None
        model.policy.log_std.copy_(agent.net.log_std[0])
    _, callback = model._setup_learn(T, None)
    callback.on_training_start(locals(), globals())
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=T)
    buf = model.rollout_buffer
    actions = iter(torch.from_numpy(buf.actions.copy()))

    def replay(out: torch.Tensor, log_std: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        action = next(actions).unsqueeze(0) / half_range  # in softac's units
        return action, clip_action(action), diag_gaussian_log_prob(action, out, log_std)

    agent._sample = replay  # type: ignore[assignment]
    collect(agent)
    r = agent.rollout
    r.finish(agent.config.gamma, agent.config.gae_lambda)
    end, term = r.episode_end[0].numpy(), r.terminated[0].numpy()
    assert end[:, 0].nonzero()[0].tolist() == ends and not term.any()

    def close(mine: torch.Tensor | np.ndarray, theirs: np.ndarray, atol: float) -> None:
        np.testing.assert_allclose(np.asarray(mine).reshape(theirs.shape), theirs, rtol=0, atol=atol)

    close(r.obs[0].numpy(), buf.observations, 1e-5)
    close(r.value[0].numpy(), buf.values, 1e-5)
    # log π: SB3 evaluates N(μ, σ²) at the torque a, softac at a / 2, with the same μ and σ (weights)
    with torch.no_grad():
        out, log_std, _ = agent.net(r.obs[0].transpose(0, 1))
        sb3_log_prob = diag_gaussian_log_prob(torch.from_numpy(buf.actions).transpose(0, 1), out, log_std)
    close(sb3_log_prob.numpy(), buf.log_probs, 1e-4)
    close(r.reward[0].numpy() + agent.config.gamma * r.next_value[0].numpy() * end * (1 - term), buf.rewards, 1e-3)
    close(r.advantage[0].numpy(), buf.advantages, 2e-3)
    close(r.returns[0].numpy(), buf.returns, 2e-3)
