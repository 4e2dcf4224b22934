"""What carries over into a training call: the live training step a previous ``learn()`` left on
the agent, and the checkpoint's resume section (checked: issue 22)."""

from __future__ import annotations

from typing import Any

import numpy as np

from softac.errors import SoftacError
from softac.protocols import AgentLike

# Where a finished ``learn()`` leaves its training step (environments, their current observations,
# episode statistics, n-step tails) on the agent, with the step count and resume state it ended at.
# Issue 22: a second ``learn()`` in the same process rebuilt the step from the resume state, so
# every unfinished episode restarted (and the mid-episode *checkpoint* note was printed, although
# nothing was loaded); the environments are alive and simply continue, as SB3's
# ``learn(reset_num_timesteps=False)`` does. An attribute on the agent, not a WeakKeyDictionary:
# the step refers to the agent, which would keep the key alive for ever.
LIVE = "_softac_live_step"


def live_step(agent: AgentLike) -> Any:
    """The step a previous ``learn()`` left, if the agent is still where that call ended (nothing
    replaced its counters or resume state since); None otherwise."""
    live = getattr(agent, LIVE, None)
    if live is None:
        return None
    step, at, resume = live
    return step if at == agent.env_steps and resume is agent.resume_state else None


def take_live_step(agent: AgentLike) -> Any:
    step = live_step(agent)
    live = getattr(agent, LIVE, None)
    if live is not None:
        setattr(agent, LIVE, None)
        if step is None:  # stale: the agent moved on without it
            live[0].close()
    return step


def pending_evaluation(resume: list[dict[str, Any]] | None) -> bool:
    """A checkpoint taken by a signal during an evaluation: that evaluation is done first on resume."""
    flags = [r.get("pending_evaluation", False) for r in resume or []]
    if not all(isinstance(f, bool) for f in flags):
        raise SoftacError("the checkpoint's resume.pending_evaluation is not true or false; it is corrupted")
    return any(flags)


def recent_returns(resume: dict[str, Any]) -> list[float]:
    """A checkpoint's returns since its last evaluation: a list of finite numbers, or refused."""
    value = resume.get("recent_returns", [])
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value
    ):
        raise SoftacError("the checkpoint's resume.recent_returns is not a list of finite numbers; it is corrupted")
    return [float(v) for v in value]


def wall_time(resume: list[dict[str, Any]] | None) -> float:
    """The run's wall-clock seconds before this call (progress.csv's ``wall_time_s`` continues)."""
    wall = (resume or [{}])[0].get("wall_time_s", 0.0)
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not np.isfinite(wall):
        raise SoftacError(f"the checkpoint's resume.wall_time_s is {wall!r}, not a number; it is corrupted")
    return float(wall)
