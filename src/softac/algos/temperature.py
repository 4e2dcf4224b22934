"""The soft actor part (SAC, CrossQ): its settings, the entropy temperature α of SAC, CrossQ and
discrete SAC, and the optimizer α shares with the actor."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from softac.config import OffPolicyConfig, _f
from softac.data.replay import Batch
from softac.errors import SoftacError
from softac.optim import adam

if TYPE_CHECKING:  # for the attributes the soft actor part reads from the agent it is mixed into
    from softac.data.replay import ReplayBuffer
    from softac.rng import LearnerRNG


@dataclass(frozen=True)
class SoftActorConfig(OffPolicyConfig):
    """The soft actor part (SAC, CrossQ): a squashed-Gaussian policy with state-dependent log σ and
    the entropy temperature α."""

    autotune_alpha: bool = _f(
        True, "Learn α towards target_entropy (SAC v2). --no-autotune-alpha keeps α fixed at --alpha."
    )
    alpha: float = _f(0.2, "Fixed entropy coefficient α, used when autotune_alpha is off.", "positive")
    alpha_init: float = _f(1.0, "Initial α when autotune_alpha is on (SB3 and CleanRL start at 1).", "positive")
    alpha_lr: float = _f(3e-4, "Adam learning rate of log α.", "positive")
    target_entropy: float | None = _f(None, "Target entropy H̄ for automatic α (default −dim(A)).")
    log_std_min: float = _f(-20.0, "Lower clamp of the policy's state-dependent log σ.")
    log_std_max: float = _f(2.0, "Upper clamp of the policy's state-dependent log σ.")

    def validate(self) -> None:
        super().validate()
        if not self.log_std_min < self.log_std_max:
            raise SoftacError("log_std_min must be smaller than log_std_max")


def actor_optimizer_with_temperature(
    cfg: Any,
    actor_params: list[Tensor],
    learners: int,
    device: torch.device,
    actor_betas: tuple[float, float] = (0.9, 0.999),
) -> tuple[Tensor, torch.optim.Optimizer]:
    """log α, one per learner (``alpha_init``, or the fixed ``alpha``), and the actor's Adam.

    With automatic α, log α is a second parameter group of the actor's optimizer: the actor loss
    and the temperature loss touch disjoint parameters (α is detached in the first, log π in the
    second), so one backward pass and one fused Adam step serve both."""
    init = math.log(cfg.alpha_init if cfg.autotune_alpha else cfg.alpha)
    log_alpha = torch.full((learners,), init, device=device, requires_grad=cfg.autotune_alpha)
    groups: list[dict[str, Any]] = [{"params": actor_params, "lr": cfg.actor_lr, "betas": actor_betas}]
    if cfg.autotune_alpha:
        # α keeps Adam's default betas whatever the actor's (CrossQ's β₁ = 0.5 is the networks'; SB3's
        # and sb3-contrib's temperature optimizer is a plain Adam).
        groups.append({"params": [log_alpha], "lr": cfg.alpha_lr, "betas": (0.9, 0.999)})
    return log_alpha, adam(groups, cfg.actor_lr, device)


class SoftActor:
    """The soft actor's acting and drawing, mixed into SAC and CrossQ (listed before their agent base
    so these are the methods used): α of the first learner, the exploration noise ξ of
    ã = tanh(μ + σ ⊙ ξ), and each update's draws, a replay batch and the noise (ξ′ for ã′ ~ π(·|s′),
    ξ for ã ~ π(·|s)) in the learners' random streams, in that order (the order is part of the
    exact-resume and stacked-equals-single contracts)."""

    log_alpha: Tensor
    learners: int
    device: torch.device
    _noise: Tensor
    if TYPE_CHECKING:
        rng: LearnerRNG
        buffer: ReplayBuffer
        config: Any
        spec: Any

    @property
    def alpha(self) -> float:
        """α of the first learner (``log_alpha.exp()`` holds every learner's)."""
        return float(self.log_alpha[0].detach().exp())

    def _exploration_noise(self, rows: int) -> Tensor:
        """ξ ~ N(0, I) of ã = tanh(μ + σ ⊙ ξ)."""
        return self.rng.normal_(torch.empty((self.learners, rows, self.spec.act_dim), device=self.device))

    def _draw(self, phase: Hashable) -> tuple[Batch, Tensor]:
        batch = self.buffer.sample(self.config.batch_size, self.rng)
        return batch, self.rng.normal_(self._noise)  # ξ' for ã' ~ π(·|s') and ξ for ã ~ π(·|s)
