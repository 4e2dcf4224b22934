"""THE MATH on hand-computed numbers: targets, critic/actor/temperature losses."""

from __future__ import annotations

import torch

from softac.losses import common, sac, td3

T = torch.tensor


def test_bootstrap_zeroes_only_terminations() -> None:
    r, d, v = T([1.0, 2.0]), T([0.0, 1.0]), T([10.0, 10.0])
    torch.testing.assert_close(common.bootstrap(r, d, 0.5, v), T([6.0, 2.0]))


def test_sac_soft_target_on_numbers() -> None:
    # Three transitions: ordinary, truncated by a time limit (d = 0: still bootstraps), terminated.
    reward = T([1.0, -0.5, 2.0])
    terminated = T([0.0, 0.0, 1.0])
    next_q = T([[3.0, 5.0, 7.0], [4.0, 1.0, 9.0]])  # (n_critics = 2, B = 3)
    next_log_prob = T([-1.0, 0.5, 2.0])
    gamma, alpha = 0.9, 0.2
    y = sac.soft_target(reward, terminated, gamma, next_q, next_log_prob, alpha)
    # min_j Q: [3, 1, 7]; soft value: 3 + 0.2 = 3.2, 1 − 0.1 = 0.9, 7 − 0.4 = 6.6
    expected = T([1.0 + 0.9 * 3.2, -0.5 + 0.9 * 0.9, 2.0])
    torch.testing.assert_close(y, expected)


def test_sac_soft_target_alpha_as_tensor() -> None:
    y = sac.soft_target(T([0.0]), T([0.0]), 1.0, T([[2.0], [3.0]]), T([1.5]), torch.tensor(2.0))
    torch.testing.assert_close(y, T([2.0 - 3.0]))


def test_td3_target_uses_min_over_critics() -> None:
    reward = T([1.0, 1.0, 0.0])
    terminated = T([0.0, 1.0, 0.0])
    next_q = T([[5.0, 5.0, -2.0], [3.0, 8.0, -1.0]])
    y = td3.target(reward, terminated, 0.5, next_q)
    torch.testing.assert_close(y, T([1.0 + 0.5 * 3.0, 1.0, 0.5 * -2.0]))
    # DDPG: one critic, the min over one member is that member
    y1 = td3.target(reward, terminated, 0.5, next_q[1:])
    torch.testing.assert_close(y1, T([2.5, 1.0, -0.5]))


def test_smoothed_target_action_clips_noise_then_action() -> None:
    mu = T([0.0, 0.0, 0.9, -0.9, 0.2])
    noise = T([0.3, -2.0, 0.4, -0.05, 5.0])
    out = td3.smoothed_target_action(mu, noise, noise_clip=0.5)
    # noise → [0.3, −0.5, 0.4, −0.05, 0.5]; μ + noise → [0.3, −0.5, 1.3, −0.95, 0.7]; clip to [−1, 1]
    torch.testing.assert_close(out, T([0.3, -0.5, 1.0, -0.95, 0.7]))
    # zero noise (DDPG): the target action itself
    torch.testing.assert_close(td3.smoothed_target_action(mu, torch.zeros(5), 0.0), mu)


def test_smoothed_target_action_bounds_on_random_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.rand(1000, 3, generator=g) * 2 - 1
    noise = torch.randn(1000, 3, generator=g) * 3
    out = td3.smoothed_target_action(mu, noise, 0.5)
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert ((out - mu).abs() <= 0.5 + 1e-6).all()
    assert (out == 1.0).any() and (out == -1.0).any()  # the outer clip did act


def test_exploration_action_clips_to_unit_box() -> None:
    out = td3.exploration_action(T([0.95, -0.95, 0.0]), T([0.2, -0.2, 0.1]))
    torch.testing.assert_close(out, T([1.0, -1.0, 0.1]))


def test_critic_loss_is_sum_of_per_critic_mse() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 50, generator=g, dtype=torch.float64)
    y = torch.randn(50, generator=g, dtype=torch.float64)
    expected = sum(torch.nn.functional.mse_loss(q[j], y) for j in range(3))
    torch.testing.assert_close(common.critic_loss(q, y), expected)
    torch.testing.assert_close(sac.critic_loss(q, y), expected)
    torch.testing.assert_close(td3.critic_loss(q, y), expected)
    # on numbers: critic 0 errs by (1, −1), critic 1 by (2, 0): MSEs 1 and 2
    torch.testing.assert_close(common.critic_loss(T([[1.0, -1.0], [2.0, 0.0]]), T([0.0, 0.0])), T(3.0))


def test_critic_loss_gives_each_critic_its_own_gradient() -> None:
    q = T([[1.0, 3.0], [0.0, 0.0]]).requires_grad_(True)
    common.critic_loss(q, T([0.0, 1.0])).backward()
    # d/dq_ji of mean_i (q_ji − y_i)²  = 2 (q_ji − y_i) / B
    torch.testing.assert_close(q.grad, T([[1.0, 2.0], [0.0, -1.0]]))


def test_sac_actor_loss_on_numbers() -> None:
    q_pi = T([[1.0, 4.0], [2.0, 3.0]])
    log_prob = T([-1.0, 0.5])
    # mean(0.5 · [−1, 0.5] − [1, 3]) = mean([−1.5, −2.75]) = −2.125
    torch.testing.assert_close(sac.actor_loss(q_pi, log_prob, 0.5), T(-2.125))


def test_td3_actor_loss_on_numbers() -> None:
    torch.testing.assert_close(td3.actor_loss(T([1.0, 2.0, 6.0])), T(-3.0))


def test_temperature_loss_value_and_gradient_sign() -> None:
    target_entropy = -1.0
    # Entropy too low: log π = 2, so the entropy estimate −2 is below H̄ = −1 → α must grow.
    log_alpha = torch.tensor(0.0, requires_grad=True)
    loss = sac.temperature_loss(log_alpha, T([2.0, 2.0]), target_entropy)
    loss.backward()
    assert log_alpha.grad is not None
    torch.testing.assert_close(log_alpha.grad, T(-1.0))  # −(log π + H̄) = −(2 − 1)
    assert log_alpha.grad < 0  # gradient descent raises log α
    opt = torch.optim.SGD([log_alpha], lr=0.1)
    opt.step()
    assert log_alpha.item() > 0.0

    # Entropy too high: log π = −3 → entropy 3 > −1 → α must shrink.
    log_alpha = torch.tensor(0.0, requires_grad=True)
    sac.temperature_loss(log_alpha, T([-3.0]), target_entropy).backward()
    assert log_alpha.grad is not None and log_alpha.grad > 0
    torch.testing.assert_close(log_alpha.grad, T(4.0))  # −(log π + H̄) = −(−3 − 1)

    # value: −log α · mean(log π + H̄)
    la = torch.tensor(0.7)
    torch.testing.assert_close(sac.temperature_loss(la, T([1.0, 3.0]), -1.0), T(-0.7 * 1.0))
