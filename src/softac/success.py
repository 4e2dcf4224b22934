"""Episode success, as goal-conditioned environments report it.

Gymnasium-Robotics' Fetch tasks (and most robotics suites) put ``info["is_success"]`` in every
step's info, its mazes ``info["success"]``. The success of an episode is the flag at the
episode's *last* step, as Stable-Baselines3's ``Monitor`` and ``EvalCallback`` define it (a
policy that touches the goal and leaves it has not succeeded). A run whose environment reports
neither key has no success at all: nothing is logged, no column appears.

A flag must be a number in [0, 1] (``True``/``False``, 0/1, ``np.float32(1.0)``); a string, a
list, ``None`` or NaN is the environment's bug, and would turn every success rate after it into
nonsense, so it is refused in one line instead of logged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from softac.errors import SoftacError

# Read in this order: Fetch's key first, then the mazes'.
SUCCESS_KEYS = ("is_success", "success")


def success_value(value: Any, where: str, key: str = "is_success") -> float:
    """One reported flag ``info[key]`` as a float in [0, 1]; a :class:`SoftacError` naming ``where``
    otherwise."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    ok = isinstance(value, (bool, np.bool_)) or (
        isinstance(value, numbers.Real) and math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0
    )
    if not ok:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise SoftacError(
            f"{where} reported info['{key}'] = {shown} ({type(value).__name__}); a success flag must be a number "
            "in [0, 1] (True/False, 0/1): fix the environment"
        )
    return float(value)


def info_success(info: Mapping[str, Any], where: str) -> float | None:
    """The success flag in one environment's step ``info``, or None when it reports none."""
    for key in SUCCESS_KEYS:
        if key in info:
            return success_value(info[key], where, key)
    return None


def vector_success(infos: Mapping[str, Any], index: int, num_envs: int, where: str) -> float | None:
    """Sub-environment ``index``'s flag in a vector env's step infos, or None.

    Gymnasium's vector envs stack each key into an array with a ``_key`` mask of the sub-envs that
    reported it; ``softac.envs.SingleVectorEnv`` passes its one environment's info dict as it is."""
    for key in SUCCESS_KEYS:
        if key not in infos:
            continue
        mask = infos.get(f"_{key}")
        if mask is None:
            if num_envs == 1:
                return success_value(infos[key], where, key)
            values = infos[key]
            if isinstance(values, (np.ndarray, Sequence)) and not isinstance(values, str) and len(values) == num_envs:
                return success_value(values[index], where, key)
            return success_value(values, where, key)  # a single value for many envs: refused unless it is a number
        if bool(np.asarray(mask)[index]):
            return success_value(np.asarray(infos[key], dtype=object)[index], where, key)
    return None


def success_rate(flags: Sequence[float | None]) -> float | None:
    """The mean of the reported flags; None when none was reported."""
    reported = [f for f in flags if f is not None and not math.isnan(f)]
    return float(np.mean(reported)) if reported else None


def success_columns(eval_flags: Sequence[float], train_flags: Sequence[float]) -> dict[str, float]:
    """progress.csv's success columns for one evaluation row: ``eval_success_rate`` over the
    evaluation episodes and ``train_success_rate`` over the training episodes that ended since the
    previous row (NaN when none did), or nothing at all when neither reported a flag."""
    eval_rate, train_rate = success_rate(eval_flags), success_rate(train_flags)
    if eval_rate is None and train_rate is None:
        return {}
    return {
        "eval_success_rate": math.nan if eval_rate is None else eval_rate,
        "train_success_rate": math.nan if train_rate is None else train_rate,
    }


def recent_successes(resume: Mapping[str, Any]) -> list[float]:
    """A checkpoint's training-episode success flags since its last evaluation (part of the exact
    state, as its returns are); a checkpoint of a run without success has none."""
    value = resume.get("recent_successes", [])
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value
    ):
        raise SoftacError("the checkpoint's resume.recent_successes is not a list of numbers in [0, 1]; corrupted")
    return [float(v) for v in value]
