"""What carries over into a training call: the live training step a previous ``learn()`` left on
the agent, the checkpoint's resume section (checked field by field), and the notes that tell the
user how the run continues."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from softac.errors import SoftacError
from softac.io.state import read_state
from softac.protocols import AgentLike
from softac.train.plan import no_update_warning

# Where a finished ``learn()`` leaves its training step (environments, their current observations,
# episode statistics, n-step tails) on the agent, with the step count and resume state it ended at.
# Why: a second ``learn()`` in the same process once rebuilt the step from the resume state, so
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


def last_scalars(resume: dict[str, Any]) -> dict[str, float]:
    """A checkpoint's latest logged metrics (progress.csv's loss, α, entropy and Q columns)."""
    value = resume.get("last_scalars", {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
        for k, v in value.items()
    ):
        raise SoftacError("the checkpoint's resume.last_scalars is not a table of finite numbers; it is corrupted")
    return {k: float(v) for k, v in value.items()}


def wall_time(resume: list[dict[str, Any]] | None) -> float:
    """The run's wall-clock seconds before this call (progress.csv's ``wall_time_s`` continues)."""
    wall = (resume or [{}])[0].get("wall_time_s", 0.0)
    if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not np.isfinite(wall):
        raise SoftacError(f"the checkpoint's resume.wall_time_s is {wall!r}, not a number; it is corrupted")
    return float(wall)


def notices(agent: AgentLike, run_dir: Path | None) -> None:
    """One line each for what the user should know before a run starts: where the environment comes
    from, a cost the user would not expect, a budget that makes no update, and how a checkpoint's
    run continues."""
    note = agent.env_source.notice()
    if note is not None and run_dir is not None:
        print(note, file=sys.stderr)
    for line in [*agent.start_notes(), no_update_warning(agent.config)]:
        if line is not None:
            print(line, file=sys.stderr)
    if live_step(agent) is not None:  # a second learn(): it continues the live environments
        return
    if agent.loaded_from is not None and not read_state(agent.loaded_from)["data"]["included"]:
        # Such a checkpoint resumed with an empty buffer and no word. Decision: allowed
        # (save(include_buffer=False) is how a small checkpoint is made), with one line.
        print(
            f"softac: note: {agent.loaded_from} holds no training data (saved without its replay buffer/rollout); "
            "the run continues from an empty buffer, so it is not identical to an uninterrupted one",
            file=sys.stderr,
        )
    resume = agent.resume_state or []
    if any(not r.get("collector", {}).get("at_episode_boundary", True) for r in resume):
        print(
            f"softac: note: the checkpoint at step {agent.env_steps} was taken mid-episode; the unfinished episodes "
            "restart from a reset, so the run continues correctly but not bit-identically to an uninterrupted one",
            file=sys.stderr,
        )
