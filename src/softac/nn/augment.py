"""DrQ's random shift, on the learner axis, drawn from each learner's generator.

Each image is padded by ``pad`` pixels repeating its border (``replicate``) and cropped back to
its size at a random integer offset: a shift of the content by (dy, dx) ∈ [−pad, pad]², one per
image (Kostrikov et al. 2020, "Image Augmentation Is All You Need", pad 4 on 84×84; DrQ-v2's
``RandomShiftsAug`` does the same with ``grid_sample`` at integer offsets). Here padding and
cropping are one gather with clamped indices (a clamped index is exactly a replicated border), so
it works on uint8 stacks before they become float, and no value is interpolated.

The offsets come from the generator passed for each learner (its stream: ``LearnerRNG.dev``), so
a resumed run, whose generators are restored, draws the same shifts; learner k of a stacked run
draws exactly the shifts a single run with seed k draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def draw_shifts(learners: int, batch: int, generators: Sequence[torch.Generator], pad: int = 4,
                device: torch.device | str = "cpu") -> Tensor:  # fmt: skip
    """(L, B, 2) int64 shifts (dy, dx) in [−pad, pad], learner k's from ``generators[k]``."""
    if len(generators) != learners:
        raise ValueError(f"{len(generators)} generators for {learners} learners")
    out = torch.empty((learners, batch, 2), dtype=torch.int64, device=device)
    for k, gen in enumerate(generators):
        torch.randint(0, 2 * pad + 1, (batch, 2), generator=gen, device=device, out=out[k])
    return out.sub_(pad)


def shift(x: Tensor, shifts: Tensor) -> Tensor:
    """Images ``x`` (L, B, C, H, W), any dtype, moved by ``shifts`` (L, B, 2) = (dy, dx) pixels:
    out[.., i, j] = x[.., clamp(i + dy), clamp(j + dx)], the replicate-padded crop."""
    learners, batch, c, h, w = x.shape
    n = learners * batch
    dy, dx = shifts.reshape(n, 2).unbind(1)
    rows = (torch.arange(h, device=x.device) + dy[:, None]).clamp_(0, h - 1)  # (N, H)
    cols = (torch.arange(w, device=x.device) + dx[:, None]).clamp_(0, w - 1)  # (N, W)
    flat = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, flat).view(learners, batch, c, h, w)


def random_shift(x: Tensor, generators: Sequence[torch.Generator], pad: int = 4) -> Tensor:
    """DrQ's augmentation: ``shift`` by offsets drawn from each learner's generator."""
    return shift(x, draw_shifts(x.shape[0], x.shape[1], generators, pad, x.device))
