"""Acting from images: the frame stacks the policy reads, and the row it reads them in.

An observation with an image key (``softac.obs``: a uint8 Box of 2 or 3 dimensions, or of 4 when
``FrameStackObservation`` stacked it) reaches the policy as one float32 row:

    [ the vector keys' columns (dim) | the last K frames, channel-first, oldest first (K·C·H·W) ]

so acting, evaluation, ``predict`` and SB3's ``evaluate_policy`` keep the one-row interface every
policy has, and the encoder (``softac.nn.pixel_encoder``) splits the row back. The replay buffer
never stores this row: its vector part goes to the float32 rows, its newest frame to the uint8
frame ring (``softac.data.frames``), each frame once; an update's batch is packed the same way.

Frame stacking is softac's own (``--frame-stack K``): the environment gives single frames and the
stack holds its last K; at an episode's first step the first frame fills the stack, as
``gymnasium.wrappers.FrameStackObservation`` pads (``padding_type="reset"``). An environment
already wrapped in ``FrameStackObservation`` gives 4-D stacks: each is one "frame" of K·C channels
here, stored as given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac.data.frames import image_layout
from softac.errors import SoftacError
from softac.obs import ObsLayout

MIN_SIDE = 15  # the DrQ-v2 encoder's 3×3 convolutions (stride 2, then 1, 1, 1) leave one pixel of 15


@dataclass(frozen=True)
class PixelSpec:
    """How the image key's frames become channel-first stacks, and the acting row's width."""

    shape: tuple[int, ...]  # the environment's frame, as its space says
    chw: tuple[int, int, int]  # one stored frame, channel-first (a 4-D stack: its K₀·C channels)
    channel_last: bool
    stack: int  # K: frames the policy sees
    dim: int  # the vector columns before the pixels

    @classmethod
    def of(cls, layout: ObsLayout, stack: int, env_id: str = "the environment") -> PixelSpec:
        key = layout.image
        if key is None:
            raise ValueError("the layout has no image key")
        shape = key.shape
        try:
            if len(shape) == 4:  # FrameStackObservation's (K₀, H, W, C) or (K₀, C, H, W)
                (c, h, w), last = image_layout(shape[1:])
                chw = (shape[0] * c, h, w)
            else:
                chw, last = image_layout(shape)
        except ValueError as exc:
            raise SoftacError(f"{env_id}'s image {key.name}: {exc}; give frames as (H, W, C) or (C, H, W) "
                              "with the channels the smallest axis") from None  # fmt: skip
        if min(chw[1:]) < MIN_SIDE:
            raise SoftacError(f"{env_id}'s image {key.name} is {chw[1]}×{chw[2]}, too small for the encoder's four 3×3 "
                              f"convolutions (at least {MIN_SIDE}×{MIN_SIDE}): render larger, or resize with "
                              "gymnasium.wrappers.ResizeObservation")  # fmt: skip
        return cls(shape, chw, last, stack, layout.dim)

    @property
    def frame_size(self) -> int:
        return math.prod(self.chw)

    @property
    def stacked_chw(self) -> tuple[int, int, int]:
        """What the encoder reads: K frames' channels, oldest first."""
        c, h, w = self.chw
        return (self.stack * c, h, w)

    @property
    def width(self) -> int:
        """The acting row: the vector columns and K frames."""
        return self.dim + self.stack * self.frame_size

    def to_chw(self, frames: np.ndarray) -> np.ndarray:
        """Frames ``(n, *shape)`` in the environment's form → ``(n, *chw)`` uint8, contiguous."""
        n = frames.shape[0]
        if len(self.shape) == 2:
            return np.ascontiguousarray(frames[:, None])
        if len(self.shape) == 4:
            x = np.moveaxis(frames, -1, 2) if self.channel_last else frames
            return np.ascontiguousarray(x).reshape(n, *self.chw)
        return np.ascontiguousarray(np.moveaxis(frames, -1, 1) if self.channel_last else frames)

    def pack(self, vec: Tensor, images: Tensor) -> Tensor:
        """Vector rows (L, B, dim) and image stacks (L, B, K·C, H, W) → rows (L, B, width) float32."""
        flat = images.reshape(*images.shape[:2], -1).float()
        return torch.cat([vec, flat], dim=-1) if self.dim else flat

    def unpack(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Rows (..., width) → (vector columns (..., dim), image stacks (..., K·C, H, W))."""
        return x[..., : self.dim], x[..., self.dim :].reshape(*x.shape[:-1], *self.stacked_chw)


class FrameStacks:
    """The last K frames of each of ``n`` environments (n, K, C, H, W) uint8, for acting."""

    def __init__(self, spec: PixelSpec, n: int) -> None:
        self.spec = spec
        self.stacks = np.zeros((n, spec.stack, *spec.chw), dtype=np.uint8)

    def reset(self, mask: np.ndarray, frames: np.ndarray) -> None:
        """Episodes start where ``mask``: their first frame (``frames`` (n, *chw)) fills the stack."""
        self.stacks[mask] = frames[mask][:, None]

    def push(self, frames: np.ndarray) -> None:
        """Every environment's newest frame (n, *chw) enters its stack; the oldest leaves."""
        if self.spec.stack > 1:
            self.stacks[:, :-1] = self.stacks[:, 1:]
        self.stacks[:, -1] = frames

    def push_one(self, k: int, frame: np.ndarray) -> None:
        """Environment k's newest frame (*chw) enters its stack alone (evaluation steps one by one)."""
        stack = self.stacks[k]
        if self.spec.stack > 1:
            stack[:-1] = stack[1:].copy()
        stack[-1] = frame

    def row(self, k: int, vec: np.ndarray) -> np.ndarray:
        """Environment k's acting row (width,): its vector columns ``vec`` (dim,) and its stack."""
        out = np.empty(self.spec.width, dtype=np.float32)
        out[: self.spec.dim] = vec
        out[self.spec.dim :] = self.stacks[k].reshape(-1)
        return out

    def rows(self, vec: np.ndarray) -> np.ndarray:
        """Acting rows (n, width): the vector rows ``vec`` (n, dim) and the stacks, as float32."""
        n = self.stacks.shape[0]
        out = np.empty((n, self.spec.width), dtype=np.float32)
        out[:, : self.spec.dim] = vec
        out[:, self.spec.dim :] = self.stacks.reshape(n, -1)
        return out


class Observer:
    """Environment observations → the policy's rows, for ``n`` environments stepped one by one
    (evaluation): a flattened row, or with an image key the row with the environment's stack."""

    def __init__(self, layout: ObsLayout, pixels: PixelSpec | None, n: int) -> None:
        self.layout, self.pixels = layout, pixels
        self.stacks = FrameStacks(pixels, n) if pixels is not None else None

    def row(self, k: int, obs: Any, first: bool) -> np.ndarray:
        """Environment k's observation as its row; ``first``: it starts an episode. Raises
        ``ValueError`` naming the key for a value that does not fit the space."""
        vec = self.layout.flatten(obs, ())
        if self.stacks is None or self.pixels is None:
            return vec
        frame = self.pixels.to_chw(self.layout.frames(obs, ())[None])[0]
        if first:
            self.stacks.stacks[k] = frame[None]  # the first frame fills the stack (``FrameStacks.reset``)
        else:
            self.stacks.push_one(k, frame)
        return self.stacks.row(k, vec)


def predict_rows(layout: ObsLayout, pixels: PixelSpec, observation: Any) -> np.ndarray:
    """``predict``'s observation with an image key → rows (width,) or (B, width). With
    ``--frame-stack K`` > 1 the image is the last K frames, oldest first: ``(K, *frame)`` (or
    ``(B, K, *frame)``), as ``FrameStackObservation`` would give it; K = 1 takes the frame itself."""
    key = layout.image
    assert key is not None
    image = np.asarray(observation[key.path] if layout.is_dict and isinstance(observation, Mapping) else observation)
    own = len(key.shape) + (1 if pixels.stack > 1 else 0)
    if image.ndim not in (own, own + 1):
        need = (pixels.stack, *key.shape) if pixels.stack > 1 else key.shape
        raise SoftacError(f"the image {key.name} has shape {image.shape}; this policy takes {need} (or a batch "
                          f"of them){' — the last frames, oldest first' if pixels.stack > 1 else ''}")  # fmt: skip
    batch = image.shape[: image.ndim - own]
    b = int(np.prod(batch, dtype=np.int64))
    frames = image.reshape(b * pixels.stack, *key.shape)
    if frames.dtype != np.uint8:
        raise SoftacError(f"the image {key.name} is {frames.dtype}; this policy takes uint8 frames (0–255)")
    try:
        vec = layout.flatten(observation, batch) if layout.dim else np.zeros((*batch, 0), dtype=np.float32)
    except ValueError as exc:
        raise SoftacError(f"{exc}; this policy takes observations of {layout.describe()}") from None
    chw = pixels.to_chw(frames).reshape(b, -1).astype(np.float32)
    rows = np.concatenate([np.asarray(vec, dtype=np.float32).reshape(b, layout.dim), chw], axis=1)
    if not np.isfinite(rows[:, : layout.dim]).all():
        raise SoftacError("observation holds non-finite values (NaN/inf); the policy's action would be NaN")
    return rows.reshape(*batch, pixels.width)
