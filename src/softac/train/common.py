"""What the families' training steps share: the environments and collector they step, and what a
step returns to the shell (``softac.train.shell``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from torch import Tensor

from softac.collector import Collector
from softac.errors import DivergenceError
from softac.protocols import AgentLike


@dataclass
class StepResult:
    episode_returns: list[list[float]]  # per learner, the training episodes that ended during the step
    episode_lengths: list[list[int]]
    metrics: dict[str, Tensor] = field(default_factory=dict)  # the latest update's, per learner (L,)
    # parallel to episode_returns: each ended episode's success flag, None where not reported
    episode_successes: list[list[float | None]] = field(default_factory=list)


def make_collector(
    agent: AgentLike, resume: list[dict[str, Any]] | None
) -> tuple[gym.vector.VectorEnv, bool, Collector]:
    """Every learner's ``n_envs`` environments in one vector env (from the agent's environment
    source: an id, a factory, or the user's own vector env, which the step must then not close)
    and their collector, continuing from the saved environment state when there is one. Returns
    (envs, whether the step owns them, collector)."""
    cfg = agent.config
    envs, owns = agent.env_source.vector(cfg.n_envs * agent.learners, cfg.vectorization)
    # Continuing without saved env state (a checkpoint saved outside training) draws fresh
    # episodes from other seeds rather than replaying the first ones.
    seeds = [s + agent.env_steps for s in agent.seeds]
    collector = Collector(envs, agent.to_env, seeds, cfg.skip_nonfinite, cfg.env_id, agent.spec.obs_layout,
                          getattr(agent, "pixels", None))
    if resume and all("collector" in r for r in resume):
        collector.restore([r["collector"] for r in resume])
    return envs, owns, collector


def check_actions(agent: AgentLike, action: np.ndarray, step: int) -> None:
    """Why: a diverged policy emits NaN actions; stepping the env with them made the *env* return
    NaN observations, reported as a bad environment (exit 2, "--skip-nonfinite", which would then
    silently drop every transition). Name the real cause instead. The action is already a host
    array, so this costs no device sync."""
    if not np.isfinite(action).all():
        k = int(np.flatnonzero(~np.isfinite(action).reshape(agent.learners, -1).all(axis=1))[0])
        raise DivergenceError(f"step {step}: the policy's action became non-finite (seed {agent.seeds[k]})")
