"""Cross-checks of a checkpoint's ``state.json`` that go beyond each field's type: the resume
section (what a training run continues from) and the stored rows against the counters (
edited values crashed later with a traceback, or were accepted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from softac.env_rng import BIT_GENERATORS
from softac.errors import SoftacError
from softac.io.rundir import STATE


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


def check_resume(ckpt: Path, resume: dict[str, Any], n_envs: Any) -> None:
    """Every field of the resume section, checked before anything uses it. Why: an RNG state of
    2**200, an empty ``rng`` list, ``collector: "x"`` or ``wall_time_s: "abc"`` crashed with a
    traceback when the run resumed (or, worse, after its first steps)."""

    def bad(name: str, value: Any) -> SoftacError:
        return SoftacError(
            f"checkpoint {ckpt} has an invalid 'resume.{name}' in {STATE} ({_short(value)}); it is corrupted: "
            "use an earlier checkpoint"
        )

    collector = resume.get("collector", {})
    if not isinstance(collector, dict):
        raise bad("collector", collector)
    if "collector" in resume:
        rng = collector.get("rng")
        if not isinstance(rng, list) or not rng or (isinstance(n_envs, int) and len(rng) != n_envs):
            raise bad("collector.rng", rng)
        for gen in rng:
            name = gen.get("bit_generator") if isinstance(gen, dict) else None
            if isinstance(name, str) and name not in BIT_GENERATORS:  # a whitelist: never looked up by name
                raise SoftacError(
                    f"checkpoint {ckpt} has an invalid 'resume.collector.rng' in {STATE}: an environment random state "
                    f"names the generator {_short(name)}, expected one of {', '.join(BIT_GENERATORS)}; it is "
                    "corrupted: use an earlier checkpoint"
                )
            if not isinstance(name, str):
                raise bad("collector.rng", gen)
            try:
                BIT_GENERATORS[name]().state = gen  # a fresh generator: the same check the restore makes
            except Exception:
                raise bad("collector.rng", gen) from None
        if not isinstance(collector.get("at_episode_boundary"), bool):
            raise bad("collector.at_episode_boundary", collector.get("at_episode_boundary"))
    wall = resume.get("wall_time_s", 0.0)
    if not _finite_number(wall) or wall < 0:
        raise bad("wall_time_s", wall)
    recent = resume.get("recent_returns", [])
    if not isinstance(recent, list) or not all(_finite_number(v) for v in recent):
        raise bad("recent_returns", recent)
    flags = resume.get("recent_successes", [])
    if not isinstance(flags, list) or not all(_finite_number(v) and 0 <= v <= 1 for v in flags):
        raise bad("recent_successes", flags)
    scalars = resume.get("last_scalars", {})
    if not isinstance(scalars, dict) or not all(isinstance(k, str) and _finite_number(v) for k, v in scalars.items()):
        raise bad("last_scalars", scalars)
    if not isinstance(resume.get("pending_evaluation", False), bool):
        raise bad("pending_evaluation", resume.get("pending_evaluation"))


def check_data_counters(ckpt: Path, state: dict[str, Any]) -> None:
    """The stored rows against the step counter and the buffer's position (env_steps edited
    below the buffer's rows was accepted). Each step adds at most one row per environment, and a
    buffer that has not wrapped writes its next row right after its last one."""
    data, steps = state["data"], state["counters"]["env_steps"]
    if not data["included"] or "size" not in data:
        return
    size, cursor, capacity = data.get("size"), data.get("cursor"), state["config"].get("buffer_size")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (size, cursor)):
        raise SoftacError(f"checkpoint {ckpt} has an invalid 'data' record in {STATE} ({_short(data)}); corrupted")
    # Only for a checkpoint a training run wrote (it has the collector's state): rows put into the
    # buffer by hand (tests, a pre-filled buffer) and saved outside training stay loadable.
    if size > steps and "collector" in state["resume"]:
        raise SoftacError(
            f"checkpoint {ckpt} has inconsistent counters in {STATE}: its buffer holds {size} rows but env_steps "
            f"is {steps} (a step adds at most one row per environment); it is corrupted: use an earlier checkpoint"
        )
    if isinstance(capacity, int) and size < capacity and cursor != size:
        raise SoftacError(
            f"checkpoint {ckpt} has inconsistent counters in {STATE}: its buffer holds {size} of {capacity} rows "
            f"but its position is {cursor} (it must be {size}); it is corrupted: use an earlier checkpoint"
        )
