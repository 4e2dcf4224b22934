"""PPO through the agent: what a rollout stores (unclipped Gaussian samples, their log π, V, the
clipped action the environment got), termination vs truncation in the bootstrap, gradient
isolation of the policy and value losses, per-learner gradient clipping, minibatch shuffling,
the learning-rate and clip-range schedules, the deterministic policy, and config errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from helpers import DEVICE, assert_one_line_error, run_cli

from softac import PPO, SoftacError
from softac.distributions import categorical_log_prob, diag_gaussian_log_prob
from softac.losses import ppo as L
from softac.train.onpolicy import OnPolicyStep

# Small rollouts and networks; every run below performs gradient steps (its update runs).
PPO_TINY: dict[str, Any] = {
    "hidden_sizes": (16, 16), "n_steps": 16, "n_envs": 2, "minibatch_size": 8, "n_epochs": 2,
    "eval_episodes": 1, "threads": 1, "device": DEVICE,
}  # fmt: skip


def collect(agent: PPO) -> list[Any]:
    """One rollout through the real on-policy step, its update replaced by a recorder: returns
    the collector's transitions of each step (what the environments got and returned)."""
    step = OnPolicyStep(agent, None)
    seen: list[Any] = []
    original = step.collector.step

    def spy(action: np.ndarray, at: int) -> Any:
        tr = original(action, at)
        seen.append(tr)
        return tr

    step.collector.step = spy  # type: ignore[method-assign]
    agent.update = lambda: {}  # type: ignore[method-assign]
    step()
    step.close()
    del agent.update  # the class's update again
    return seen


def test_box_rollout_stores_the_unclipped_sample_and_the_env_gets_it_clipped() -> None:
    agent = PPO("Pendulum-v1", **PPO_TINY, log_std_init=0.5, seed=2)  # σ = 1.65: many samples beyond ±1
    seen = collect(agent)
    r = agent.rollout
    assert agent.env_steps == 32
    stored = r.action.cpu()
    sent = torch.from_numpy(np.stack([tr.action for tr in seen], axis=1))  # (L, T, n, 1) as the env got it
    assert (stored.abs() > 1).any()
    torch.testing.assert_close(sent, stored.clamp(-1, 1), rtol=0, atol=0)
    with torch.no_grad():
        out, log_std, value = agent.net(r.obs.flatten(1, 2))
        log_prob = diag_gaussian_log_prob(r.action.flatten(1, 2), out, log_std)
    torch.testing.assert_close(r.log_prob.flatten(1, 2), log_prob)
    torch.testing.assert_close(r.value.flatten(1, 2), value)
    observed = torch.from_numpy(np.stack([tr.obs for tr in seen], axis=1))
    torch.testing.assert_close(r.obs.cpu(), observed, rtol=0, atol=0)  # raw: normalize_obs is off


def test_discrete_rollout_stores_action_indices_and_their_log_prob() -> None:
    agent = PPO("CartPole-v1", **PPO_TINY, seed=1)
    collect(agent)
    r = agent.rollout
    actions = r.action.flatten(1, 2)[..., 0]
    assert set(actions.unique().tolist()) == {0.0, 1.0}
    with torch.no_grad():
        logits, log_std, _ = agent.net(r.obs.flatten(1, 2))
    assert log_std is None and agent.net.log_std is None
    torch.testing.assert_close(r.log_prob.flatten(1, 2), categorical_log_prob(logits, actions))
    assert (r.terminated == r.episode_end).all()  # CartPole's 16-step rollouts only end by falling


def test_truncation_bootstraps_from_the_final_observation_termination_does_not() -> None:
    """Counter-v0 truncates after 5 steps (obs = [t, episode]): step 4 bootstraps from V([5, 0]),
    the real final observation, not from the reset one that follows; CounterTerminates-v0 ends
    at t = 3 by termination, whose next value GAE multiplies by 0."""
    cfg = {**PPO_TINY, "n_envs": 1, "n_steps": 8, "minibatch_size": 8, "gamma": 0.9, "gae_lambda": 0.8}
    agent = PPO("SoftacTest/Counter-v0", **cfg)
    collect(agent)
    r = agent.rollout
    assert r.episode_end[0, :, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert r.terminated.sum() == 0
    with torch.no_grad():
        v_final = agent.net.value(torch.tensor([[[5.0, 0.0]]], device=agent.device))[0, 0, 0]
        v_reset = agent.net.value(torch.tensor([[[0.0, 1.0]]], device=agent.device))[0, 0, 0]
    assert r.next_value[0, 4, 0] == v_final != v_reset
    assert r.value[0, 5, 0] == v_reset  # the new episode starts from the reset observation
    assert r.next_value[0, 3, 0] == r.value[0, 4, 0]  # within an episode: V(s_{t+1}) as acted on
    r.finish(0.9, 0.8)
    # Â_4 = r_4 + γ V(final) − V(s_4): nothing carried over from the next episode
    expected = r.reward[0, 4, 0] + 0.9 * v_final - r.value[0, 4, 0]
    torch.testing.assert_close(r.advantage[0, 4, 0], expected)

    agent = PPO("SoftacTest/CounterTerminates-v0", **cfg)
    collect(agent)
    r = agent.rollout
    assert r.terminated[0, :, 0].tolist() == r.episode_end[0, :, 0].tolist() == [0, 0, 1, 0, 0, 1, 0, 0]
    r.finish(0.9, 0.8)
    torch.testing.assert_close(r.advantage[0, 2, 0], r.reward[0, 2, 0] - r.value[0, 2, 0])


# -- gradient isolation ------------------------------------------------------------------------
def _minibatch(agent: PPO) -> Any:
    collect(agent)
    agent.rollout.finish(agent.config.gamma, agent.config.gae_lambda)
    agent._perm.copy_(torch.arange(agent.rollout.size).expand_as(agent._perm))
    return agent._draw(None)


def _grad_state(params: list[torch.Tensor]) -> list[bool]:
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in params]


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_policy_loss_reaches_only_the_policy_and_value_loss_only_the_value(env_id: str) -> None:
    agent = PPO(env_id, **PPO_TINY, seed=3)
    mb = _minibatch(agent)
    net = agent.net
    pi, log_std, vf = net.split(net.params())
    policy = pi + ([log_std] if log_std is not None else [])

    def backward(loss: torch.Tensor) -> None:
        net.zero_grad(set_to_none=True)
        loss.sum().backward()

    out, log_std_b, value = net(mb.obs)
    log_prob, entropy = agent.log_prob_entropy(out, log_std_b, mb.action)
    # a ratio away from 1 for the policy gradient to be non-zero through the clip
    backward(L.clipped_surrogate_loss(log_prob, mb.log_prob - 0.05, L.normalize_advantages(mb.advantage), 0.2))
    assert all(_grad_state(policy)) and not any(_grad_state(vf))
    out, log_std_b, value = net(mb.obs)
    backward(L.value_loss(value, mb.returns))
    assert all(_grad_state(vf)) and not any(_grad_state(policy))
    out, log_std_b, value = net(mb.obs)
    log_prob, entropy = agent.log_prob_entropy(out, log_std_b, mb.action)
    backward(L.entropy_loss(entropy))
    if log_std is not None:  # a Gaussian's entropy depends on σ alone
        assert _grad_state(policy) == [False] * len(pi) + [True] and not any(_grad_state(vf))
    else:
        assert any(_grad_state(pi)) and not any(_grad_state(vf))


def test_the_agents_loss_with_vf_coef_zero_leaves_the_value_net_without_gradient() -> None:
    agent = PPO("Pendulum-v1", **PPO_TINY, seed=3, vf_coef=0.0, max_grad_norm=0.0)
    mb = _minibatch(agent)
    _, log_std, vf = agent.net.split(agent.net.params())
    agent.gradient_step(agent.opt, agent._loss, mb)
    assert not any(_grad_state(vf)) and _grad_state([log_std])[0]  # type: ignore[list-item]
    # control: with c₁ > 0 the same step reaches the value network
    agent = PPO("Pendulum-v1", **PPO_TINY, seed=3, vf_coef=0.5, max_grad_norm=0.0)
    agent.gradient_step(agent.opt, agent._loss, _minibatch(agent))
    assert all(_grad_state(agent.net.split(agent.net.params())[2]))


def test_gradient_norm_is_clipped_per_learner() -> None:
    """Two learners whose gradients differ in size by 10⁴: the large one is scaled to the norm, the
    small one left untouched; each equals a single learner clipped alone."""
    agent = PPO("Pendulum-v1", **PPO_TINY, seeds=[0, 1])
    params = agent.net.params()
    scale = torch.tensor([100.0, 0.01], device=agent.device)

    def loss_fn(ps: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = sum(p.square().reshape(2, -1).sum(1) for p in ps)
        return scale * total, {}  # type: ignore[return-value]

    expected = [torch.autograd.grad(loss_fn(params)[0][k], params) for k in range(2)]
    raw = [torch.sqrt(sum(g.reshape(2, -1)[k].square().sum() for g in expected[k])) for k in range(2)]
    metrics = agent.gradient_step(agent.opt, loss_fn, max_grad_norm=1.0)
    assert raw[0] > 1.0 > raw[1]
    torch.testing.assert_close(metrics["grad/norm"], torch.stack(raw))
    clipped = [p.grad for p in params]
    norms = [torch.sqrt(sum(g.reshape(2, -1)[k].square().sum() for g in clipped)) for k in range(2)]  # type: ignore[union-attr]
    torch.testing.assert_close(norms[0], torch.tensor(1.0, device=agent.device), rtol=1e-5, atol=1e-6)
    for g, e0, e1 in zip(clipped, expected[0], expected[1], strict=True):
        assert g is not None
        torch.testing.assert_close(g.reshape(2, -1)[1], e1.reshape(2, -1)[1])  # below the norm: untouched
        torch.testing.assert_close(g.reshape(2, -1)[0], e0.reshape(2, -1)[0] / (raw[0] + 1e-6))


# -- the update loop ---------------------------------------------------------------------------
def test_every_epoch_visits_each_sample_once_in_a_per_learner_shuffle() -> None:
    agent = PPO("Pendulum-v1", **{**PPO_TINY, "n_epochs": 3}, seeds=[0, 1])
    seen: list[torch.Tensor] = []
    original = agent._draw

    def spy(phase: Any) -> Any:
        seen.append(agent._perm.index_select(1, agent._mb_cols + agent._mb_start).cpu())
        return original(phase)

    agent._draw = spy  # type: ignore[method-assign]
    collect(agent)
    metrics = agent.update()
    per_epoch = agent.rollout.size // agent.config.minibatch_size
    assert len(seen) == agent.updates == 3 * per_epoch
    epochs = [torch.cat(seen[e * per_epoch : (e + 1) * per_epoch], dim=1) for e in range(3)]
    for idx in epochs:
        for k in range(2):
            assert sorted(idx[k].tolist()) == list(range(agent.rollout.size))
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0][0], epochs[0][1])
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in metrics.values())
    assert {"loss/policy", "loss/value", "policy/approx_kl", "policy/clip_fraction", "grad/norm", "lr"} <= set(metrics)


def test_annealed_lr_and_clip_range_follow_the_step_counter() -> None:
    agent = PPO("Pendulum-v1", **PPO_TINY, anneal_lr=True, anneal_clip_range=True, lr=1e-3, clip_range=0.3,
                total_steps=64)  # fmt: skip
    collect(agent)
    before = [p.detach().clone() for p in agent.net.params()]
    metrics = agent.update()  # after 32 of 64 steps: half of each left
    assert float(agent.opt.param_groups[0]["lr"]) == pytest.approx(5e-4)
    assert float(metrics["lr"][0]) == pytest.approx(5e-4)
    assert float(agent._clip_range) == pytest.approx(0.15)
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.net.params(), strict=True))
    collect(agent)
    before = [p.detach().clone() for p in agent.net.params()]
    moments = [agent.opt.state[p]["exp_avg"].clone() for p in agent.net.params()]
    agent.update()  # the last rollout learns with lr 0 (as SB3's): parameters unchanged, moments not
    assert float(agent.opt.param_groups[0]["lr"]) == 0.0
    assert all(torch.equal(b, p) for b, p in zip(before, agent.net.params(), strict=True))
    assert any(not torch.equal(m, agent.opt.state[p]["exp_avg"]) for m, p in zip(moments, agent.net.params(),
                                                                                   strict=True))  # fmt: skip


def test_deterministic_actions_are_the_clipped_mean_and_the_argmax() -> None:
    agent = PPO("Pendulum-v1", **PPO_TINY)
    with torch.no_grad():
        agent.net.policy.biases[-1].fill_(3.0)  # a mean beyond the bound
    obs = np.zeros((1, 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(agent.act(obs), np.ones((1, 3, 1), dtype=np.float32))
    assert agent.predict(np.zeros(3, dtype=np.float32))[0].tolist() == [2.0]  # Pendulum's bound
    cart = PPO("CartPole-v1", **PPO_TINY)
    with torch.no_grad():
        cart.net.policy.biases[-1].copy_(torch.tensor([[[0.0, 5.0]]]))
    assert cart.act(np.zeros((1, 2, 4), dtype=np.float32)).tolist() == [[[1.0], [1.0]]]
    assert int(cart.predict(np.zeros(4, dtype=np.float32))[0]) == 1


def test_minibatch_size_must_divide_the_rollout() -> None:
    with pytest.raises(SoftacError, match="minibatch_size"):
        PPO("Pendulum-v1", **{**PPO_TINY, "minibatch_size": 7})
    proc = run_cli(
        "train", "--algo", "ppo", "--env", "Pendulum-v1", "--n-steps", "10", "--minibatch-size", "4", "--preset", "none"
    )
    assert_one_line_error(proc, "minibatch_size (4) must divide n_steps × n_envs")


def test_a_dropped_non_finite_step_ends_its_episode_without_bootstrapping() -> None:
    """NaNObs-v0 returns a NaN observation at step 7 of its first episode: with skip_nonfinite the
    collector drops it (reward 0, episode over); PPO must not bootstrap from the zeroed next
    observation, and the update stays finite."""
    cfg = {**PPO_TINY, "n_envs": 1, "n_steps": 16, "minibatch_size": 8}
    agent = PPO("SoftacTest/NaNObs-v0", **cfg, skip_nonfinite=True)
    collect(agent)
    r = agent.rollout
    assert r.episode_end[0, :, 0].tolist() == [0] * 7 + [1] + [0] * 8
    assert r.terminated[0, 7, 0] == 1 and r.reward[0, 7, 0] == 0
    metrics = agent.update()
    assert all(torch.isfinite(v).all() for v in metrics.values())
    with pytest.raises(SoftacError, match="non-finite observation"):
        collect(PPO("SoftacTest/NaNObs-v0", **cfg))  # without the flag: one clear error
