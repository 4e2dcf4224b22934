"""SAC for discrete actions (Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings").

With finitely many actions the policy is a categorical π(·|s) = softmax(logits_θ(s)) and each
critic outputs Q_φj(s, ·) for every action at once. Every expectation over actions that continuous
SAC estimates with one sampled ã is then computed exactly as a sum over a (Christodoulou 2019,
Section 4): no reparameterisation trick, and less variance in every loss.

Shapes: N learners on leading dims ``*lead``; the critic ensemble is the dimension right after
them. Per-action critic values are (*lead, n_critics, B, |A|), taken-action values
(*lead, n_critics, B), logits (*lead, B, |A|), per-transition tensors (*lead, B). α is a float or
a tensor of shape ``*lead`` (one temperature per learner). Losses average over the batch only and
return shape ``*lead``.
"""

from __future__ import annotations

import math

from torch import Tensor

from softac.distributions import categorical_log_probs
from softac.losses import common
from softac.losses.common import bootstrap

__all__ = [
    "DEFAULT_TARGET_ENTROPY_SCALE",
    "actor_loss",
    "critic_loss",
    "soft_state_value",
    "soft_target",
    "target_entropy",
    "temperature_loss",
]

DEFAULT_TARGET_ENTROPY_SCALE = 0.7


def target_entropy(n_actions: int, scale: float = DEFAULT_TARGET_ENTROPY_SCALE) -> float:
    """H̄ = scale · log|A|, a fraction of the uniform policy's entropy log|A|.

    Why not the paper's scale: Christodoulou (2019, Section 4) uses 0.98, a nearly uniform target
    (|A| = 2: π ≈ (0.57, 0.43)). When the policy cannot hold that entropy, α grows without bound:
    reported on CartPole (p-christ/Deep-Reinforcement-Learning-Algorithms-with-PyTorch #54;
    toshikwa/sac-discrete.pytorch #10 and #15, where 0.7-0.8 worked) and in CleanRL's review of
    sac_atari (vwxyzjn/cleanrl #270). CleanRL settled on 0.89 for Atari ("improved stability when
    training for more than 100k steps", its docs/rl-algorithms/sac.md). On an episodic task that
    is still too high: dying forfeits the future entropy bonus α·H/(1 − γ), so the Q gap between
    surviving and dying actions grows with α, π ∝ exp(Q/α) does not get more random as α grows,
    and α runs away. Measured with these losses on CartPole-v1 (|A| = 2, softac's preset): with
    0.89, α rose monotonically from 1 to 1.2e4-1.6e4 in 50k steps (3 of 3 seeds); with 0.7
    (H̄ = 0.49 nats, π ≈ (0.81, 0.19); the value used for CartPole by toshikwa #10 and
    twni2016/pomdp-baselines #1) α stayed between 0.94 and 2.4 (5 of 5 seeds), and the greedy
    policy scored 500 at every evaluation from 40k steps on. The default is therefore 0.7: a
    runaway α is the worse failure (the entropy term swamps the reward, then values overflow).
    It is a parameter, as CleanRL advises tuning it per task (0.89 for its Atari settings).
    """
    if n_actions < 2:
        raise ValueError(f"a discrete policy needs at least 2 actions, got {n_actions}")
    return scale * math.log(n_actions)


def _per_learner(alpha: Tensor | float, trailing: int) -> Tensor | float:
    """Give a per-learner α of shape ``*lead`` ``trailing`` singleton dims so it broadcasts."""
    if isinstance(alpha, Tensor) and alpha.ndim > 0:
        return alpha.reshape(*alpha.shape, *([1] * trailing))
    return alpha


def soft_state_value(next_q_target: Tensor, next_logits: Tensor, alpha: Tensor | float) -> Tensor:
    """V(s') = Σ_a' π(a'|s') [min_j Q_φtarg,j(s', a') − α log π(a'|s')].

    ``next_q_target``: (*lead, n_critics, B, |A|); ``next_logits``: (*lead, B, |A|) of the current
    policy at s' (SAC has no target policy). Returns (*lead, B).
    """
    log_pi = categorical_log_probs(next_logits)
    min_q = next_q_target.min(dim=-3).values
    return (log_pi.exp() * (min_q - _per_learner(alpha, 2) * log_pi)).sum(dim=-1)


def soft_target(
    reward: Tensor,
    terminated: Tensor,
    gamma: float | Tensor,
    next_q_target: Tensor,
    next_logits: Tensor,
    alpha: Tensor | float,
) -> Tensor:
    """y = r + γ (1 − d) Σ_a' π(a'|s') [min_j Q_φtarg,j(s', a') − α log π(a'|s')].

    The exact expectation over a' replaces continuous SAC's single sample ã' ~ π(·|s').
    ``d`` is termination only: a time-limit truncation bootstraps from the real final s'.
    """
    return bootstrap(reward, terminated, gamma, soft_state_value(next_q_target, next_logits, alpha))


def critic_loss(q_taken: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Σ_j E_B[(Q_φj(s, a) − y)²] on the actions a taken, per learner.

    ``q_taken``: (*lead, n_critics, B), e.g. ``dqn.chosen_q(q_all, actions.unsqueeze(-2))``;
    ``target``: (*lead, B). The sum over critics gives each critic the gradient of its own MSE
    (disjoint parameters), as ``common.critic_loss`` does for continuous SAC (and, like it, weights
    each row by prioritized replay's ``weight`` (*lead, B) when given).
    """
    return common.critic_loss(q_taken, target, weight)


def actor_loss(logits: Tensor, q_values: Tensor, alpha: Tensor | float) -> Tensor:
    """L(θ) = E_s Σ_a π_θ(a|s) [α log π_θ(a|s) − min_j Q_φj(s, a)].

    ``q_values`` (*lead, n_critics, B, |A|) must carry no gradient (computed under no_grad or with
    detached critic parameters): this loss trains the policy only. The sum over actions is not
    averaged over |A| (CleanRL's ``.mean()`` over (B, |A|) divides the gradient by |A|).
    """
    log_pi = categorical_log_probs(logits)
    min_q = q_values.min(dim=-3).values
    return (log_pi.exp() * (_per_learner(alpha, 2) * log_pi - min_q)).sum(dim=-1).mean(dim=-1)


def temperature_loss(log_alpha: Tensor, entropy: Tensor, target_entropy: float) -> Tensor:
    """J(α) = E_s[−α (Σ_a π(a|s) log π(a|s) + H̄)], written in log α: E_s[−log α · (H̄ − H(π(·|s)))].

    Christodoulou (2019, Section 4): the exact entropy H(π(·|s)) = −Σ_a π log π replaces a
    sampled −log π(a|s). As in ``losses.sac.temperature_loss`` we optimise log α (SB3, CleanRL): α stays
    positive, its gradient H(π) − H̄ does not shrink with α, and α stops moving when the entropy
    equals H̄. ``log_alpha``: shape ``*lead``; ``entropy``: (*lead, B), detached here so that this
    loss can never move the policy.
    """
    return (log_alpha.unsqueeze(-1) * (entropy.detach() - target_entropy)).mean(dim=-1)
