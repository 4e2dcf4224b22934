"""PPO's equations (Schulman et al. 2017) and generalised advantage estimation (Schulman et al. 2016).

Rollout layout: N learners on leading dims ``*lead``, then time, then environments:
(*lead, T, n_envs). Time is an explicit dimension (−2) because GAE is a recursion over it; the
environments are the batch (−1). ``rewards[..., t, e]`` is the reward of the transition taken from
observation s_t in env e, ``values[..., t, e]`` = V(s_t) under the policy that collected the
rollout, and ``next_values[..., t, e]`` = V(s_{t+1}) on the TRUE next observation: the first
observation of the next step, or, when the episode ended at t, the final observation the
environment returned (gymnasium's ``final_obs``), never the reset observation that replaced it.

After GAE the rollout is flattened to minibatches of shape (*lead, B); the loss functions below
take per-sample tensors of that shape, average over the batch only and return shape ``*lead``.
Log-probabilities come from ``softac.distributions`` (categorical or state-independent Gaussian).
A clip range ε may be a float or a 0-d tensor (an annealed ε changed in place between rollouts,
so a compiled or graph-captured update reads its current value).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "approx_kl",
    "clip_fraction",
    "clipped_surrogate_loss",
    "entropy_loss",
    "gae",
    "lambda_returns",
    "linear_decay",
    "normalize_advantages",
    "ppo_loss",
    "ratio",
    "value_loss",
]


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    episode_end: Tensor,
    gamma: float,
    lam: float,
) -> Tensor:
    """Â_t = δ_t + γλ (1 − e_t) Â_{t+1},  δ_t = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t),  Â_T = 0.

    GAE(γ, λ) of Schulman et al. (2016, Section 3) written as a backward recursion. Two flags, both of
    shape (*lead, T, n_envs), separate the two things an episode end means:
    - ``terminated`` d_t: s_{t+1} is terminal, its value is 0, so δ_t does not bootstrap.
    - ``episode_end`` e_t = terminated or truncated: the next row of the rollout belongs to a new
      episode, so the recursion must not carry Â_{t+1} across it.
    A time-limit truncation (e_t = 1, d_t = 0) thus bootstraps δ_t from V of the real final
    observation and stops there: SB3 gets the same δ by adding γ V(final_obs) to the reward; CleanRL
    treats truncation as termination (δ_t = r_t − V(s_t)), which this deliberately does not do.
    The last row t = T − 1 bootstraps from ``next_values`` (V of the observation after the rollout)
    and has Â_T = 0, as in SB3 and CleanRL. Compute under ``torch.no_grad()``.
    """
    not_terminal = 1.0 - terminated.to(rewards.dtype)
    continues = 1.0 - episode_end.to(rewards.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantage = torch.zeros_like(deltas.select(-2, 0))
    reversed_advantages = []
    for t in reversed(range(deltas.shape[-2])):
        advantage = deltas.select(-2, t) + gamma * lam * continues.select(-2, t) * advantage
        reversed_advantages.append(advantage)
    return torch.stack(reversed_advantages[::-1], dim=-2)


def lambda_returns(advantages: Tensor, values: Tensor) -> Tensor:
    """R_t = Â_t + V(s_t): the TD(λ) return, the value function's regression target."""
    return advantages + values


def normalize_advantages(advantages: Tensor, eps: float = 1e-8) -> Tensor:
    """Â ← (Â − mean_B Â) / (std_B Â + ε), per learner, over the minibatch (last) dimension only.

    As SB3 and CleanRL: per minibatch, Bessel-corrected std, ε = 1e-8 added to the std. A batch of
    one is returned unchanged (its std is undefined; SB3 skips normalisation there too).
    """
    if advantages.shape[-1] < 2:
        return advantages
    mean = advantages.mean(dim=-1, keepdim=True)
    std = advantages.std(dim=-1, keepdim=True)
    return (advantages - mean) / (std + eps)


def ratio(log_prob: Tensor, old_log_prob: Tensor) -> Tensor:
    """r_t(θ) = π_θ(a_t|s_t) / π_θold(a_t|s_t) = exp(log π_θ − log π_θold)."""
    return torch.exp(log_prob - old_log_prob)


def clipped_surrogate_loss(
    log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor, clip_range: float | Tensor
) -> Tensor:
    """−L^CLIP(θ) = −E_B[min(r_t Â_t, clip(r_t, 1 − ε, 1 + ε) Â_t)]  (Schulman et al. 2017, eq. 7).

    The minimum makes the objective a pessimistic bound: moving r_t outside [1 − ε, 1 + ε] in the
    direction that Â_t rewards earns nothing (zero gradient), moving it the other way is penalised.
    """
    r = ratio(log_prob, old_log_prob)
    eps = torch.as_tensor(clip_range, dtype=r.dtype, device=r.device)
    surrogate = torch.minimum(r * advantages, r.clamp(1.0 - eps, 1.0 + eps) * advantages)
    return -surrogate.mean(dim=-1)


def value_loss(
    values: Tensor, returns: Tensor, old_values: Tensor | None = None, clip_range: float | Tensor | None = None
) -> Tensor:
    """E_B[(V_θ(s_t) − R_t)²], or with clipping E_B[max((V_θ − R_t)², (V_clip − R_t)²)].

    V_clip = V_old + clip(V_θ − V_old, −ε, ε) keeps the new value near the one the rollout was
    collected with, the pessimistic form of OpenAI baselines and CleanRL (``clip_vloss``, with ε
    the policy's clip range). (SB3's ``clip_range_vf`` regresses V_clip alone, without the max.)
    Scale: plain MSE, as SB3 (whose ``vf_coef`` the rl-zoo3 presets tune); CleanRL halves it, so
    CleanRL's vf_coef = 0.5 equals vf_coef = 0.25 here.
    """
    unclipped = (values - returns).square()
    if clip_range is None:
        return unclipped.mean(dim=-1)
    if old_values is None:
        raise ValueError("value clipping needs old_values (V of the rollout)")
    eps = torch.as_tensor(clip_range, dtype=values.dtype, device=values.device)
    clipped_values = old_values + (values - old_values).clamp(-eps, eps)
    return torch.maximum(unclipped, (clipped_values - returns).square()).mean(dim=-1)


def entropy_loss(entropy: Tensor) -> Tensor:
    """−E_B[H(π_θ(·|s_t))]: minimising it is the entropy bonus c₂ S[π_θ] of eq. 9."""
    return -entropy.mean(dim=-1)


def ppo_loss(policy_loss: Tensor, value_loss: Tensor, entropy_loss: Tensor, vf_coef: float, ent_coef: float) -> Tensor:
    """L = −L^CLIP + c₁ L^VF − c₂ S  (Schulman et al. 2017, eq. 9, negated to be minimised).

    One loss for a policy and value function trained together (one optimizer, as SB3 and CleanRL).
    """
    return policy_loss + vf_coef * value_loss + ent_coef * entropy_loss


def approx_kl(log_prob: Tensor, old_log_prob: Tensor) -> Tensor:
    """KL[π_θold ‖ π_θ] ≈ E_B[(r − 1) − log r], for logging (and an optional early stop).

    Schulman's unbiased, always non-negative estimator (http://joschu.net/blog/kl-approx.html),
    the one SB3 and CleanRL log. Call under ``torch.no_grad()``.
    """
    log_r = log_prob - old_log_prob
    return (torch.expm1(log_r) - log_r).mean(dim=-1)


def clip_fraction(log_prob: Tensor, old_log_prob: Tensor, clip_range: float | Tensor) -> Tensor:
    """The fraction of samples whose ratio left [1 − ε, 1 + ε]: E_B[|r − 1| > ε], for logging."""
    return ((ratio(log_prob, old_log_prob) - 1.0).abs() > clip_range).to(log_prob.dtype).mean(dim=-1)


def linear_decay(initial: float, progress_remaining: float) -> float:
    """x = x₀ · p, with p = 1 − (fraction of training done): SB3's ``lin_`` schedules (rl-zoo3
    ``learning_rate: lin_1e-3``) and CleanRL's ``anneal_lr``. Used for the learning rate and,
    where a preset asks, the clip range."""
    return initial * max(0.0, min(1.0, progress_remaining))
