"""The hindsight-replay settings (``softac.data.her``), a part of the continuous-action off-policy configs
(SAC, TD3, DDPG, CrossQ), kept apart from :mod:`softac.config` so that each file reads as one job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softac.config import OffPolicyConfig, _f
from softac.errors import SoftacError


@dataclass(frozen=True)
class GoalReplayConfig(OffPolicyConfig):
    """Hindsight experience replay (Andrychowicz et al. 2017; ``softac.data.her``, docs/goals.md) for the
    continuous-action off-policy algorithms (SAC, TD3, DDPG, CrossQ) on goal-conditioned environments."""

    her: bool = _f(False, "Hindsight experience replay: relabel sampled transitions with goals achieved later "
                   "(needs a Dict observation with observation/achieved_goal/desired_goal and compute_reward).")
    her_k: int = _f(4, "HER: relabelled goals per real one; a batch relabels k/(k+1) of its rows (SB3's "
                    "n_sampled_goal; paper: 4).", "positive")  # fmt: skip
    her_strategy: str = _f("future", "HER goal selection: 'future' (a later step of the same episode), 'final' "
                           "(its last step) or 'episode' (any of its steps).",
                           choices=("future", "final", "episode"))  # fmt: skip

    @classmethod
    def added_later(cls) -> dict[str, Any]:
        """Runs saved before hindsight replay existed trained without it."""
        return {**super().added_later(), "her": False, "her_k": 4, "her_strategy": "future"}

    def validate(self) -> None:
        super().validate()
        if not self.her:
            return
        # Why these are refused: relabelling recomputes one reward per row, but an n-step row's
        # return sums n rewards whose goals it no longer knows; priorities of rows whose goal and
        # reward change at every draw have no meaning the literature agrees on (SB3 refuses both).
        if self.n_step > 1:
            raise SoftacError(f"--her cannot be combined with --n-step {self.n_step}: relabelling recomputes one "
                              "reward per stored step, not an n-step return; use --n-step 1")  # fmt: skip
        if getattr(self, "per", False):
            raise SoftacError("--her cannot be combined with --per: prioritized replay's priorities are not defined "
                              "for relabelled transitions; choose one")  # fmt: skip
        if self.n_envs > 1:
            raise SoftacError(f"--her needs one environment per learner (--n-envs 1, got {self.n_envs}): its "
                              "episode bookkeeping follows each learner's episodes in order; train more seeds "
                              "instead")  # fmt: skip
