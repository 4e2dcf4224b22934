"""Replay of observations with an image key: the vector keys, actions, rewards and flags in the
float32 rows of ``ReplayBuffer``, every frame once in the uint8 ring of ``FrameBuffer``.

Both are written in the same order (a dropped step in neither), so transition i sits at position
i mod N in each and one draw of positions indexes both: ``FrameBuffer.sample_indices`` draws them
(its sampleable range is the newest transitions whose frames survive, ``softac.data.frames``),
the rows and the K + 1 frames are gathered at them, and the batch carries s and s' as the policy's
rows ``[vector | K frames]`` (``softac.pixels``). With ``augment="shift"`` each image stack of s
and of s' is shifted by its own offset (DrQ: independent shifts of the observation and the next
observation), drawn from the learner's stream after the positions, so a resumed run draws the
same shifts and learner k draws the shifts of the single run with seed k.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac.data.frames import FrameBuffer
from softac.data.replay import Batch, ReplayBuffer
from softac.nn.augment import shift
from softac.pixels import PixelSpec
from softac.rng import LearnerRNG

PAD = 4  # DrQ's and DrQ-v2's pad for 84×84 frames (Kostrikov et al. 2020; Yarats et al. 2021)


class PixelReplay(ReplayBuffer):
    def __init__(self, learners: int, capacity: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu",
                 *, pixels: PixelSpec, envs: int = 1, augment: str = "none") -> None:  # fmt: skip
        super().__init__(learners, capacity, obs_dim, act_dim, device)
        self.pixels, self.augment = pixels, augment
        self.frames = FrameBuffer(learners, capacity, pixels.chw, pixels.stack, envs, channel_last=False,
                                  device=device)  # fmt: skip
        self._shift_u: Tensor | None = None

    def add_frames(self, frames: np.ndarray, next_frames: np.ndarray, done: np.ndarray, ok: np.ndarray) -> None:
        """One step's frames (L, n, *chw) of s and s', after the same step's rows were added."""
        for k in range(self.learners):
            self.frames.add(k, frames[k], next_frames[k], done[k], ok[k])
        self.frames.sync_size()

    def cut(self) -> None:
        """The collector starts new episodes (a resume): no stack reaches back into the old ones."""
        for k in range(self.learners):
            self.frames.cut(k)

    def sample(self, batch_size: int, rng: LearnerRNG) -> Batch:
        idx = self.frames.sample_indices(batch_size, rng)
        images, next_images = self.frames.gather(idx)
        if self.augment == "shift":
            images, next_images = self._shift(images, rng, 0), self._shift(next_images, rng, 1)
        batch = self.gather(idx.clone())
        return dataclasses.replace(batch, obs=self.pixels.pack(batch.obs, images),
                                   next_obs=self.pixels.pack(batch.next_obs, next_images))  # fmt: skip

    def _shift(self, images: Tensor, rng: LearnerRNG, which: int) -> Tensor:
        """DrQ's random shift by offsets (dy, dx) ∈ [−4, 4]² from the learners' streams."""
        learners, batch = images.shape[:2]
        if self._shift_u is None or self._shift_u.shape[2] != batch:
            self._shift_u = torch.empty((2, learners, batch, 2), dtype=torch.float64, device=self.device)
        u = rng.uniform_(self._shift_u[which])
        offsets = (u * (2 * PAD + 1)).long().clamp_(max=2 * PAD).sub_(PAD)
        return shift(images, offsets)

    def __len__(self) -> int:
        return len(self.frames)

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self, k: int) -> dict[str, Tensor]:
        return {**super().state_tensors(k), **self.frames.state_tensors(k)}

    def targets(self, k: int) -> dict[str, Tensor]:
        return {**super().targets(k), **self.frames.targets(k)}

    def frame_meta(self, k: int) -> dict[str, Any]:
        return {"frames": self.frames.fill(k)}

    def load_frame_meta(self, k: int, meta: dict[str, Any]) -> None:
        fill = meta.get("frames")
        if not (isinstance(fill, dict) and set(fill) == {"size", "added", "written"}
                and all(isinstance(v, int) and not isinstance(v, bool) for v in fill.values())):  # fmt: skip
            raise ValueError(f"the frame counters {fill!r} are damaged")
        added = fill["added"]
        if added % self.capacity != int(self.cursor[k]) or min(added, self.capacity) != int(self.size[k]):
            raise ValueError(f"the frame ring ({added} transitions) and the rows ({int(self.size[k])}, next at "
                             f"{int(self.cursor[k])}) disagree")  # fmt: skip
        self.frames.set_fill(k, fill["size"], added, fill["written"])
