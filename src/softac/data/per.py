"""Prioritized experience replay (Schaul et al. 2016, the proportional variant), per learner.

Row i of learner k has priority p_i = |δ_i| + ε (its last TD error) and is drawn with

    P(i) = p_i^α / Σ_j p_j^α

and its squared TD error is weighted by the importance weight

    w_i = (N · P(i))^(−β) / max_{j ∈ batch} (N · P(j))^(−β),   N = rows held by learner k,

with β annealed linearly from β₀ to 1 over the run's ``total_steps`` (their §3.4). A new row
gets the largest priority seen so far (p_max, per learner, starting at 1), so every transition is
replayed at least once soon after it arrives (their Algorithm 1, line 6).

Normalisation: by the largest weight *in the batch* (as Schaul et al.'s Algorithm 1, line 10 is
read by most implementations), not over the whole buffer (OpenAI Baselines' min-probability tree).
Why: it needs no second (min) tree, and the batch's largest weight is exactly 1, so the step size
does not shrink because some stale row somewhere in the buffer holds a tiny priority.

Sampling is stratified: the total mass is cut into B equal segments and one u ~ U[0, 1) from the
learner's own stream (``softac.rng``) places one draw in each, so stacked learners draw exactly what
single runs draw. The sum tree is a flat array per learner (node 1 the root, node n's children 2n
and 2n + 1, leaves at P … 2P − 1 with P the power of two ≥ capacity), float64 on the buffer's
device; all L × B draws descend it together, one gather per level: O(log N) per draw, no host
sync, so it can run inside a CUDA graph. Every internal node is always recomputed as the sum of
its two children (never incremented), so the tree is a function of its leaves alone: rebuilt from
saved leaves after a resume it is bit-identical.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac.data.replay import Batch, ReplayBuffer
from softac.rng import LearnerRNG


class SumTree:
    """The flat sum trees of L learners. On the CPU the same operations run in numpy on the same
    memory (``host=True``): a descent or an update is ~100 tiny operations, and numpy's cost per
    operation is a few times smaller than torch's dispatch (measured: docs/replay.md). Both paths
    do the same float64 additions in the same order, so they give the same tree bit for bit
    (``tests/test_per.py``)."""

    def __init__(self, learners: int, capacity: int, device: torch.device, host: bool | None = None) -> None:
        self.depth = max(1, (capacity - 1).bit_length())
        self.leaves = 1 << self.depth  # P ≥ capacity
        self.nodes = torch.zeros((learners, 2 * self.leaves), dtype=torch.float64, device=device)
        host = device.type == "cpu" if host is None else host
        self._flat = self.nodes.numpy().reshape(-1) if host else None  # shares the tensor's memory
        self._rows = np.arange(learners, dtype=np.int64)[:, None] * (2 * self.leaves)  # row offsets in _flat

    def total(self) -> Tensor:
        """Σ_i p_i^α per learner, shape (L, 1)."""
        return self.nodes[:, 1:2]

    def value(self, idx: Tensor) -> Tensor:
        """The leaves p^α of rows ``idx`` (L, B)."""
        return self.nodes.gather(1, idx + self.leaves)

    def set(self, idx: Tensor, values: Tensor, k: int | None = None) -> None:
        """Leaves ``idx`` (L, m) ← ``values``, then their ancestors, level by level, each node the sum
        of its two children (only learner k's row of the tree with ``k``: idx and values then have
        one row)."""
        if self._flat is not None:
            self._set_host(self._flat, idx.numpy(), values.numpy(), self._rows if k is None else self._rows[k : k + 1])
            return
        nodes = self.nodes if k is None else self.nodes[k : k + 1]
        node = idx + self.leaves
        nodes.scatter_(1, node, values)
        for _ in range(self.depth):
            node = node >> 1
            child = node << 1
            nodes.scatter_(1, node, nodes.gather(1, child) + nodes.gather(1, child + 1))

    def find(self, target: Tensor) -> Tensor:
        """For masses ``target`` (L, B) in [0, total): the row whose prefix-sum interval holds each."""
        if self._flat is not None:
            return torch.from_numpy(self._find_host(self._flat, target.numpy()))
        node = torch.ones(target.shape, dtype=torch.int64, device=target.device)
        for _ in range(self.depth):
            node = node << 1
            left = self.nodes.gather(1, node)
            right = target >= left
            target = torch.where(right, target - left, target)
            node = node + right
        return node - self.leaves

    def _set_host(self, flat: np.ndarray, idx: np.ndarray, values: np.ndarray, off: np.ndarray) -> None:
        node = idx + self.leaves
        flat[node + off] = values
        for _ in range(self.depth):
            node = node >> 1
            child = (node << 1) + off
            flat[node + off] = flat[child] + flat[child + 1]

    def _find_host(self, flat: np.ndarray, target: np.ndarray) -> np.ndarray:
        node = np.ones(target.shape, dtype=np.int64)
        for _ in range(self.depth):
            node = node << 1
            left = flat[node + self._rows]
            right = target >= left
            target = np.where(right, target - left, target)
            node = node + right
        return node - self.leaves

    def rebuild(self, k: int) -> None:
        """Learner k's internal nodes from its leaves (after a checkpoint's leaves were loaded)."""
        row = self.nodes[k]
        for d in range(self.depth - 1, -1, -1):
            lo, hi = 1 << d, 2 << d
            row[lo:hi] = row[2 * lo : 2 * hi : 2] + row[2 * lo + 1 : 2 * hi : 2]


class PrioritizedReplay(ReplayBuffer):
    """``ReplayBuffer`` whose ``sample`` draws by priority and attaches importance weights
    (``Batch.weight``); the agent hands the update's |δ| back through ``prioritize``."""

    prioritized = True

    def __init__(self, *args: Any, alpha: float, beta: float, eps: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha, self.beta0, self.eps = alpha, beta, eps
        self.tree = SumTree(self.learners, self.capacity, self.device)
        self.max_priority = torch.ones((self.learners, 1), dtype=torch.float64, device=self.device)
        # β as a device tensor set before each update (``anneal``): a captured graph reads it.
        self.beta = torch.full((), beta, dtype=torch.float64, device=self.device)
        self.index = torch.zeros((self.learners, 0), dtype=torch.int64, device=self.device)  # the last sample's rows

    # -- new rows get p_max^α ---------------------------------------------------------------
    def _fresh(self, idx: Tensor, k: int | None = None) -> None:
        """Rows ``idx`` (L, n) (learner k's, (1, n), with ``k``) ← p_max^α of their learner."""
        top = self.max_priority if k is None else self.max_priority[k : k + 1]
        self.tree.set(idx, top.pow(self.alpha).expand(idx.shape).contiguous(), k)

    def _written(self, start: np.ndarray, n: int) -> Tensor:
        """The rows n writes from host positions ``start`` (r, 1) fill: (r, n) on the device."""
        return torch.from_numpy((start + np.arange(n)) % self.capacity).to(self.device)

    def add(self, k: int, rows: np.ndarray) -> None:
        start, n = self.cursor[k : k + 1, None].copy(), rows.shape[0]
        super().add(k, rows)
        if n:
            self._fresh(self._written(start, n), k)

    def add_all(self, rows: np.ndarray) -> None:
        # The rows' positions before the write; the per-learner path (``add``) already set them,
        # and setting them again to the same value changes nothing.
        start, n = self.cursor[:, None].copy(), rows.shape[1]
        super().add_all(rows)
        if n:
            self._fresh(self._written(start, n))

    def append_device(self, rows: Tensor) -> None:
        n = rows.shape[1]
        idx = torch.arange(n, device=self.device).add_(self.cursor_t).remainder_(self.capacity)
        self._fresh(idx.expand(self.learners, n))
        super().append_device(rows)

    # -- sampling and priorities -----------------------------------------------------------
    def anneal(self, progress: float) -> None:
        """β = β₀ + (1 − β₀) · min(1, progress), progress = environment steps / total_steps."""
        self.beta.fill_(self.beta0 + (1.0 - self.beta0) * min(1.0, max(0.0, progress)))

    def sample(self, batch_size: int, rng: LearnerRNG) -> Batch:
        """One row per stratum [j, j + 1) · Σp^α / B of each learner's mass, with its weight w."""
        if self._u is None or self._u.shape[1] != batch_size:
            self._u = torch.empty((self.learners, batch_size), dtype=torch.float64, device=self.device)
            self._strata = torch.arange(batch_size, dtype=torch.float64, device=self.device)
            self.index = torch.zeros((self.learners, batch_size), dtype=torch.int64, device=self.device)
        u = rng.uniform_(self._u)
        total = self.tree.total()
        idx = self.tree.find((self._strata + u).mul_(total / batch_size))
        # Rounding can carry a mass of ≈ total past the last filled row (into zero leaves).
        idx = torch.minimum(idx, self.size_t.long() - 1)
        self.index.copy_(idx)
        prob = self.tree.value(idx) / total
        w = (self.size_t * prob).pow(-self.beta)
        w = (w / w.amax(dim=1, keepdim=True)).float()
        return dataclasses.replace(self.gather(idx), weight=w)

    def prioritize(self, metrics: dict[str, Tensor]) -> dict[str, Tensor]:
        """p ← |δ| + ε for the rows of the last sample (|δ| = ``metrics['per/td']``, (L, B)), p_max
        updated; returns the metrics without it (a copy: a CUDA graph's outputs stay intact)."""
        metrics = dict(metrics)
        p = metrics.pop("per/td").double().add_(self.eps)
        torch.maximum(self.max_priority, p.amax(dim=1, keepdim=True), out=self.max_priority)
        self.tree.set(self.index, p.pow_(self.alpha))
        return metrics

    def probabilities(self) -> Tensor:
        """P(i) of every row of every learner (L, capacity): for tests and diagnostics."""
        leaves = self.tree.nodes[:, self.tree.leaves : self.tree.leaves + self.capacity]
        return leaves / self.tree.total()

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self, k: int) -> dict[str, Tensor]:
        leaves = self.tree.nodes[k, self.tree.leaves : self.tree.leaves + int(self.size[k])]
        return {**super().state_tensors(k), "per_priority": leaves, "per_max": self.max_priority[k]}

    def targets(self, k: int) -> dict[str, Tensor]:
        leaves = self.tree.nodes[k, self.tree.leaves : self.tree.leaves + self.capacity]
        return {**super().targets(k), "per_priority": leaves, "per_max": self.max_priority[k]}

    def set_fill(self, k: int, size: int, cursor: int) -> None:
        """After loading: refuse priorities that cannot occur, clear unfilled leaves, rebuild the sums."""
        super().set_fill(k, size, cursor)
        leaves = self.tree.nodes[k, self.tree.leaves :]
        leaves[size:].zero_()
        filled, top = leaves[:size], self.max_priority[k]
        if not (bool(torch.isfinite(filled).all()) and bool((filled > 0).all()) and bool(torch.isfinite(top).all())
                and float(top) > 0):  # fmt: skip
            raise ValueError("the replay rows' priorities are missing or not positive finite numbers "
                             "(a checkpoint saved without --per cannot resume with it)")  # fmt: skip
        self.tree.rebuild(k)
