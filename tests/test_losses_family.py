"""DQN, discrete SAC and PPO on hand-computed numbers, with a learner axis giving per-learner values."""

from __future__ import annotations

import math

import pytest
import torch

from softac.losses import discrete_sac, dqn, ppo

T = torch.tensor


# -- DQN ----------------------------------------------------------------------------------------
def test_chosen_q_gathers_taken_action() -> None:
    q = T([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]])
    torch.testing.assert_close(dqn.chosen_q(q, T([1, 2])), T([5.0, 4.0]))


def test_dqn_target_max_and_termination_only() -> None:
    reward, terminated = T([1.0, 0.5]), T([0.0, 1.0])
    next_q_target = T([[1.0, 3.0, 2.0], [7.0, 8.0, 9.0]])
    # max_a' Q_targ: 3 (bootstraps: a truncation has d = 0), 9 (terminated: ignored)
    torch.testing.assert_close(dqn.target(reward, terminated, 0.9, next_q_target), T([1.0 + 0.9 * 3.0, 0.5]))


def test_double_dqn_evaluates_online_argmax_with_target_net() -> None:
    reward, terminated = T([1.0, 0.5]), T([0.0, 0.0])
    next_q_online = T([[5.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # argmax: 0, 2
    next_q_target = T([[1.0, 3.0, 2.0], [7.0, 8.0, 9.0]])  # its own argmax: 1, 2
    y = dqn.double_target(reward, terminated, 0.9, next_q_online, next_q_target)
    torch.testing.assert_close(y, T([1.0 + 0.9 * 1.0, 0.5 + 0.9 * 9.0]))  # Q_targ(s', 0) = 1, not max = 3
    assert y[0] < dqn.target(reward, terminated, 0.9, next_q_target)[0]


def test_dqn_losses_per_learner() -> None:
    q = T([[0.0, 0.5, 3.0], [-2.0, 1.0, 0.0]])  # (L = 2, B = 3)
    y = torch.zeros(2, 3)
    # Huber δ = 1: x²/2 if |x| ≤ 1 else |x| − 1/2
    torch.testing.assert_close(dqn.huber_loss(q, y), T([(0 + 0.125 + 2.5) / 3, (1.5 + 0.5 + 0) / 3]))
    torch.testing.assert_close(dqn.mse_loss(q, y), T([9.25 / 3, 5.0 / 3]))
    torch.testing.assert_close(dqn.td_loss(q, y, "mse"), dqn.mse_loss(q, y))
    torch.testing.assert_close(dqn.td_loss(q, y), dqn.huber_loss(q, y))
    with pytest.raises(ValueError, match="unknown TD loss"):
        dqn.td_loss(q, y, "l1")  # type: ignore[arg-type]


def test_huber_gradient_is_clipped_error() -> None:
    q = T([0.5, 3.0, -4.0]).requires_grad_(True)
    dqn.huber_loss(q, torch.zeros(3)).backward()
    torch.testing.assert_close(q.grad, T([0.5, 1.0, -1.0]) / 3)  # Mnih et al.: error clipped to [−1, 1]


def test_dqn_learner_axis_equals_separate_learners() -> None:
    g = torch.Generator().manual_seed(0)
    r, d = torch.randn(2, 5, generator=g), (torch.rand(2, 5, generator=g) < 0.3).float()
    qo, qt = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    y = dqn.double_target(r, d, 0.99, qo, qt)
    assert y.shape == (2, 5)
    for i in range(2):
        torch.testing.assert_close(y[i], dqn.double_target(r[i], d[i], 0.99, qo[i], qt[i]))
    assert dqn.huber_loss(qo[..., 0], y).shape == (2,)


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (50, 0.525), (100, 0.05), (101, 0.05), (999, 0.05)])
def test_linear_epsilon(step: int, expected: float) -> None:
    assert dqn.linear_epsilon(step, 1000, 0.1, 1.0, 0.05) == pytest.approx(expected)


def test_linear_epsilon_zero_fraction_is_final_value() -> None:
    assert dqn.linear_epsilon(0, 1000, 0.0, 1.0, 0.05) == pytest.approx(0.05)


def test_epsilon_greedy_uses_given_uniforms() -> None:
    q = T([[1.0, 2.0, 0.0], [5.0, 0.0, 0.0]])
    out = dqn.epsilon_greedy(q, 0.1, explore_u=T([0.5, 0.01]), action_u=T([0.9, 0.4]))
    torch.testing.assert_close(out, T([1, 1]))  # greedy argmax 1; random ⌊0.4 · 3⌋ = 1


# -- discrete SAC ---------------------------------------------------------------------------------
LOGITS = torch.log(T([[0.25, 0.75]]))  # π = (0.25, 0.75), B = 1
Q_NEXT = T([[[1.0, 2.0]], [[3.0, 0.0]]])  # (n_critics = 2, B = 1, |A| = 2): min_j Q = (1, 0)
V_HAND = 0.25 * (1.0 - 0.5 * math.log(0.25)) + 0.75 * (0.0 - 0.5 * math.log(0.75))  # α = 0.5


def test_discrete_soft_target_is_exact_expectation() -> None:
    y = discrete_sac.soft_target(T([1.0]), T([0.0]), 0.9, Q_NEXT, LOGITS, 0.5)
    torch.testing.assert_close(y, T([1.0 + 0.9 * V_HAND]))
    # terminated: y = r
    torch.testing.assert_close(discrete_sac.soft_target(T([1.0]), T([1.0]), 0.9, Q_NEXT, LOGITS, 0.5), T([1.0]))


def test_discrete_soft_value_against_loop_over_actions() -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 2, 6, 4, generator=g, dtype=torch.float64)  # (L = 3, n_critics = 2, B = 6, |A| = 4)
    logits = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    alpha = T([0.1, 0.5, 2.0], dtype=torch.float64)  # one temperature per learner (L = 3)
    v = discrete_sac.soft_state_value(q, logits, alpha)
    assert v.shape == (3, 6)
    for i in range(3):
        for b in range(6):
            p = torch.softmax(logits[i, b], -1)
            expected = sum(p[a] * (min(q[i, 0, b, a], q[i, 1, b, a]) - alpha[i] * p[a].log()) for a in range(4))
            torch.testing.assert_close(v[i, b], expected)


def test_discrete_soft_value_alpha_zero_is_expected_min_q() -> None:
    v = discrete_sac.soft_state_value(Q_NEXT.expand(2, 2, 1, 2), LOGITS.expand(2, 1, 2), T([0.5, 0.0]))
    torch.testing.assert_close(v, T([[V_HAND], [0.25 * 1.0]]))


def test_discrete_critic_loss_sums_critics_per_learner() -> None:
    q = T([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])  # (L = 2, n_critics = 2, B = 2)
    y = T([[0.0, 1.0], [0.0, 1.0]])
    torch.testing.assert_close(discrete_sac.critic_loss(q, y), T([2.5 + 0.5, 0.0]))


def test_discrete_actor_loss_value_and_direction() -> None:
    # Σ_a π (α log π − min Q) = −V(s) on the same numbers
    torch.testing.assert_close(discrete_sac.actor_loss(LOGITS, Q_NEXT, 0.5), T(-V_HAND))
    # a gradient step moves probability towards the action of higher min_j Q (action 0 here)
    logits = torch.zeros(1, 2, requires_grad=True)
    discrete_sac.actor_loss(logits, Q_NEXT, 0.01).backward()
    assert logits.grad is not None
    assert logits.grad[0, 0] < 0 < logits.grad[0, 1]


def test_discrete_actor_loss_entropy_pulls_towards_uniform() -> None:
    # equal Q values: only α log π acts, and it pushes a skewed policy towards uniform
    logits = torch.log(T([[0.9, 0.1]])).requires_grad_(True)
    discrete_sac.actor_loss(logits, torch.zeros(2, 1, 2), 1.0).backward()
    assert logits.grad is not None and logits.grad[0, 0] > 0 > logits.grad[0, 1]


def test_discrete_temperature_loss_value_and_gradient_sign() -> None:
    log_alpha = T([math.log(2.0), 0.0], requires_grad=True)
    entropy = T([[0.2, 0.4], [0.6, 0.6]], requires_grad=True)
    loss = discrete_sac.temperature_loss(log_alpha, entropy, 0.5)
    # log α · mean(H − H̄): learner 0 ln 2 · (−0.2); learner 1 0 · 0.1
    torch.testing.assert_close(loss, T([-0.2 * math.log(2.0), 0.0]))
    loss.sum().backward()
    assert log_alpha.grad is not None
    torch.testing.assert_close(log_alpha.grad, T([-0.2, 0.1]))  # too little entropy → α grows, too much → shrinks
    assert entropy.grad is None  # detached: the temperature loss never moves the policy


def test_target_entropy_scale() -> None:
    assert discrete_sac.target_entropy(2) == pytest.approx(0.7 * math.log(2))
    assert discrete_sac.target_entropy(6, scale=0.98) == pytest.approx(0.98 * math.log(6))
    with pytest.raises(ValueError):
        discrete_sac.target_entropy(1)


# -- PPO ------------------------------------------------------------------------------------------
def test_gae_three_steps_with_truncation_and_termination() -> None:
    # one env; t = 1 is truncated (bootstraps from V(final obs) = 4, recursion stops); t = 2 terminates
    rewards, values = T([[1.0], [2.0], [3.0]]), T([[0.5], [1.0], [1.5]])
    next_values = T([[1.0], [4.0], [9.0]])
    terminated, episode_end = T([[0.0], [0.0], [1.0]]), T([[0.0], [1.0], [1.0]])
    adv = ppo.gae(rewards, values, next_values, terminated, episode_end, gamma=0.5, lam=0.5)
    # δ = (1 + 0.5·1 − 0.5, 2 + 0.5·4 − 1, 3 − 1.5) = (1, 3, 1.5); Â2 = 1.5, Â1 = 3, Â0 = 1 + 0.25·3
    torch.testing.assert_close(adv, T([[1.75], [3.0], [1.5]]))
    torch.testing.assert_close(ppo.lambda_returns(adv, values), T([[2.25], [4.0], [3.0]]))


def test_gae_rollout_tail_bootstraps_from_next_values() -> None:
    adv = ppo.gae(T([[0.0], [0.0], [1.0]]), torch.ones(3, 1), T([[1.0], [1.0], [2.0]]),
                  torch.zeros(3, 1), torch.zeros(3, 1), gamma=0.5, lam=0.5)  # fmt: skip
    # δ = (−0.5, −0.5, 1); Â2 = 1, Â1 = −0.5 + 0.25, Â0 = −0.5 − 0.0625
    torch.testing.assert_close(adv, T([[-0.5625], [-0.25], [1.0]]))


def test_gae_matches_python_loop_with_learner_axis() -> None:
    g = torch.Generator().manual_seed(3)
    L, steps, envs, gamma, lam = 2, 9, 3, 0.97, 0.9
    r, v, nv = (torch.randn(L, steps, envs, generator=g, dtype=torch.float64) for _ in range(3))
    truncated = torch.rand(L, steps, envs, generator=g) < 0.15
    terminated = (torch.rand(L, steps, envs, generator=g) < 0.2) & ~truncated
    end = terminated | truncated
    adv = ppo.gae(r, v, nv, terminated, end, gamma, lam)  # bool flags accepted
    for i in range(L):
        for e in range(envs):
            running = 0.0
            for t in reversed(range(steps)):
                bootstrap = 0.0 if terminated[i, t, e] else gamma * float(nv[i, t, e])
                delta = float(r[i, t, e]) + bootstrap - float(v[i, t, e])
                running = delta + (0.0 if end[i, t, e] else gamma * lam * running)
                assert float(adv[i, t, e]) == pytest.approx(running, abs=1e-12)


def test_gae_lambda_one_no_ends_is_discounted_return_minus_value() -> None:
    r, v = T([[1.0], [2.0], [3.0]]), T([[0.3], [0.2], [0.1]])
    adv = ppo.gae(r, v, T([[0.2], [0.1], [5.0]]), torch.zeros(3, 1), torch.zeros(3, 1), gamma=0.9, lam=1.0)
    mc = T([[1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 5], [2 + 0.9 * 3 + 0.81 * 5], [3 + 0.9 * 5]])
    torch.testing.assert_close(adv, mc - v)


def test_clipped_surrogate_active_and_inactive_cases() -> None:
    adv = T([2.0, 2.0, -1.0, -1.0])
    log_prob = torch.log(T([1.5, 0.5, 0.5, 1.5])).requires_grad_(True)  # old log-prob 0: r = these
    loss = ppo.clipped_surrogate_loss(log_prob, torch.zeros(4), adv, clip_range=0.2)
    # min(rA, clip(r)A): (min(3, 2.4), min(1, 1.6), min(−0.5, −0.8), min(−1.5, −1.2)) = (2.4, 1, −0.8, −1.5)
    torch.testing.assert_close(loss, T(-(2.4 + 1.0 - 0.8 - 1.5) / 4))
    loss.backward()
    assert log_prob.grad is not None
    # clipped cases (0, 2) get no gradient; the others −r·A/4: a good action's log-prob is pushed up
    torch.testing.assert_close(log_prob.grad, T([0.0, -0.25, 0.0, 0.375]))


def test_surrogate_per_learner_shape() -> None:
    out = ppo.clipped_surrogate_loss(torch.zeros(3, 5), torch.zeros(3, 5), torch.ones(3, 5), 0.2)
    torch.testing.assert_close(out, -torch.ones(3))


def test_value_loss_plain_and_clipped() -> None:
    values, returns, old = T([1.0, 2.0]), T([0.0, 0.0]), T([0.5, 2.5])
    torch.testing.assert_close(ppo.value_loss(values, returns), T(2.5))
    # V_clip = (0.7, 2.3) → squared errors (0.49, 5.29); max with (1, 4) → (1, 5.29)
    torch.testing.assert_close(ppo.value_loss(values, returns, old, 0.2), T((1.0 + 5.29) / 2))
    with pytest.raises(ValueError):
        ppo.value_loss(values, returns, None, 0.2)


def test_normalize_advantages_per_learner() -> None:
    out = ppo.normalize_advantages(T([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]))
    torch.testing.assert_close(out, T([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]), rtol=0, atol=1e-6)
    single = T([[4.0], [5.0]])
    torch.testing.assert_close(ppo.normalize_advantages(single), single)


def test_logging_statistics() -> None:
    kl = ppo.approx_kl(torch.log(T([2.0, 1.0])), torch.zeros(2))
    torch.testing.assert_close(kl, T((1.0 - math.log(2.0)) / 2))  # (r − 1) − log r, r = (2, 1)
    assert ppo.approx_kl(torch.randn(50), torch.randn(50)) >= 0
    frac = ppo.clip_fraction(torch.log(T([1.5, 0.5, 1.1, 1.0])), torch.zeros(4), 0.2)
    torch.testing.assert_close(frac, T(0.5))


def test_entropy_and_total_loss() -> None:
    torch.testing.assert_close(ppo.entropy_loss(T([[1.0, 3.0]])), T([-2.0]))
    total = ppo.ppo_loss(T(1.0), T(2.0), T(-3.0), vf_coef=0.5, ent_coef=0.01)
    torch.testing.assert_close(total, T(1.0 + 1.0 - 0.03))


def test_linear_decay() -> None:
    assert ppo.linear_decay(1e-3, 0.25) == pytest.approx(2.5e-4)
    assert ppo.linear_decay(0.2, 1.5) == pytest.approx(0.2)
    assert ppo.linear_decay(0.2, -0.1) == 0.0
