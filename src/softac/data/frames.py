"""Replay storage for image observations: every frame stored once, as uint8.

Storing each transition's stacked observation and its next observation (SB3 without
``optimize_memory_usage``) keeps 2K copies of every frame for a K-deep stack; storing the stacks
alone (DrQ-v2, SB3 with the option) keeps K. Here a frame is written once and a transition holds
K + 1 *frame numbers*: the K frames of its observation s (oldest first) and the frame of s'.

Layout, per learner k:

- ``frames`` (L, F, C, H, W) uint8: a ring of frames, channel-first. An environment that gives
  channel-last frames (H, W, C) is transposed when the frame is written (the copy into the ring
  happens anyway); a 2-D frame (H, W) is one channel. Which axis holds the channels follows
  SB3's ``is_image_space_channels_first`` (the smallest axis) unless ``channel_last`` says.
- ``index`` (L, N, K + 1) int64: transition i's frame numbers, counted from the learner's first
  frame (never wrapped), so that a frame's survival in the ring can be told: number f lives in
  slot f mod F while f ≥ written − F.

Writing: a transition writes exactly one frame, its s' (the episode's real final frame for a
terminated or truncated step, as the collector passes it); the first transition of an episode
also writes its s. The next transition of the same environment reuses that s' as its s: no
second copy. The K-deep stack is rebuilt from the environment's last K frame numbers and never
reaches across an episode start: the first frame is repeated, as
``gymnasium.wrappers.FrameStackObservation`` pads (its default ``padding_type="reset"``). An
environment already wrapped in ``FrameStackObservation`` is stored with K = 1, its stacks as given.

Overwriting: an episode of T steps writes T + 1 frames for T transitions, so the frame ring holds
F = N + ⌈N/20⌉ + 2·envs·K frames by default: every transition in the ring keeps its frames while
episodes last 20 steps or more (1.05 frames per transition). With shorter episodes the frame ring
wraps first, and a transition whose oldest frame was overwritten is no longer sampleable: the
sampleable transitions are always the newest ``size`` ones (so sampling stays one formula), and
the oldest are dropped past the newest one that lost a frame. (SB3's ``optimize_memory_usage``
has the same kind of edge: its next observation is the following row, overwritten when the ring
wraps.) A per-learner deque of suffix minima of the oldest frame number finds that boundary in
amortised O(1) per transition.

Sampling reuses ``ReplayBuffer``'s scheme: u ~ U[0, 1) in float64 from each learner's stream, and
position (start + ⌊u · size⌋) mod N with the fill level and start held as tensors. The positions
follow the same order as a ``ReplayBuffer`` fed the same transitions, so one draw indexes both the
float32 rows (rewards, actions, vector keys) and the frames.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from softac.rng import LearnerRNG


def image_layout(shape: Sequence[int], channel_last: bool | None = None) -> tuple[tuple[int, int, int], bool]:
    """((C, H, W), channel_last) for a frame of the environment's ``shape``: 2-D is one channel;
    3-D follows ``channel_last`` or else SB3's rule (the smallest axis holds the channels)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, shape[0], shape[1]), False
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"an image frame has 2 or 3 positive dimensions, not shape {shape}")
    if channel_last is None:
        smallest = int(np.argmin(shape))
        if smallest == 1:
            raise ValueError(f"cannot tell the channel axis of frames of shape {shape}: pass channel_last")
        channel_last = smallest == 2
    chw = (shape[2], shape[0], shape[1]) if channel_last else (shape[0], shape[1], shape[2])
    return chw, channel_last


def default_frame_capacity(capacity: int, stack: int, envs: int = 1) -> int:
    """N + ⌈N/20⌉ + 2·envs·K: see the module docstring (no transition loses a frame to the ring
    while episodes last ≥ 20 steps)."""
    return capacity + math.ceil(capacity / 20) + 2 * envs * stack


def frame_buffer_bytes(learners: int, capacity: int, frame_shape: Sequence[int], stack: int, envs: int = 1,
                       frame_capacity: int | None = None) -> int:  # fmt: skip
    """Bytes a ``FrameBuffer`` allocates: the uint8 frame ring and the int64 frame numbers."""
    frames = frame_capacity if frame_capacity is not None else default_frame_capacity(capacity, stack, envs)
    return learners * (frames * math.prod(frame_shape) + capacity * (stack + 1) * 8)


class FrameBuffer:
    def __init__(
        self,
        learners: int,
        capacity: int,
        frame_shape: Sequence[int],
        stack: int = 1,
        envs: int = 1,
        channel_last: bool | None = None,
        frame_capacity: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if stack < 1 or capacity < 1 or envs < 1:
            raise ValueError(f"stack {stack}, capacity {capacity} and envs {envs} must be positive")
        self.chw, self.channel_last = image_layout(frame_shape, channel_last)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.learners, self.capacity, self.stack, self.envs = learners, capacity, stack, envs
        self.frame_capacity = frame_capacity if frame_capacity is not None else default_frame_capacity(
            capacity, stack, envs)  # fmt: skip
        if self.frame_capacity < 2 * envs + stack:  # one step's writes must not overwrite its own stacks
            raise ValueError(f"a frame ring of {self.frame_capacity} cannot hold one step of {envs} environments")
        self.device = torch.device(device)
        self.frames = torch.empty((learners, self.frame_capacity, *self.chw), dtype=torch.uint8, device=self.device)
        self.index = torch.empty((learners, capacity, stack + 1), dtype=torch.int64, device=self.device)
        self.added = np.zeros(learners, dtype=np.int64)  # transitions ever added, per learner
        self.size = np.zeros(learners, dtype=np.int64)  # the newest ``size`` of them are sampleable
        self.written = np.zeros(learners, dtype=np.int64)  # frames ever written, per learner
        # Each environment's current episode: its last K frame numbers (oldest first) and whether
        # one is open (0: the next transition starts an episode and writes its s).
        self.history = np.zeros((learners, envs, stack), dtype=np.int64)
        self.open = np.zeros((learners, envs), dtype=np.int64)
        # (transition number, oldest frame number) of the suffix minima, oldest first.
        self._minima: list[deque[tuple[int, int]]] = [deque() for _ in range(learners)]
        self.size_t = torch.zeros((learners, 1), dtype=torch.float64, device=self.device)
        self.start_t = torch.zeros((learners, 1), dtype=torch.int64, device=self.device)
        self._offsets = torch.arange(learners, device=self.device).unsqueeze(1)
        self._u: Tensor | None = None

    def __len__(self) -> int:
        return int(self.size.min())

    # -- writing ----------------------------------------------------------------------------
    def _frames_in(self, x: np.ndarray, n: int, what: str) -> np.ndarray:
        if x.dtype != np.uint8 or x.shape != (n, *self.frame_shape):
            raise ValueError(f"{what} must be uint8 of shape {(n, *self.frame_shape)}, got {x.dtype} {x.shape}")
        return np.moveaxis(x, -1, 1) if self.channel_last else x

    def add(self, k: int, obs: np.ndarray, next_obs: np.ndarray, done: np.ndarray, ok: np.ndarray | None = None
            ) -> None:  # fmt: skip
        """One step of learner k's ``envs`` environments: ``obs``/``next_obs`` (envs, *frame_shape)
        hold each environment's newest frame of s and s', ``done`` (envs,) that the episode ended
        (terminated or truncated). ``obs`` is read only at an episode's first step: later, s is the
        previous step's s' already stored. ``ok`` False drops an environment's step and ends its
        episode, as the collector does with a non-finite step. Call ``sync_size`` after the last
        ``add``."""
        n = self.envs
        obs, next_obs = self._frames_in(obs, n, "obs"), self._frames_in(next_obs, n, "next_obs")
        keep = np.ones(n, dtype=bool) if ok is None else np.asarray(ok, dtype=bool)
        done = np.asarray(done, dtype=bool)
        hist, opened = self.history[k], self.open[k]
        start = int(self.written[k])
        chunks: list[np.ndarray] = []
        rows: list[np.ndarray] = []
        for i in range(n):
            if not keep[i]:
                opened[i] = 0
                continue
            if not opened[i]:  # an episode starts: its first frame fills the whole stack
                hist[i] = start + len(chunks)
                chunks.append(obs[i])
                opened[i] = 1
            nxt = start + len(chunks)
            chunks.append(next_obs[i])
            rows.append(np.append(hist[i], nxt))
            hist[i, :-1] = hist[i, 1:]
            hist[i, -1] = nxt
            if done[i]:
                opened[i] = 0
        if not rows:
            return
        slots = torch.arange(start, start + len(chunks)).remainder_(self.frame_capacity).to(self.device)
        self.frames[k].index_copy_(0, slots, torch.from_numpy(np.stack(chunks)).to(self.device))
        self.written[k] = start + len(chunks)
        first = int(self.added[k])
        pos = torch.arange(first, first + len(rows)).remainder_(self.capacity).to(self.device)
        self.index[k].index_copy_(0, pos, torch.from_numpy(np.stack(rows)).to(self.device))
        minima = self._minima[k]
        for j, row in enumerate(rows):
            oldest = int(row[0])
            while minima and minima[-1][1] >= oldest:
                minima.pop()
            minima.append((first + j, oldest))
        self.added[k] = first + len(rows)
        self._drop(k, int(self.added[k]) - int(self.size[k]) - len(rows))

    def _drop(self, k: int, lo: int) -> None:
        """Set the sampleable range to [lo', added): lo' ≥ lo, past the transitions the transition
        ring overwrote and past the newest one whose oldest frame the frame ring overwrote."""
        added = int(self.added[k])
        lo = max(lo, added - self.capacity)
        horizon = int(self.written[k]) - self.frame_capacity  # frames numbered below it are gone
        minima = self._minima[k]
        while minima and (minima[0][0] < lo or minima[0][1] < horizon):
            if minima[0][1] < horizon:
                lo = max(lo, minima[0][0] + 1)
            minima.popleft()
        self.size[k] = added - lo

    def cut(self, k: int) -> None:
        """End learner k's open episodes (a resume restarts them from a reset)."""
        self.open[k] = 0

    def sync_size(self) -> None:
        """Copy the host's fill levels and start positions to the device tensors."""
        self.size_t.copy_(torch.from_numpy(self.size.astype(np.float64)).view(-1, 1))
        self.start_t.copy_(torch.from_numpy((self.added - self.size) % self.capacity).view(-1, 1))

    # -- sampling ---------------------------------------------------------------------------
    def sample_indices(self, batch_size: int, rng: LearnerRNG) -> Tensor:
        """(L, B) positions of sampleable transitions, uniformly with replacement."""
        if self._u is None or self._u.shape[1] != batch_size:
            self._u = torch.empty((self.learners, batch_size), dtype=torch.float64, device=self.device)
        u = rng.uniform_(self._u)
        return (u * self.size_t).long().add_(self.start_t).remainder_(self.capacity)

    def gather(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The uint8 stacks (L, B, K·C, H, W) of s and s' of the transitions at positions ``idx``
        (L, B), channels oldest frame first. One gather of K + 1 frames per transition: s' is
        s's stack shifted by one frame (``FrameStackObservation``'s order)."""
        learners, batch = idx.shape
        k, (c, h, w) = self.stack, self.chw
        rows = self.index.view(-1, k + 1).index_select(0, (idx + self._offsets * self.capacity).view(-1))
        slots = rows.remainder_(self.frame_capacity).view(learners, -1).add_(self._offsets * self.frame_capacity)
        window = self.frames.view(-1, c, h, w).index_select(0, slots.view(-1)).view(learners, batch, k + 1, c, h, w)
        return window[:, :, :k].reshape(learners, batch, k * c, h, w), window[:, :, 1:].reshape(
            learners, batch, k * c, h, w)  # fmt: skip

    def sample(self, batch_size: int, rng: LearnerRNG) -> tuple[Tensor, Tensor, Tensor]:
        """(positions, s, s'): ``sample_indices`` then ``gather``."""
        idx = self.sample_indices(batch_size, rng)
        return (idx, *self.gather(idx))

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self, k: int) -> dict[str, Tensor]:
        """Learner k's written frames and transitions (views), and its open episodes."""
        return {
            "frames": self.frames[k, : min(int(self.written[k]), self.frame_capacity)],
            "frame_index": self.index[k, : min(int(self.added[k]), self.capacity)],
            "frame_history": torch.from_numpy(self.history[k]),
            "frame_open": torch.from_numpy(self.open[k]),
        }

    def targets(self, k: int) -> dict[str, Tensor]:
        """Where ``state_tensors``' tensors are loaded to (whole regions; the host arrays shared)."""
        return {
            "frames": self.frames[k],
            "frame_index": self.index[k],
            "frame_history": torch.from_numpy(self.history[k]),
            "frame_open": torch.from_numpy(self.open[k]),
        }

    def fill(self, k: int) -> dict[str, int]:
        """The counters ``set_fill`` takes back (a checkpoint's JSON description)."""
        return {"size": int(self.size[k]), "added": int(self.added[k]), "written": int(self.written[k])}

    def set_fill(self, k: int, size: int, added: int, written: int) -> None:
        """Restore learner k's counters after its tensors were loaded, and rebuild its suffix minima."""
        # Each transition writes one frame and an episode's first transition one more.
        if not 0 <= size <= min(added, self.capacity) or written < added + (added > 0):
            raise ValueError(f"frame counters size {size}, added {added}, written {written} are inconsistent")
        rows = self.index[k, torch.arange(added - size, added) % self.capacity].cpu().numpy()
        hist = self.history[k][self.open[k] == 1]
        low = written - self.frame_capacity
        for what, numbers in (("transitions", rows), ("open episodes", hist)):
            if numbers.size and (numbers.min() < low or numbers.max() >= written):
                raise ValueError(f"the {what} name frames outside the ring's [{low}, {written}): the data is corrupted")
        self.size[k], self.added[k], self.written[k] = size, added, written
        oldest = rows[:, 0]
        # Strict suffix minima: the entries the deque holds after the same adds (see ``add``).
        later = np.minimum.accumulate(oldest[::-1])[::-1]
        keep = np.append(oldest[:-1] < later[1:], True) if size else np.zeros(0, dtype=bool)
        self._minima[k] = deque((added - size + int(j), int(oldest[j])) for j in np.flatnonzero(keep))
        self.sync_size()
