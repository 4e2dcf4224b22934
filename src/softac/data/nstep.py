"""n-step returns, accumulated where transitions enter the replay buffer.

For a step t the stored transition is (s_t, a_t, R_t, d, s_{t+m}, γ^m) with

    R_t = Σ_{i<m} γ^i r_{t+i},   m = min(n, steps left in the episode from t)

(Sutton & Barto 2018, §7.1; Hessel et al. 2018, "Rainbow", eq. 2), so the critic's target is
y = R_t + γ^m (1 − d) V(s_{t+m}) with the *stored* γ^m in place of γ. ``d`` is 1 only when the
episode terminated within those m steps: a terminated tail does not bootstrap. A time-limit
truncation (or a dropped, non-finite step, which ends the episode too) bootstraps from the last
real next observation with γ^m, m < n. For n = 1 none of this runs (``OffPolicyAgent`` stores the
plain rows), so the default path is unchanged bit for bit.

Each learner × environment keeps the last m < n steps of its current episode (obs, action,
reward): these pending partial returns are state, saved with the buffer's data and restored on
resume (``state_tensors`` / ``targets``). A resumed run restarts the episodes a mid-episode
checkpoint cut (``softac.train``): ``cut`` then stores the pending steps as truncated tails, as an
uninterrupted run would have at a time limit there; a checkpoint at an episode boundary (nothing
pending) resumes bit-identically.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# (s, a, R, d, s', γ^m) of one completed transition
Row = tuple[np.ndarray, np.ndarray, float, float, np.ndarray, float]


class NStepAccumulator:
    def __init__(self, learners: int, envs: int, n: int, gamma: float, obs_dim: int, act_dim: int) -> None:
        self.n, self.gamma = n, gamma
        self.obs = np.zeros((learners, envs, n, obs_dim), dtype=np.float32)
        self.action = np.zeros((learners, envs, n, act_dim), dtype=np.float32)
        self.reward = np.zeros((learners, envs, n), dtype=np.float32)
        self.count = np.zeros((learners, envs), dtype=np.int64)  # pending steps, oldest at index 0
        self._last_next = np.zeros((learners, envs, obs_dim), dtype=np.float32)  # s' of the newest
        # γ^0 … γ^n in float64, the weights of R_t and the discounts to store.
        self._powers = gamma ** np.arange(n + 1, dtype=np.float64)

    def _emit(self, k: int, e: int, first: int, next_obs: np.ndarray, terminated: float) -> list[Row]:
        """Rows (s, a, R, d, s', γ^m) for pending entries ``first`` … count−1 of (k, e)."""
        c = int(self.count[k, e])
        rewards = self.reward[k, e, :c].astype(np.float64)
        out: list[Row] = []
        for j in range(first, c):
            m = c - j
            ret = float(np.dot(self._powers[:m], rewards[j:c]))
            # copies: the window shifts in place after this
            out.append((self.obs[k, e, j].copy(), self.action[k, e, j].copy(), ret, terminated, next_obs.copy(),
                        float(self._powers[m])))  # fmt: skip
        return out

    def push(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        done: np.ndarray,
        next_obs: np.ndarray,
        ok: np.ndarray,
    ) -> list[list[Row]]:
        """Take one step of every (learner, env) (arrays with leading dims (L, E)); return, per
        learner, the completed n-step transitions as (s, a, R, d, s', γ^m) tuples, in env order."""
        learners, envs = self.count.shape
        out: list[list[Row]] = [[] for _ in range(learners)]
        for k in range(learners):
            for e in range(envs):
                if not ok[k, e]:
                    # A dropped step ends the episode (the collector resets that env) and is not
                    # stored: the pending steps bootstrap from the last real next observation,
                    # which a truncated tail would use too (the last pending step's s').
                    c = int(self.count[k, e])
                    if c:
                        out[k] += self._emit(k, e, 0, self._last_next[k, e], 0.0)
                    self.count[k, e] = 0
                    continue
                c = int(self.count[k, e])
                self.obs[k, e, c], self.action[k, e, c], self.reward[k, e, c] = obs[k, e], action[k, e], reward[k, e]
                self.count[k, e] = c + 1
                self._last_next[k, e] = next_obs[k, e]
                if done[k, e]:  # the whole tail: m = n, n − 1, …, 1 steps
                    out[k] += self._emit(k, e, 0, next_obs[k, e], float(terminated[k, e]))
                    self.count[k, e] = 0
                elif c + 1 == self.n:  # the oldest has its n rewards
                    out[k] += self._emit(k, e, 0, next_obs[k, e], 0.0)[:1]
                    self._shift(k, e)
        return out

    def cut(self) -> list[list[Row]]:
        """End every pending episode here, as a truncation: each pending step bootstraps from the
        last real next observation with γ^m. For a collector that starts fresh episodes (a
        resumed run resets the episodes a mid-episode checkpoint cut; a second ``learn``): their
        first steps must not join the returns of the old ones."""
        learners, envs = self.count.shape
        out: list[list[Row]] = [[] for _ in range(learners)]
        for k in range(learners):
            for e in range(envs):
                if self.count[k, e]:
                    out[k] += self._emit(k, e, 0, self._last_next[k, e], 0.0)
                    self.count[k, e] = 0
        return out

    def _shift(self, k: int, e: int) -> None:
        for a in (self.obs, self.action, self.reward):
            a[k, e, :-1] = a[k, e, 1:].copy()
        self.count[k, e] -= 1

    def check(self, k: int) -> None:
        """Refuse a loaded pending count that cannot occur (0 ≤ count < n)."""
        if not ((self.count[k] >= 0) & (self.count[k] < self.n)).all():
            raise ValueError(f"pending n-step counts {self.count[k].tolist()} do not fit n_step={self.n}")

    # -- checkpoints ------------------------------------------------------------------------
    def state_tensors(self, k: int) -> dict[str, Tensor]:
        """Learner k's pending steps (every env), saved with the replay data."""
        return {
            "nstep_obs": torch.from_numpy(self.obs[k].copy()),
            "nstep_action": torch.from_numpy(self.action[k].copy()),
            "nstep_reward": torch.from_numpy(self.reward[k].copy()),
            "nstep_count": torch.from_numpy(self.count[k].copy()),
            "nstep_next_obs": torch.from_numpy(self._last_next[k].copy()),
        }

    def targets(self, k: int) -> dict[str, Tensor]:
        """Views the loader copies saved tensors into (numpy memory shared with torch)."""
        return {
            "nstep_obs": torch.from_numpy(self.obs[k]),
            "nstep_action": torch.from_numpy(self.action[k]),
            "nstep_reward": torch.from_numpy(self.reward[k]),
            "nstep_count": torch.from_numpy(self.count[k]),
            "nstep_next_obs": torch.from_numpy(self._last_next[k]),
        }
