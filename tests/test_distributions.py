"""The tanh-squashed Gaussian against torch.distributions, and its numerical stability."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from softac.distributions import (
    squashed_gaussian_log_prob,
    squashed_gaussian_rsample,
    tanh_log_abs_det_jacobian,
)


def _reference(mean: torch.Tensor, log_std: torch.Tensor) -> TransformedDistribution:
    return TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])


def _inputs(seed: int, batch: int = 256, dim: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    log_std = torch.empty(batch, dim, dtype=torch.float64).uniform_(-1.5, 0.3, generator=g)
    noise = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    return mean, log_std, noise


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_prob_matches_torch_transformed_distribution(seed: int) -> None:
    mean, log_std, noise = _inputs(seed)
    u = (mean + log_std.exp() * noise).clamp(-4.0, 4.0)  # moderate: atanh(tanh(u)) stays accurate
    ours = squashed_gaussian_log_prob(u, mean, log_std)
    ref = _reference(mean, log_std).log_prob(torch.tanh(u)).sum(-1)
    assert ours.shape == (mean.shape[0],)
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_rsample_matches_torch_transformed_distribution(seed: int) -> None:
    mean, log_std, noise = _inputs(seed)
    noise = noise.clamp(-2.5, 2.5)
    action, log_prob = squashed_gaussian_rsample(mean, log_std, noise)
    u = mean + log_std.exp() * noise
    torch.testing.assert_close(action, torch.tanh(u), rtol=0, atol=1e-15)
    ref = _reference(mean, log_std).log_prob(action).sum(-1)
    torch.testing.assert_close(log_prob, ref, rtol=1e-7, atol=1e-7)
    # rsample's shortcut (log N from ξ directly) agrees with the log-prob of the same u
    torch.testing.assert_close(log_prob, squashed_gaussian_log_prob(u, mean, log_std), rtol=1e-12, atol=1e-12)


def test_rsample_is_reparameterised() -> None:
    """Gradients flow to μ and log σ through the sample (the reparameterisation trick)."""
    mean, log_std, noise = _inputs(3, batch=8)
    mean.requires_grad_(True)
    log_std.requires_grad_(True)
    action, log_prob = squashed_gaussian_rsample(mean, log_std, noise)
    (action.sum() + log_prob.sum()).backward()
    assert mean.grad is not None and log_std.grad is not None
    assert mean.grad.abs().sum() > 0 and log_std.grad.abs().sum() > 0


def test_rsample_without_noise_draws_standard_normal() -> None:
    torch.manual_seed(0)
    mean = torch.zeros(20000, 1, dtype=torch.float64)
    log_std = torch.zeros(20000, 1, dtype=torch.float64)
    action, _ = squashed_gaussian_rsample(mean, log_std)
    u = torch.atanh(action.clamp(-1 + 1e-12, 1 - 1e-12))
    assert abs(float(u.mean())) < 0.05
    assert abs(float(u.std()) - 1.0) < 0.05


@pytest.mark.parametrize("u_value", [15.0, -15.0, 30.0, -30.0, 100.0])
def test_log_prob_is_finite_for_large_pre_tanh_values(u_value: float) -> None:
    u = torch.full((4, 2), u_value, dtype=torch.float32)
    mean = torch.full_like(u, u_value)
    log_std = torch.zeros_like(u)
    naive = torch.log(1 - torch.tanh(u) ** 2)
    assert torch.isinf(naive).all(), "the naive correction must underflow here (else this test tests nothing)"
    ours = squashed_gaussian_log_prob(u, mean, log_std)
    assert torch.isfinite(ours).all()
    # log(1 − tanh²(u)) ≈ log 4 − 2|u| for large |u|; so each dim contributes −log N(0) + 2|u| − log 4
    expected_dim = -0.5 * math.log(2 * math.pi) + 2 * abs(u_value) - math.log(4.0)
    torch.testing.assert_close(ours, torch.full((4,), 2 * expected_dim), rtol=1e-5, atol=1e-3)
    _, sampled = squashed_gaussian_rsample(mean, log_std, torch.zeros_like(u))
    assert torch.isfinite(sampled).all()


def test_jacobian_term_exact_against_float64_formula() -> None:
    u = torch.linspace(-8, 8, 101, dtype=torch.float64)
    expected = torch.log1p(-(torch.tanh(u) ** 2))
    torch.testing.assert_close(tanh_log_abs_det_jacobian(u), expected, rtol=1e-9, atol=1e-12)
