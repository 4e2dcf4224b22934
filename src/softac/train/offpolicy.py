"""The off-policy family's step: collect one transition per environment → replay buffer → the
updates owed (update-to-data ratio). The shell (``softac.train.shell``) calls it until the budget
is spent and does everything else (logging, evaluation, checkpoints, signals, divergence)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from softac.collector import Collector
from softac.envs import make_vector_env
from softac.errors import DivergenceError
from softac.protocols import OffPolicyLike


@dataclass
class StepResult:
    episode_returns: list[list[float]]  # per learner, episodes that ended during the step
    episode_lengths: list[list[int]]
    metrics: dict[str, Tensor] = field(default_factory=dict)  # the latest update's, per learner (L,)


class OffPolicyStep:
    def __init__(self, agent: OffPolicyLike, resume: list[dict[str, Any]] | None) -> None:
        cfg = agent.config
        self.agent = agent
        self.envs = make_vector_env(cfg.env_id, cfg.n_envs * agent.learners, cfg.vectorization)
        # Continuing without saved env state (a checkpoint saved outside training) draws fresh
        # episodes from other seeds rather than replaying the first ones.
        seeds = [s + agent.env_steps for s in agent.seeds]
        self.collector = Collector(self.envs, agent.to_env, seeds, cfg.skip_nonfinite)
        if resume and all("collector" in r for r in resume):
            self.collector.restore([r["collector"] for r in resume])

    def __call__(self) -> StepResult:
        agent = self.agent
        before = agent.env_steps
        action = agent.explore(self.collector.observe(before))
        # Why: a diverged policy emits NaN actions; stepping the env with them made the *env*
        # return NaN observations, reported as a bad environment (exit 2, "--skip-nonfinite",
        # which would then silently drop every transition). Name the real cause instead.
        # The action is already a host array, so this costs no device sync.
        if not np.isfinite(action).all():
            k = int(np.flatnonzero(~np.isfinite(action).reshape(agent.learners, -1).all(axis=1))[0])
            raise DivergenceError(f"step {before}: the policy's action became non-finite (seed {agent.seeds[k]})")
        tr = self.collector.step(action, before)
        agent.add_transitions(tr)
        agent.env_steps += agent.config.n_envs
        metrics: dict[str, Tensor] = {}
        for _ in range(agent.updates_due()):
            metrics = agent.update()
        return StepResult(tr.episode_returns, tr.episode_lengths, metrics)

    def state(self, k: int) -> dict[str, Any]:
        return {"collector": self.collector.state(k)}

    def close(self) -> None:
        self.envs.close()
