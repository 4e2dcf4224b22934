"""Policy distributions: the tanh-squashed Gaussian of SAC, and those of PPO and discrete SAC.

The tanh-squashed Gaussian of SAC:

ã_θ(s) = tanh(μ_θ(s) + σ_θ(s) ⊙ ξ),  ξ ~ N(0, I)       (reparameterisation trick)

log π(ã|s) = Σ_i [ log N(u_i; μ_i, σ_i) − log(1 − tanh²(u_i)) ],   u = μ + σ ⊙ ξ

with the numerically stable form of the correction (the seed's ``sample_action_and_compute_log_pi``):

log(1 − tanh²(u)) = 2 (log 2 − u − softplus(−2u))

which, unlike ``log(1 - tanh(u)**2)``, does not become log(0) = −inf when |u| is large.

Below it: the untransformed diagonal Gaussian with a state-independent log σ (PPO on Box
actions) and the categorical distribution from logits (PPO and discrete SAC on Discrete actions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

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


# -- Random draws under the caller's control ----------------------------------------------------
# The core gives every learner its own random stream. Sampling below therefore never touches the
# global RNG: it takes pre-drawn noise/uniforms, or a generator, or one generator per learner.
Generators = torch.Generator | Sequence[torch.Generator]


def draw(
    shape: Sequence[int],
    generator: Generators,
    kind: Literal["normal", "uniform"],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """ξ ~ N(0, I) or u ~ U[0, 1) of ``shape``, from ``generator``.

    A sequence of generators draws slice i of the leading dimension from generator i (one stream
    per learner: learner i's samples do not depend on how many learners are stacked beside it).
    Each generator must live on ``device`` (a CUDA draw needs a CUDA generator).
    """
    fn = torch.randn if kind == "normal" else torch.rand
    if isinstance(generator, torch.Generator):
        return fn(tuple(shape), generator=generator, dtype=dtype, device=device)
    if len(generator) != shape[0]:
        raise ValueError(f"got {len(generator)} generators for a leading dimension of {shape[0]}")
    return torch.stack([fn(tuple(shape[1:]), generator=g, dtype=dtype, device=device) for g in generator])


# -- Diagonal Gaussian with a state-independent log σ (PPO on Box actions) ----------------------
# PPO (Schulman et al. 2017, as in Spinning Up, SB3 and CleanRL) parameterises log σ as a free
# vector, not a network output: the specification's remark that "in PPO we represent the log std
# devs with state-independent parameter vectors", unlike SAC's state-dependent log σ_θ(s).
#
# Actions: a ~ N(μ_θ(s), σ²) is NOT squashed. As SB3 and CleanRL do, the *unclipped* sample is what
# the rollout stores and what log π(a|s) is evaluated on (so the probability ratio of the update
# refers to the action the policy really drew); only the copy sent to the environment is clipped
# to the box (`clip_action`). Inside softac that box is [−1, 1] (DESIGN.md principle 4); the one
# place that maps [−1, 1] to the environment's bounds is affine, so clipping here equals SB3's
# clipping to [low, high]. The environment therefore sees clip(a) while the gradient is that of
# the Gaussian: the bias of this (well known) shortcut is accepted for parity with SB3/CleanRL.


def diag_gaussian_log_prob(action: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """log π(a|s) = Σ_i [−(a_i − μ_i)² / (2σ_i²) − log σ_i − log(2π)/2], summed on the last dim.

    ``log_std`` broadcasts against ``mean``: a learner-stacked parameter of shape (*lead, A) is
    passed as ``log_std.unsqueeze(-2)`` against a mean of shape (*lead, B, A).
    """
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - _HALF_LOG_2PI).sum(-1)


def diag_gaussian_entropy(mean: Tensor, log_std: Tensor) -> Tensor:
    """H(N(μ, diag σ²)) = Σ_i (log σ_i + ½ log(2πe)), one value per row of ``mean`` (shape mean[..., 0]).

    It does not depend on μ; ``mean`` only gives the per-sample shape, so that the entropy bonus
    averages over the batch like every other per-sample term.
    """
    return (log_std + _HALF_LOG_2PI + 0.5).expand_as(mean).sum(-1)


def diag_gaussian_sample(
    mean: Tensor, log_std: Tensor, generator: Generators | None = None, noise: Tensor | None = None
) -> Tensor:
    """a = μ + σ ⊙ ξ, ξ ~ N(0, I) given as ``noise`` or drawn from ``generator`` (exactly one of them)."""
    if (noise is None) == (generator is None):
        raise ValueError("pass exactly one of noise and generator")
    if noise is None:
        assert generator is not None
        noise = draw(mean.shape, generator, "normal", mean.dtype, mean.device)
    return mean + torch.exp(log_std) * noise


def clip_action(action: Tensor, low: float = -1.0, high: float = 1.0) -> Tensor:
    """The action sent to the environment: clip(a, a_Low, a_High). Store the unclipped ``a``."""
    return action.clamp(low, high)


# -- Categorical from logits (PPO and SAC on Discrete actions) ----------------------------------
# Logits have shape (*lead, B, |A|); the action dimension is the last. log π comes from
# log_softmax (log-sum-exp with the max subtracted) rather than log(softmax): the latter is
# log(0) = −inf as soon as one probability underflows, the former stays finite.


def categorical_log_probs(logits: Tensor) -> Tensor:
    """log π(·|s) = logits − logsumexp(logits), for every action."""
    return F.log_softmax(logits, dim=-1)


def categorical_probs(logits: Tensor) -> Tensor:
    """π(·|s) = softmax(logits)."""
    return F.softmax(logits, dim=-1)


def categorical_log_prob(logits: Tensor, actions: Tensor) -> Tensor:
    """log π(a|s) of the chosen actions: ``actions`` are integer indices of shape logits[..., 0]."""
    return categorical_log_probs(logits).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """H(π(·|s)) = −Σ_a π(a|s) log π(a|s); an action with logit −inf (masked) contributes 0, not NaN.

    The −inf log-probabilities are replaced by 0 before the product (0 · 0) rather than the NaN of
    0 · (−inf) being masked afterwards: ``torch.where`` after the fact would still send NaN gradients.
    """
    log_p = categorical_log_probs(logits)
    return -(log_p.exp() * log_p.masked_fill(torch.isneginf(log_p), 0.0)).sum(-1)


def categorical_sample(
    logits: Tensor, generator: Generators | None = None, uniforms: Tensor | None = None
) -> Tensor:
    """a ~ π(·|s) by inverting the CDF: a = #{k : Σ_{j≤k} π(j|s) ≤ u}, u ~ U[0, 1), one u per row.

    ``uniforms`` (shape logits[..., 0]) or ``generator``: exactly one. One uniform per sample (not
    |A| as the Gumbel-max trick needs) keeps pre-drawn streams small and tests hand-checkable.
    """
    if (uniforms is None) == (generator is None):
        raise ValueError("pass exactly one of uniforms and generator")
    if uniforms is None:
        assert generator is not None
        uniforms = draw(logits.shape[:-1], generator, "uniform", logits.dtype, logits.device)
    cdf = categorical_probs(logits).cumsum(-1)
    # the last CDF entry may round to just below 1: clamp so that u close to 1 stays a valid action
    return (cdf <= uniforms.unsqueeze(-1)).sum(-1).clamp(max=logits.shape[-1] - 1)


def categorical_mode(logits: Tensor) -> Tensor:
    """The most probable action argmax_a π(a|s) (deterministic evaluation)."""
    return logits.argmax(-1)
