"""PPO's state-independent diagonal Gaussian and the categorical of PPO/discrete SAC: against
torch.distributions, on hand numbers, and with the caller's random streams."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, Normal

from softac.distributions import (
    categorical_entropy,
    categorical_log_prob,
    categorical_log_probs,
    categorical_mode,
    categorical_probs,
    categorical_sample,
    clip_action,
    diag_gaussian_entropy,
    diag_gaussian_log_prob,
    diag_gaussian_sample,
    draw,
)

T = torch.tensor


def test_diag_gaussian_log_prob_and_entropy_with_learner_axis() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)  # (L, B, A)
    log_std = torch.randn(2, 3, generator=g, dtype=torch.float64)  # state-independent, one per learner
    action = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    ref = Normal(mean, log_std.unsqueeze(-2).exp())
    ours = diag_gaussian_log_prob(action, mean, log_std.unsqueeze(-2))
    assert ours.shape == (2, 5)
    torch.testing.assert_close(ours, ref.log_prob(action).sum(-1))
    ent = diag_gaussian_entropy(mean, log_std.unsqueeze(-2))
    assert ent.shape == (2, 5)
    torch.testing.assert_close(ent, ref.entropy().sum(-1))


def test_diag_gaussian_on_numbers() -> None:
    # a = μ + σ: log N = −1/2 − log σ − log(2π)/2 per dim; σ = e^{−1}
    lp = diag_gaussian_log_prob(T([[1.0 + math.exp(-1.0)]]), T([[1.0]]), T([-1.0]))
    assert float(lp) == pytest.approx(-0.5 + 1.0 - 0.5 * math.log(2 * math.pi))
    ent = diag_gaussian_entropy(torch.zeros(4, 2), T([0.0, -1.0]))
    torch.testing.assert_close(ent, torch.full((4,), 2 * 0.5 * math.log(2 * math.pi * math.e) - 1.0))


def test_diag_gaussian_sample_noise_and_generators() -> None:
    mean, log_std = T([[0.5, -0.5]]), T([0.0, math.log(2.0)])
    torch.testing.assert_close(diag_gaussian_sample(mean, log_std, noise=T([[1.0, 1.0]])), T([[1.5, 1.5]]))
    a1 = diag_gaussian_sample(mean, log_std, generator=torch.Generator().manual_seed(7))
    a2 = diag_gaussian_sample(mean, log_std, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a1, a2)
    with pytest.raises(ValueError, match="exactly one"):
        diag_gaussian_sample(mean, log_std)


def test_clip_action_clips_only_the_env_copy() -> None:
    a = T([1.7, -0.3, -2.0])
    torch.testing.assert_close(clip_action(a), T([1.0, -0.3, -1.0]))
    assert a[0] == 1.7  # the stored sample is untouched


def test_draw_one_generator_per_learner_is_independent_of_stacking() -> None:
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    stacked = draw((3, 4, 2), gens, "normal")
    alone = draw((4, 2), torch.Generator().manual_seed(2), "normal")
    torch.testing.assert_close(stacked[1], alone)  # learner 1's stream alone gives its slice
    u = draw((2, 1000), [torch.Generator().manual_seed(s) for s in (1, 2)], "uniform")
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    with pytest.raises(ValueError, match="generators"):
        draw((3, 4), gens[:2], "normal")


def test_categorical_against_torch() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 4, generator=g, dtype=torch.float64) * 3
    actions = torch.randint(0, 4, (2, 6), generator=g)
    ref = Categorical(logits=logits)
    torch.testing.assert_close(categorical_log_prob(logits, actions), ref.log_prob(actions))
    torch.testing.assert_close(categorical_entropy(logits), ref.entropy())
    torch.testing.assert_close(categorical_probs(logits), ref.probs)
    torch.testing.assert_close(categorical_mode(logits), ref.probs.argmax(-1))


def test_categorical_stable_and_masked() -> None:
    log_p = categorical_log_probs(T([[1000.0, 0.0]]))
    torch.testing.assert_close(log_p, T([[0.0, -1000.0]]))  # log(softmax) would give −inf
    logits = T([[0.0, float("-inf"), 1.0]], requires_grad=True)
    ent = categorical_entropy(logits)
    p = 1.0 / (1.0 + math.e)
    torch.testing.assert_close(ent, T([-(p * math.log(p) + (1 - p) * math.log(1 - p))]))  # masked action adds 0
    ent.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()  # and no NaN gradient


def test_categorical_sample_inverts_cdf() -> None:
    logits = torch.log(T([0.2, 0.5, 0.3])).expand(5, 3)
    out = categorical_sample(logits, uniforms=T([0.1, 0.3, 0.95, 0.2, 0.9999999]))
    torch.testing.assert_close(out, T([0, 1, 2, 1, 2]))
    zero_middle = torch.log(T([0.5, 0.0, 0.5])).expand(2, 3)
    torch.testing.assert_close(categorical_sample(zero_middle, uniforms=T([0.5, 0.49])), T([2, 0]))


def test_categorical_sample_frequencies() -> None:
    probs = T([0.2, 0.5, 0.3], dtype=torch.float64)
    logits = probs.log().expand(2, 40000, 3)  # two learners, two streams
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    out = categorical_sample(logits, generator=gens)
    freq = torch.stack([(out == k).double().mean(-1) for k in range(3)], -1)
    torch.testing.assert_close(freq, probs.expand(2, 3), rtol=0, atol=0.01)
    with pytest.raises(ValueError, match="exactly one"):
        categorical_sample(logits)
