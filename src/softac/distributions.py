"""The tanh-squashed Gaussian policy distribution of SAC.

ã_θ(s) = tanh(μ_θ(s) + σ_θ(s) ⊙ ξ),  ξ ~ N(0, I)       (reparameterisation trick)

log π(ã|s) = Σ_i [ log N(u_i; μ_i, σ_i) − log(1 − tanh²(u_i)) ],   u = μ + σ ⊙ ξ

with the numerically stable form of the correction (the seed's ``sample_action_and_compute_log_pi``):

log(1 − tanh²(u)) = 2 (log 2 − u − softplus(−2u))

which, unlike ``log(1 - tanh(u)**2)``, does not become log(0) = −inf when |u| is large.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def tanh_log_abs_det_jacobian(u: Tensor) -> Tensor:
    """log |d tanh(u)/du| = log(1 − tanh²(u)) = 2 (log 2 − u − softplus(−2u)), elementwise."""
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


def squashed_gaussian_log_prob(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log π(tanh(u)|s) = Σ_i [log N(u_i; μ_i, σ_i) − 2 (log 2 − u_i − softplus(−2u_i))], summed on the last dim."""
    z = (u - mean) * torch.exp(-log_std)
    gaussian = -0.5 * z.square() - log_std - _HALF_LOG_2PI
    return (gaussian - tanh_log_abs_det_jacobian(u)).sum(-1)


def squashed_gaussian_rsample(
    mean: Tensor, log_std: Tensor, noise: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Sample ã = tanh(μ + σ ⊙ ξ) with the reparameterisation trick; return (ã, log π(ã|s)).

    ``noise`` is ξ ~ N(0, I); pass it to make the sample reproducible in tests. Since u − μ = σξ,
    log N(u; μ, σ) = −ξ²/2 − log σ − log(2π)/2 exactly, which saves a division on the hot path.
    """
    xi = torch.randn_like(mean) if noise is None else noise
    u = mean + torch.exp(log_std) * xi
    gaussian = -0.5 * xi.square() - log_std - _HALF_LOG_2PI
    log_prob = (gaussian - tanh_log_abs_det_jacobian(u)).sum(-1)
    return torch.tanh(u), log_prob
