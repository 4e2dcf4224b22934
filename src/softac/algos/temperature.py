"""The entropy temperature α of SAC and discrete SAC, and the optimizer it shares with the actor."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from softac.optim import adam


def actor_optimizer_with_temperature(
    cfg: Any, actor_params: list[Tensor], learners: int, device: torch.device
) -> tuple[Tensor, torch.optim.Optimizer]:
    """log α, one per learner (``alpha_init``, or the fixed ``alpha``), and the actor's Adam.

    With automatic α, log α is a second parameter group of the actor's optimizer: the actor loss
    and the temperature loss touch disjoint parameters (α is detached in the first, log π in the
    second), so one backward pass and one fused Adam step serve both."""
    init = math.log(cfg.alpha_init if cfg.autotune_alpha else cfg.alpha)
    log_alpha = torch.full((learners,), init, device=device, requires_grad=cfg.autotune_alpha)
    groups: list[dict[str, Any]] = [{"params": actor_params, "lr": cfg.actor_lr}]
    if cfg.autotune_alpha:
        groups.append({"params": [log_alpha], "lr": cfg.alpha_lr})
    return log_alpha, adam(groups, cfg.actor_lr, device)
