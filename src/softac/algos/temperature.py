"""The soft actor part (SAC, CrossQ): its settings, the entropy temperature α of SAC, CrossQ and
discrete SAC, and the optimizer α shares with the actor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from softac.config import OffPolicyConfig, _f
from softac.errors import SoftacError
from softac.optim import adam


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
