"""Callbacks for ``learn(..., callback=...)``: the caller's code, run at the training loop's events.

As in Stable-Baselines3, a callback is a function or an object with hooks, and a hook that returns
``False`` stops training. What softac does then: the run stops cleanly between two steps, a
checkpoint is written (with a run directory), and the run resumes exactly as after any other
checkpoint (``Agent.load(run_dir).learn(...)``, or ``learn`` again on the same agent).

Callbacks are code and are never saved: a checkpoint records nothing about them, and a resumed run
uses the callbacks its caller passes to that ``learn`` (a built-in's counters start again).

The hooks (each optional; each receives one :class:`CallbackInfo`):

- ``on_training_start(info)``: once, before the first step of this ``learn`` call;
- ``on_step(info) -> bool``: after every step of the loop (one step of every environment for the
  off-policy algorithms; one whole rollout for PPO, SB3's ``on_rollout_end``);
- ``on_evaluation(info) -> bool``: after each evaluation, with its returns (``info.eval_returns``);
- ``on_checkpoint(info) -> bool``: after each checkpoint the cadence or the end writes
  (``info.checkpoints``), never after the one written because of a stop or a signal;
- ``on_training_end(info)``: once, when the budget is reached or a hook stopped training (not
  after an error or a signal).

A plain function is called as ``on_step``. A list of callbacks runs each in order.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from softac.errors import SoftacError

HOOKS = ("on_training_start", "on_step", "on_evaluation", "on_checkpoint", "on_training_end")
_STOPPING = ("on_step", "on_evaluation", "on_checkpoint")


@dataclass(frozen=True)
class CallbackInfo:
    """What a hook sees. ``agent`` is the model being trained (SB3: ``self.model``); do not change
    its state from a hook if the run must stay exactly resumable."""

    agent: Any
    num_timesteps: int  # environment steps per learner so far (SB3's name)
    updates: int  # gradient steps per learner so far
    # per learner, the returns of the training episodes that ended during this step
    episode_returns: list[list[float]] = field(default_factory=list)
    eval_returns: np.ndarray | None = None  # (learners, episodes), on_evaluation only
    checkpoints: list[Path] = field(default_factory=list)  # on_checkpoint only (empty without a run_dir)

    @property
    def eval_return_mean(self) -> list[float]:
        """Per learner, the mean return of this evaluation (on_evaluation only)."""
        if self.eval_returns is None:
            raise AttributeError("eval_return_mean exists in on_evaluation only")
        return [float(v) for v in self.eval_returns.mean(axis=1)]


class Callback:
    """A base to subclass (optional: any object with some of the hooks works). Every hook does
    nothing and continues; ``self.agent`` is set when training starts (SB3: ``self.model``)."""

    agent: Any = None

    def on_training_start(self, info: CallbackInfo) -> None:
        return None

    def on_step(self, info: CallbackInfo) -> bool:
        return True

    def on_evaluation(self, info: CallbackInfo) -> bool:
        return True

    def on_checkpoint(self, info: CallbackInfo) -> bool:
        return True

    def on_training_end(self, info: CallbackInfo) -> None:
        return None


class StopTrainingOnRewardThreshold(Callback):
    """Stop once an evaluation's mean return reaches ``reward_threshold`` (SB3's callback of the same
    name, which SB3 runs from ``EvalCallback``; softac's evaluation is built in, so this is a hook
    on it). With several learners (seeds), when every learner has reached it: they train as one.
    ``verbose`` is accepted as in SB3; the stop is always reported in one line."""

    def __init__(self, reward_threshold: float, verbose: int = 0) -> None:
        if isinstance(reward_threshold, bool) or not isinstance(reward_threshold, numbers.Real):
            raise SoftacError(f"reward_threshold must be a number, got {reward_threshold!r}")
        if not np.isfinite(float(reward_threshold)):
            raise SoftacError(f"reward_threshold must be finite, got {reward_threshold!r}")
        self.reward_threshold: float = float(reward_threshold)
        self.verbose = verbose
        self.reason: str = ""

    def on_evaluation(self, info: CallbackInfo) -> bool:
        means = info.eval_return_mean
        if min(means) < self.reward_threshold:
            return True
        self.reason = f"the evaluation return {min(means):.2f} reached the threshold {self.reward_threshold:g}"
        return False


class StopTrainingOnNoModelImprovement(Callback):
    """Stop when the evaluation's mean return has not improved on its best for
    ``max_no_improvement_evals`` evaluations in a row, counting only after ``min_evals``
    evaluations (SB3's callback of the same name). With several learners, when none of them
    improved. The count starts again in each ``learn`` call (callbacks are not saved). ``verbose``
    is accepted as in SB3; the stop is always reported in one line."""

    def __init__(self, max_no_improvement_evals: int, min_evals: int = 0, verbose: int = 0) -> None:
        bounds = (("max_no_improvement_evals", max_no_improvement_evals, 1), ("min_evals", min_evals, 0))
        for name, value, low in bounds:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise SoftacError(f"{name} must be an integer >= {low}, got {value!r}")
        self.max_no_improvement_evals = int(max_no_improvement_evals)
        self.min_evals = int(min_evals)
        self.verbose = verbose
        self.best: list[float] | None = None
        self.evals = 0
        self.no_improvement = 0
        self.reason: str = ""

    def on_evaluation(self, info: CallbackInfo) -> bool:
        means = info.eval_return_mean
        self.evals += 1
        improved = self.best is None or any(m > b for m, b in zip(means, self.best, strict=True))
        self.best = means if self.best is None else [max(m, b) for m, b in zip(means, self.best, strict=True)]
        if self.evals <= self.min_evals:
            return True
        self.no_improvement = 0 if improved else self.no_improvement + 1
        if self.no_improvement < self.max_no_improvement_evals:
            return True
        self.reason = f"the evaluation return has not improved for {self.no_improvement} evaluations"
        return False


class _Function(Callback):
    def __init__(self, fn: Callable[[CallbackInfo], Any]) -> None:
        self.fn = fn

    def on_step(self, info: CallbackInfo) -> bool:
        return self.fn(info) is not False


class Hooks:
    """The callbacks of one ``learn`` call, as the training loop calls them."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        self.callbacks = list(callbacks)
        self.stopped_by: str | None = None  # what stopped training, for the note line

    def __call__(self, hook: str, info: CallbackInfo) -> None:
        for cb in self.callbacks:
            if hook == "on_training_start" and isinstance(cb, Callback):
                cb.agent = info.agent
            method = getattr(cb, hook, None)
            if method is None:
                continue
            result = method(info)
            if hook in _STOPPING and result is False and self.stopped_by is None:
                reason = getattr(cb, "reason", "") or f"{hook} returned False"
                self.stopped_by = f"{_name(cb)}: {reason}"

    @property
    def stop(self) -> bool:
        return self.stopped_by is not None


def _name(cb: Any) -> str:
    inner = getattr(cb, "fn", None)
    target = inner if isinstance(cb, _Function) else cb
    return getattr(target, "__qualname__", None) or type(target).__name__


def make_hooks(callback: Any) -> Hooks | None:
    """``learn``'s ``callback`` argument as the loop's hooks: None, a function, an object with at
    least one hook, or a list/tuple of those; anything else is one line naming what is accepted."""
    if callback is None:
        return None
    items = list(callback) if isinstance(callback, (list, tuple)) else [callback]
    out: list[Any] = []
    for cb in items:
        if any(callable(getattr(cb, hook, None)) for hook in HOOKS):
            out.append(cb)
        elif callable(cb) and not isinstance(cb, type):
            out.append(_Function(cb))
        else:
            raise SoftacError(
                f"callback must be a function of CallbackInfo, an object with any of {', '.join(HOOKS)} "
                f"(e.g. a softac.Callback), or a list of those; got {cb!r}"
            )
    return Hooks(out) if out else None
