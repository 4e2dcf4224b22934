"""Preallocated replay storage, one region per learner.

One transition is one row of a single float32 tensor laid out as

    [ s (obs_dim) | a (act_dim) | r | d | s' (obs_dim) ]   (+ [ γ^m ] with n-step returns)

so sampling a minibatch is *one* gather (``index_select``) instead of five, and the critic input
(s, a) is a contiguous slice of the row: no ``torch.cat`` on the hot path. ``d`` is 1.0 only for
a true termination (never for a time-limit truncation). The storage is ``(L, capacity, row)``,
allocated with ``torch.empty`` up front: pages are only touched (and counted in RSS) as they are
filled, and a 1M-transition HalfCheetah buffer costs 1M × 42 × 4 B = 168 MB per learner.

Sampling draws u ~ U[0, 1) in float64 from each learner's stream and takes row ⌊u · size⌋. Unlike
``randint``, that formula reads the fill level from a *tensor*, so a CUDA graph captured once
samples from the growing buffer correctly on every replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from softac.data.normaliser import ObservationNormaliser
from softac.rng import LearnerRNG


class RowsOutOfRange(ValueError):
    """Loaded replay rows holding a value that no transition can have (see ``row_problem``)."""


@dataclass(frozen=True)
class Batch:
    """Views into one gathered (L, B, row) tensor."""

    obs_act: Tensor  # (L, B, obs_dim + act_dim): the critic input (s, a)
    obs: Tensor  # (L, B, obs_dim)
    action: Tensor  # (L, B, act_dim)
    reward: Tensor  # (L, B)
    terminated: Tensor  # (L, B) 1.0 for true termination only
    next_obs: Tensor  # (L, B, obs_dim)
    # (L, B) γ^m per row with n-step returns (``softac.data.nstep``); None: the config's γ
    discount: Tensor | None = None
    # (L, B) importance weights of prioritized replay (``softac.data.per``); None: uniform sampling
    weight: Tensor | None = None

    def gamma(self, default: float) -> float | Tensor:
        """The discount to bootstrap each row with: the stored γ^m, or γ for 1-step rows. The one
        place the losses' γ comes from, so every algorithm's target gets n-step for free."""
        return default if self.discount is None else self.discount


class ReplayBuffer:
    prioritized = False  # ``softac.data.per.PrioritizedReplay`` keeps priorities of its rows
    relabels = False  # ``softac.data.her.HerReplay`` samples on the host (never inside a CUDA graph)

    def __init__(
        self,
        learners: int,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        device: torch.device | str = "cpu",
        discount_column: bool = False,
    ) -> None:
        self.learners = learners
        self.capacity = capacity
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.device = torch.device(device)
        self.row = 2 * obs_dim + act_dim + 2 + int(discount_column)
        self.discount_column = discount_column
        self.storage = torch.empty((learners, capacity, self.row), dtype=torch.float32, device=self.device)
        self.cursor = np.zeros(learners, dtype=np.int64)  # next row to write, per learner
        self.size = np.zeros(learners, dtype=np.int64)  # rows holding data, per learner
        # The fill levels as a device tensor, read by ``sample`` (see the module docstring), and the
        # write position as one, used by ``append_device`` (a CUDA graph's writes).
        self.size_t = torch.zeros((learners, 1), dtype=torch.float64, device=self.device)
        self.cursor_t = torch.zeros((), dtype=torch.int64, device=self.device)
        # Row offsets of each learner's region in the flattened storage, for one index_select.
        self._offsets = torch.arange(learners, device=self.device).mul_(capacity).unsqueeze(1)
        # On the CPU, numpy views of the same memory: the per-step writes below (one row per
        # environment step) cost a few µs through them, against about 20 through torch's indexing.
        host = self.device.type == "cpu"
        self._storage_np = self.storage.numpy() if host else None
        self._size_np = self.size_t.numpy() if host else None
        self._cursor_np = self.cursor_t.numpy() if host else None
        self._u: Tensor | None = None
        self.normaliser: ObservationNormaliser | None = None  # applied to s and s' of every sample
        o, a = obs_dim, act_dim
        s2 = slice(o + a + 2, 2 * o + a + 2 if discount_column else None)
        self._slices = (slice(0, o + a), slice(0, o), slice(o, o + a), o + a, o + a + 1, s2)

    def __len__(self) -> int:
        return int(self.size.min())

    def rows(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        next_obs: np.ndarray,
        discount: np.ndarray | None = None,
    ) -> np.ndarray:
        """Pack transitions (arrays with leading dims ``(..., n)``) into rows of the layout above."""
        o, a = self.obs_dim, self.act_dim
        rows = np.empty((*reward.shape, self.row), dtype=np.float32)
        rows[..., :o] = obs
        rows[..., o : o + a] = action
        rows[..., o + a] = reward
        rows[..., o + a + 1] = terminated
        rows[..., o + a + 2 : 2 * o + a + 2] = next_obs
        if self.discount_column:
            if discount is None:
                raise ValueError("this buffer stores n-step rows: pass each row's discount γ^m")
            rows[..., -1] = discount
        return rows

    def add(self, k: int, rows: np.ndarray) -> None:
        """Append n rows to learner k's region (oldest overwritten first once it is full); call
        ``sync_size`` after the last ``add`` of a step."""
        n = rows.shape[0]
        if n == 0:
            return
        src = torch.from_numpy(rows)
        region, cursor = self.storage[k], int(self.cursor[k])
        end = cursor + n
        if end <= self.capacity:
            region[cursor:end].copy_(src)
        else:
            first = self.capacity - cursor
            region[cursor:].copy_(src[:first])
            region[: n - first].copy_(src[first:])
        self.cursor[k] = end % self.capacity
        self.size[k] = min(int(self.size[k]) + n, self.capacity)

    def add_all(self, rows: np.ndarray) -> None:
        """Append ``rows`` of shape (L, n, row): n rows to every learner's region."""
        n, c = rows.shape[1], int(self.cursor[0])
        if n and (self.cursor == c).all() and c + n <= self.capacity:
            # The common case (every learner kept every transition): one copy for all learners.
            if self._storage_np is not None:
                self._storage_np[:, c : c + n] = rows
            else:
                self.storage[:, c : c + n].copy_(torch.from_numpy(rows))
            self.cursor[:] = (c + n) % self.capacity
            self.size[:] = np.minimum(self.size + n, self.capacity)
        else:
            for k in range(self.learners):
                self.add(k, rows[k])
        self.sync_size()

    def sync_size(self) -> None:
        """Copy the host's fill levels (and the common write position) to the device tensors."""
        if self._size_np is not None and self._cursor_np is not None:
            self._size_np[:, 0] = self.size
            self._cursor_np[...] = self.cursor[0]
            return
        self.size_t.copy_(torch.from_numpy(self.size.astype(np.float64)).view(-1, 1), non_blocking=True)
        self.cursor_t.fill_(int(self.cursor[0]))

    def aligned(self) -> bool:
        """Every learner writes at the same position (true unless some dropped a transition)."""
        return bool((self.cursor == self.cursor[0]).all())

    def append_device(self, rows: Tensor) -> None:
        """``add_all`` on the device, from ``rows`` (L, n, row) already there and the device's own
        write position and fill levels: no host value is read, so a CUDA graph can capture it.
        Needs ``aligned()``; ``commit_host`` then advances the host's copy of the counters."""
        n = rows.shape[1]
        idx = torch.arange(n, device=self.device).add_(self.cursor_t).remainder_(self.capacity)
        self.storage.index_copy_(1, idx, rows)
        self.cursor_t.add_(n).remainder_(self.capacity)
        self.size_t.add_(n).clamp_(max=self.capacity)

    def commit_host(self, n: int) -> None:
        """The host side of ``append_device``: the same arithmetic on the numpy counters."""
        self.cursor[:] = (self.cursor + n) % self.capacity
        self.size[:] = np.minimum(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: LearnerRNG) -> Batch:
        """``batch_size`` rows per learner, uniformly with replacement (like SB3 and CleanRL)."""
        if self._u is None or self._u.shape[1] != batch_size:
            self._u = torch.empty((self.learners, batch_size), dtype=torch.float64, device=self.device)
        u = rng.uniform_(self._u)
        return self.gather((u * self.size_t).long())

    def gather(self, idx: Tensor) -> Batch:
        """The rows ``idx`` (L, B) of each learner's region (``idx`` is consumed), normalised."""
        return self.finish(self.take(idx))

    def take(self, idx: Tensor) -> Tensor:
        """A copy of the raw rows ``idx`` (L, B) of each learner's region (``idx`` is consumed)."""
        learners, batch_size = idx.shape
        flat = idx.add_(self._offsets).view(-1)
        return self.storage.view(-1, self.row).index_select(0, flat).view(learners, batch_size, self.row)

    def finish(self, rows: Tensor) -> Batch:
        """Gathered rows as a batch, their observations normalised (hindsight goals are written
        into the raw rows before this: ``softac.data.her``)."""
        if self.normaliser is not None:  # the gathered copy, never the stored raw observations
            s, s2 = self._slices[1], self._slices[5]
            rows[..., s] = self.normaliser.normalise(rows[..., s])
            rows[..., s2] = self.normaliser.normalise(rows[..., s2])
        return self.view(rows)

    def view(self, rows: Tensor) -> Batch:
        s_a, s, a, r, d, s2 = self._slices
        disc = rows[..., -1] if self.discount_column else None
        return Batch(rows[..., s_a], rows[..., s], rows[..., a], rows[..., r], rows[..., d], rows[..., s2], disc)

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self, k: int) -> dict[str, Tensor]:
        """Learner k's filled rows (a view: saving streams it without a copy)."""
        return {"storage": self.storage[k, : int(self.size[k])]}

    def targets(self, k: int) -> dict[str, Tensor]:
        """What a checkpoint's tensors of ``state_tensors`` are loaded into (whole regions)."""
        return {"storage": self.storage[k]}

    def load_rows(self, k: int, start: int, rows: Tensor) -> None:
        self.storage[k, start : start + rows.shape[0]].copy_(rows)

    def row_problem(self, k: int, n_actions: int | None) -> str | None:
        """The first stored value of learner k outside its range, or None: actions in [−1, 1] (the
        library's action space) or, for a Discrete space (``n_actions``), whole numbers in
        [0, n_actions); the termination flag d in {0, 1}; an n-step row's γ^m in [0, 1]. Why: a
        loaded action index of 7 for two actions was a gather's IndexError traceback at the first
        update, and an action of 5 or a flag of 0.5 trained on silently."""
        o, a = self.obs_dim, self.act_dim
        rows = self.storage[k, : int(self.size[k])]
        act, done = rows[:, o : o + a], rows[:, o + a + 1]
        if n_actions is not None:
            bad_act = (act < 0) | (act >= n_actions) | (act != torch.floor(act))
            act_range = f"a whole number in [0, {n_actions})"
        else:
            bad_act = (act < -1) | (act > 1)
            act_range = "in [-1, 1]"
        checks = [(bad_act.any(dim=1), "action", act_range, o),
                  (~((done == 0) | (done == 1)), "termination flag d", "0 or 1", o + a + 1)]  # fmt: skip
        if self.discount_column:
            gm = rows[:, -1]
            checks.append(((gm < 0) | (gm > 1), "discount γ^m", "in [0, 1]", self.row - 1))
        for bad, what, allowed, column in checks:
            if bool(bad.any()):
                i = int(torch.nonzero(bad)[0])
                value = rows[i, o : o + a].tolist() if what == "action" else rows[i, column].item()
                return f"stored row {i} has the {what} {value}, which must be {allowed}"
        return None

    def set_fill(self, k: int, size: int, cursor: int) -> None:
        self.size[k] = size
        self.cursor[k] = cursor % self.capacity
        self.sync_size()
