"""Hindsight experience replay (Andrychowicz et al. 2017): goals relabelled when a batch is sampled.

The buffer holds every transition once, as the plain ``ReplayBuffer`` row ``[ s | a | r | d | s' ]``
with the goal-conditioned observation flattened into s and s' (``softac.obs.ObsLayout``: the
``achieved_goal`` and ``desired_goal`` keys are column slices of both). A sampled batch of B rows
per learner keeps its first ⌈B/(k+1)⌉ rows as stored and relabels the other ⌊B·k/(k+1)⌋ (SB3's
``HerReplayBuffer`` split, ``her_ratio = 1 − 1/(k+1)``): for relabelled row t of an episode,

    g' = achieved_goal(s'_j),   r' = compute_reward(achieved_goal(s'_t), g', info)

written into the desired-goal columns of s and s' and into r, with j drawn by the strategy:
``future`` j ~ U{t, …, T−1}, ``final`` j = T − 1, ``episode`` j ~ U{t₀, …, T−1}, where the episode's
steps still stored are t₀ … T−1 (T: one past its last step; for an episode still running, one past
the newest step it has, so it is relabelled only from the steps it already has). j = t is included,
as in SB3 and the paper's ``future``: the goal the transition itself reached.

What stays: ``d`` (a relabelled transition ends, or bootstraps, as it did: a time-limit truncation
still bootstraps), the action and the observation columns. The rewards are recomputed on the host
with the environment's own ``compute_reward``, vectorised over all relabelled rows at once.

Episodes are tracked per learner by *write numbers* (how many rows the learner had written before
a row): row p holds write number a with p = a mod capacity, and carries its episode's first write
number and one past its last (−1 while the episode runs). A write number older than
``written − size`` has been overwritten, so an episode's surviving steps are a range of numbers, and
a goal is never taken from another episode. This bookkeeping is state: it is saved with the rows
and restored on resume (``state_tensors`` / ``targets`` / ``set_fill``). One environment per learner
(``n_envs = 1``): each learner's episodes then follow one another in its region.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac.data.replay import Batch, ReplayBuffer
from softac.errors import EnvError
from softac.obs import ObsLayout
from softac.rng import LearnerRNG

STRATEGIES = ("future", "final", "episode")
GoalReward = Callable[[np.ndarray, np.ndarray, Any], Any]


def relabelled_count(batch_size: int, k: int) -> int:
    """Rows of a batch that get a hindsight goal: ⌊B · k/(k+1)⌋, SB3's ``int(her_ratio * batch_size)``."""
    return int(batch_size * (1.0 - 1.0 / (k + 1)))


def check_rewards(value: Any, n: int, env_name: str) -> np.ndarray:
    """``compute_reward``'s answer as float32 of shape (n,), or :class:`EnvError` naming what is wrong."""
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EnvError(f"{env_name}'s compute_reward returned {type(value).__name__}, not numbers ({exc})") from None
    if out.shape != (n,):
        raise EnvError(
            f"{env_name}'s compute_reward returned shape {out.shape} for {n} goals; hindsight relabelling needs one "
            f"reward per goal, shape ({n},): make compute_reward vectorised over a batch (as Gymnasium-Robotics' is)"
        )
    if not np.isfinite(out).all():
        raise EnvError(f"{env_name}'s compute_reward returned a non-finite reward for a relabelled goal")
    return out.astype(np.float32)


class HerReplay(ReplayBuffer):
    """The plain buffer plus episode bookkeeping; ``sample`` relabels (see the module docstring)."""

    relabels = True

    def __init__(
        self,
        learners: int,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        device: torch.device | str,
        *,
        layout: ObsLayout,
        compute_reward: GoalReward,
        k: int,
        strategy: str,
        env_name: str,
    ) -> None:
        super().__init__(learners, capacity, obs_dim, act_dim, device)
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown goal selection strategy {strategy!r}")
        self.k, self.strategy, self.env_name = k, strategy, env_name
        self.compute_reward = compute_reward
        o, a = obs_dim, act_dim
        ag, dg = layout.slice("achieved_goal"), layout.slice("desired_goal")
        self._dg = dg  # the desired goal in s
        self._dg2 = slice(o + a + 2 + dg.start, o + a + 2 + dg.stop)  # ... and in s'
        self._ag2 = slice(o + a + 2 + ag.start, o + a + 2 + ag.stop)  # the achieved goal in s'
        if ag.stop - ag.start != dg.stop - dg.start:
            raise ValueError("achieved_goal and desired_goal differ in size")
        self.ep_start = np.zeros((learners, capacity), dtype=np.int64)  # write number of the episode's first row
        self.ep_end = np.full((learners, capacity), -1, dtype=np.int64)  # one past its last; −1: running
        self.written = np.zeros(learners, dtype=np.int64)  # rows each learner ever wrote
        self.open = np.full(learners, -1, dtype=np.int64)  # first write number of the running episode; −1: none

    # -- episodes ---------------------------------------------------------------------------
    def record(self, k: int, stored: bool, ends: bool) -> None:
        """After ``add`` of learner k's step: ``stored`` one row (a dropped step stores none), then
        ``ends`` when its episode ended there (terminated, truncated, or dropped)."""
        if stored:
            a = int(self.written[k])
            if self.open[k] < 0:
                self.open[k] = a
            p = a % self.capacity
            self.ep_start[k, p], self.ep_end[k, p] = self.open[k], -1
            self.written[k] = a + 1
        if ends:
            self.close(k)

    def close(self, k: int) -> None:
        """End learner k's running episode at its newest row (an episode end, or a cut)."""
        if self.open[k] < 0:
            return
        end = int(self.written[k])
        first = max(int(self.open[k]), end - self.capacity)  # its rows not yet overwritten
        self.ep_end[k, np.arange(first, end) % self.capacity] = end
        self.open[k] = -1

    def draw(self, u_rows: np.ndarray, u_goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write numbers of the sampled rows (L, B) from u_rows ~ U[0, 1), and of the goals' rows
        (L, V) for the last V of them from u_goals, by the strategy."""
        size = np.minimum(self.written, self.capacity)[:, None]
        oldest = self.written[:, None] - size
        rows = oldest + np.minimum((u_rows * size).astype(np.int64), size - 1)
        t = rows[:, rows.shape[1] - u_goals.shape[1] :]
        pos = t % self.capacity
        start = np.take_along_axis(self.ep_start, pos, axis=1)
        end = np.take_along_axis(self.ep_end, pos, axis=1)
        end = np.where(end < 0, self.written[:, None], end)  # a running episode: the steps it has
        if self.strategy == "final":
            return rows, end - 1
        lo = t if self.strategy == "future" else np.maximum(start, oldest)
        span = end - lo
        return rows, lo + np.minimum((u_goals * span).astype(np.int64), span - 1)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, batch_size: int, rng: LearnerRNG) -> Batch:
        """B rows per learner, the last ⌊B·k/(k+1)⌋ relabelled. The draws come from each learner's
        host stream (u for the rows, then u for the goals): relabelling runs on the host, where
        ``compute_reward`` runs, whatever the buffer's device."""
        v = relabelled_count(batch_size, self.k)
        u = rng.uniform_(torch.empty((self.learners, batch_size + v), dtype=torch.float64), host=True).numpy()
        rows_abs, goals_abs = self.draw(u[:, :batch_size], u[:, batch_size:])
        rows = self.take(torch.from_numpy(rows_abs % self.capacity).to(self.device))
        if v:
            self._relabel(rows[:, batch_size - v :], goals_abs % self.capacity)
        return self.finish(rows)

    def _relabel(self, rows: Tensor, goal_pos: np.ndarray) -> None:
        """Write the hindsight goals and their rewards into ``rows`` (L, V, row) in place."""
        learners, v = goal_pos.shape
        flat = torch.from_numpy(goal_pos).to(self.device).add_(self._offsets).view(-1)
        goals = self.storage.view(-1, self.row)[:, self._ag2].index_select(0, flat).view(learners, v, -1)
        achieved = rows[..., self._ag2].cpu().numpy().reshape(learners * v, -1)
        new_goal = goals.cpu().numpy().reshape(learners * v, -1)
        # Why empty infos, one per row (SB3 passes each transition's stored info): an info dict is a
        # Python object that the float32 rows, and a checkpoint without pickle, cannot hold; the
        # goal tasks' rewards (Fetch, the mazes) ignore it, and an array of dicts keeps a
        # compute_reward written for SB3's HER (which indexes it per row) working.
        infos = np.array([{} for _ in range(learners * v)], dtype=object)
        try:
            reward = self.compute_reward(achieved, new_goal, infos)
        except Exception as exc:
            raise EnvError(
                f"{self.env_name}'s compute_reward raised {type(exc).__name__} on a batch of {learners * v} "
                f"relabelled goals: {exc}"
            ) from exc
        r = check_rewards(reward, learners * v, self.env_name)
        goals = goals.to(rows.dtype)
        rows[..., self._dg] = goals
        rows[..., self._dg2] = goals
        rows[..., self._slices[3]] = torch.from_numpy(r).to(self.device).view(learners, v)

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self, k: int) -> dict[str, Tensor]:
        n = int(self.size[k])
        return {**super().state_tensors(k), "her_start": torch.from_numpy(self.ep_start[k, :n].copy()),
                "her_end": torch.from_numpy(self.ep_end[k, :n].copy())}  # fmt: skip

    def targets(self, k: int) -> dict[str, Tensor]:
        return {**super().targets(k), "her_start": torch.from_numpy(self.ep_start[k]),
                "her_end": torch.from_numpy(self.ep_end[k])}  # fmt: skip

    def episode_meta(self, k: int) -> dict[str, int]:
        """Learner k's episode counters, for ``state.json`` beside the fill level."""
        return {"her_written": int(self.written[k]), "her_open": int(self.open[k])}

    def load_episode_meta(self, k: int, meta: dict[str, object]) -> None:
        """After ``set_fill``: take the counters and refuse bookkeeping that cannot occur."""
        written, open_ = meta.get("her_written"), meta.get("her_open")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (written, open_)):
            raise ValueError("no hindsight episode counters (a checkpoint saved without --her cannot resume with it)")
        assert isinstance(written, int) and isinstance(open_, int)
        n = int(self.size[k])
        fits = min(written, self.capacity) == n and written % self.capacity == int(self.cursor[k])
        if not fits or not -1 <= open_ < written:
            raise ValueError(f"hindsight episode counters (written {written}, open {open_}) do not fit the buffer's "
                             f"{n} rows")  # fmt: skip
        start, end = self.ep_start[k, :n], self.ep_end[k, :n]
        running = end == -1  # rows of the running episode, which starts at ``open_``
        if n and (bool((start < 0).any()) or bool((start >= written).any()) or bool((end > written).any())
                  or bool((end < -1).any()) or bool((start[running] != open_).any())):  # fmt: skip
            raise ValueError("hindsight episode bounds of the stored rows are out of range (the file is corrupted)")
        self.written[k], self.open[k] = written, open_
