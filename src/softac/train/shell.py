"""The training shell every algorithm shares: signals, logging, evaluation, checkpoint cadence and
divergence, around a per-family step (``FAMILY_STEPS``). It knows the agent protocol only.

With several learners (seeds) every one advances together; each has its own run directory,
logger, evaluation environment and checkpoints. A learner that diverges stops the whole run
(exit code 3, naming its seed): the learners share one update call, nothing non-finite is ever
checkpointed, so a resume could only restart all of them from their last common checkpoint
anyway — and the healthy seeds' last good checkpoints are kept.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac.accel.runner import note_auto_compile
from softac.errors import DivergenceError, EnvError, SoftacError, WriteError
from softac.evaluate import EVAL_SEED_OFFSET, EvaluationStopped, evaluate
from softac.io.lock import RunLock
from softac.io.rundir import prune_checkpoints, step_checkpoint_path
from softac.io.state import check_finite, save_checkpoint
from softac.logging import ProgressBar, RunLogger, csv_fields
from softac.protocols import AgentLike
from softac.success import recent_successes, success_columns
from softac.train.callbacks import CallbackInfo, Hooks, make_hooks
from softac.train.carry import (
    LIVE,
    last_scalars,
    notices,
    pending_evaluation,
    recent_returns,
    take_live_step,
    wall_time,
)  # fmt: skip
from softac.train.offpolicy import OffPolicyStep
from softac.train.onpolicy import OnPolicyStep
from softac.train.outputs import figures, prepare, where_saved
from softac.train.signals import Interrupted, SignalGuard

FAMILY_STEPS: dict[str, Callable[[Any, list[dict[str, Any]] | None], Any]] = {
    "off-policy": OffPolicyStep,
    "on-policy": OnPolicyStep,
}


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


def _who(agent: AgentLike, k: int) -> str:
    return f" (seed {agent.seeds[k]})" if agent.learners > 1 else ""


class _Run:
    """One call of ``train``: the loop's state and the things it does at its cadences."""

    def __init__(
        self, agent: AgentLike, run_dir: Path | None, progress: bool, overwrite: bool, hooks: Hooks | None = None
    ) -> None:
        cfg = agent.config
        self.agent = agent
        self.hooks = hooks
        resume = agent.resume_state
        # The training returns since the last evaluation are part of the exact state (without them,
        # train_return_mean differed after kill and resume although the weights were identical).
        self.recent: list[list[float]] = [recent_returns(r) for r in (resume or [{}] * agent.learners)]
        self.recent_success: list[list[float]] = [recent_successes(r) for r in (resume or [{}] * agent.learners)]
        # The latest logged metrics (losses, α, entropy, Q) per learner: progress.csv's row at an
        # evaluation reads them, so the first row after a resume must have them as the uninterrupted
        # run has (they were empty there).
        self.scalars: list[dict[str, float]] = [last_scalars(r) for r in (resume or [{}] * agent.learners)]
        self.wall_offset = wall_time(resume)
        self.pending_eval = pending_evaluation(resume)
        self.guard: SignalGuard | None = None
        # The environments first, then the run directory: an environment that cannot be built
        # refuses the run before anything is written.
        self.step = take_live_step(agent)
        try:
            if self.step is None:
                self.step = FAMILY_STEPS[agent.family](agent, resume)
        except (KeyError, TypeError, ValueError, OverflowError, IndexError, AttributeError) as exc:
            if not resume:
                raise
            # An edited resume section (RNG state 2**200, empty rng, collector "x") crashed here with a traceback.
            raise SoftacError(
                f"the checkpoint's resume section in state.json is invalid ({type(exc).__name__}: {exc}); "
                "it is corrupted: use an earlier checkpoint"
            ) from None
        self.eval_envs: list[Any] = []
        self.loggers: list[RunLogger] = []
        try:
            self.eval_envs = agent.env_source.evaluation_envs(agent.learners)
            self.dirs = prepare(run_dir, agent, overwrite) if run_dir is not None else []
            self.loggers = [RunLogger(d, agent.env_steps, csv_fields(agent.family)) for d in self.dirs]
            for logger, scalars in zip(self.loggers, self.scalars, strict=False):  # none without a run_dir
                logger.last_scalars.update(scalars)
        except BaseException:
            self.close()
            raise
        if cfg.compile_update is None and cfg.compiles(agent.device.type) and getattr(agent, "encoder", None) is None:
            note_auto_compile()  # before the bar: the first update will take tens of seconds
        # The step the run will end at (PPO's last rollout may pass total_steps): the bar's total.
        final_step = getattr(self.step, "final_step", None)
        total = final_step(cfg.total_steps) if final_step is not None else cfg.total_steps
        self.bar = ProgressBar(total, agent.env_steps, progress)
        self.t_start = time.perf_counter()
        self.metrics: dict[str, Tensor] = {}
        self.rate_mark = (time.perf_counter(), agent.env_steps)
        self.steps_per_s = float("nan")

    def wall(self) -> float:
        return self.wall_offset + time.perf_counter() - self.t_start

    def snapshot(self) -> list[dict[str, Any]]:
        return [{**self.step.state(k), "wall_time_s": self.wall(), "recent_returns": list(self.recent[k]),
                 "recent_successes": list(self.recent_success[k]), "pending_evaluation": self.pending_eval,
                 "last_scalars": dict(self.scalars[k])}
                for k in range(self.agent.learners)]  # fmt: skip

    def checkpoint(self) -> Path | None:
        agent = self.agent
        agent.resume_state = self.snapshot()
        if not self.dirs:
            return None
        paths = [save_checkpoint(agent, k, step_checkpoint_path(d, agent.env_steps)) for k, d in enumerate(self.dirs)]
        # Pruned only once every learner's new checkpoint exists: a crash in between leaves a step
        # that all of them have (see softac.io.load).
        for d in self.dirs:
            prune_checkpoints(d, agent.config.keep_checkpoints)
        return paths[0]

    def log_scalars(self, step: int) -> None:
        agent = self.agent
        now = time.perf_counter()
        self.steps_per_s = (step - self.rate_mark[1]) / max(1e-9, now - self.rate_mark[0])
        self.rate_mark = (now, step)
        per_learner: list[dict[str, float]] = [{"time/steps_per_s": self.steps_per_s} for _ in range(agent.learners)]
        if self.metrics:
            names = list(self.metrics)
            # The one host sync of the cadence: every metric of every learner in one transfer.
            table = torch.stack([self.metrics[n].float().reshape(agent.learners) for n in names]).tolist()
            for name, row in zip(names, table, strict=True):
                for k, value in enumerate(row):
                    if not np.isfinite(value):
                        raise DivergenceError(f"step {step}: {name} became {value}{_who(agent, k)}")
                    per_learner[k][name] = value
            for k, bad in enumerate(check_finite(agent)):
                if bad is not None:
                    raise DivergenceError(f"step {step}: parameter {bad} became non-finite{_who(agent, k)}")
        for k, values in enumerate(per_learner):
            self.scalars[k].update({n: v for n, v in values.items() if not n.startswith("time/")})
        for logger, values in zip(self.loggers, per_learner, strict=False):
            logger.scalars(step, values)

    def evaluate(self, step: int) -> None:
        agent, cfg = self.agent, self.agent.config
        seeds = [s + EVAL_SEED_OFFSET for s in agent.seeds]
        guard = self.guard
        # Why a checkpoint of the training state and a flag, not a wait: an evaluation that never ends
        # (a huge max_episode_steps) kept a SIGTERM'd run waiting until the scheduler's SIGKILL. The
        # checkpoint says the evaluation at this step is still owed; a resume does it first, so its
        # progress.csv equals an uninterrupted run's.
        self.pending_eval = True
        try:
            success = np.full((agent.learners, cfg.eval_episodes), np.nan)
            returns = evaluate(agent, self.eval_envs, cfg.eval_episodes, seeds, cfg.skip_nonfinite,
                               stop=None if guard is None else lambda: guard.signum is not None, success=success)
        except EvaluationStopped:
            assert guard is not None and guard.signum is not None
            raise Interrupted(guard.signum, self.checkpoint()) from None
        self.pending_eval = False
        self.bar.note("eval", float(returns.mean()))
        columns = [success_columns(success[k].tolist(), self.recent_success[k]) for k in range(agent.learners)]
        if np.isfinite(success).any():
            self.bar.note("success", float(np.nanmean(success)), ".2f")
        for k, logger in enumerate(self.loggers):
            recent = self.recent[k]
            logger.evaluation(step, {
                "step": step, "wall_time_s": self.wall(), "updates": agent.updates, "episodes": agent.episodes[k],
                "eval_return_mean": float(returns[k].mean()), "eval_return_std": float(returns[k].std()),
                "train_return_mean": float(np.mean(recent)) if recent else float("nan"),
                "steps_per_s": self.steps_per_s, **columns[k],
            })  # fmt: skip
        for recent in (*self.recent, *self.recent_success):
            recent.clear()
        self.hook("on_evaluation", eval_returns=returns)

    def hook(self, name: str, **extra: Any) -> None:
        """Call the caller's callbacks (``softac.train.callbacks``); one returning False stops the run."""
        if self.hooks is not None:
            self.hooks(name, CallbackInfo(self.agent, self.agent.env_steps, self.agent.updates, **extra))

    def loop(self, guard: SignalGuard) -> None:
        agent, cfg = self.agent, self.agent.config
        self.guard = guard
        self.hook("on_training_start")
        if self.pending_eval:  # owed by the checkpoint a signal took during an evaluation
            self.evaluate(agent.env_steps)
            self.checkpoint()
        while agent.env_steps < cfg.total_steps:
            if guard.signum is not None:
                raise Interrupted(guard.signum, self.checkpoint())
            if self.hooks is not None and self.hooks.stop:  # its checkpoint is written: see below
                break
            before = agent.env_steps
            result = self.step()
            step = agent.env_steps
            if result.metrics:
                self.metrics = result.metrics
            for k, (rets, lens) in enumerate(zip(result.episode_returns, result.episode_lengths, strict=True)):
                self.recent_success[k] += [f for f in result.episode_successes[k] if f is not None]
                for ret, length in zip(rets, lens, strict=True):
                    agent.episodes[k] += 1
                    self.recent[k].append(ret)
                    if self.loggers:
                        self.loggers[k].episode(step, ret, length)
                    if k == 0:
                        self.bar.note("ep_return", ret)
            self.bar.advance(step - before)
            logged = _crossed(before, step, cfg.log_freq)
            if logged:
                self.log_scalars(step)
            if _crossed(before, step, cfg.eval_freq) or step >= cfg.total_steps:
                self.evaluate(step)
            saved = _crossed(before, step, cfg.checkpoint_freq) or step >= cfg.total_steps
            if saved:
                if not logged:  # never save diverged weights over the last good checkpoint
                    self.log_scalars(step)
                self.checkpoint()
                self.hook("on_checkpoint", checkpoints=[step_checkpoint_path(d, step) for d in self.dirs])
            self.hook("on_step", episode_returns=result.episode_returns)
            # A callback's stop is a checkpoint like a signal's, between two steps: it resumes exactly.
            if self.hooks is not None and self.hooks.stop and not saved:
                if not logged:
                    self.log_scalars(step)
                self.checkpoint()
        if self.hooks is not None and self.hooks.stop:
            where = f"; checkpoint at {step_checkpoint_path(self.dirs[0], agent.env_steps)}" if self.dirs else ""
            print(f"softac: training stopped at step {agent.env_steps} by {self.hooks.stopped_by}{where}",
                  file=sys.stderr)  # fmt: skip
        # Why here and not after ``close``: the snapshot reads the envs' RNG states, and a closed
        # AsyncVectorEnv refuses every call.
        agent.resume_state = self.snapshot()
        self.hook("on_training_end")

    def close(self, keep_step: bool = False) -> None:
        """``keep_step``: leave the training step (its live environments) on the agent for the next
        ``learn()`` (see ``LIVE``); only after the loop ended between two steps."""
        for logger in self.loggers:
            logger.close()
        if hasattr(self, "bar"):
            self.bar.close()
        if keep_step:
            setattr(self.agent, LIVE, (self.step, self.agent.env_steps, self.agent.resume_state))
        elif self.step is not None:
            self.step.close()
        for env in self.eval_envs:
            self.agent.env_source.release(env)


def train(
    agent: AgentLike, run_dir: Path | None, progress: bool = True, overwrite: bool = False, callback: Any = None
) -> None:
    """Train ``agent`` to its config's ``total_steps``, writing ``run_dir`` if given (locked
    against a second process for the whole call, see ``softac.io.lock``). A failure names the
    last good checkpoint, which it never touches. ``callback``: see ``softac.train.callbacks``."""
    hooks = make_hooks(callback)
    if agent.env_steps >= agent.config.total_steps and not pending_evaluation(agent.resume_state):
        raise SoftacError(f"the run is already at step {agent.env_steps}; pass a larger --total-steps to extend it")
    lock = RunLock(run_dir).acquire() if run_dir is not None else None
    try:
        notices(agent, run_dir)
        _train(agent, run_dir, progress, overwrite, hooks)
    except DivergenceError as exc:
        raise DivergenceError(
            f"training diverged at {exc}; {where_saved(agent, run_dir)}. Try a lower learning rate or a smaller --tau."
        ) from None
    except EnvError as exc:
        raise EnvError(f"{exc}; {where_saved(agent, run_dir)}") from exc.__cause__
    except WriteError as exc:
        raise WriteError(f"{exc}; {where_saved(agent, run_dir)}") from None
    finally:
        if lock is not None:
            lock.release()


def _train(agent: AgentLike, run_dir: Path | None, progress: bool, overwrite: bool, hooks: Hooks | None) -> None:
    run = _Run(agent, run_dir, progress, overwrite, hooks)
    guard = SignalGuard()
    ended_between_steps = False
    try:
        run.loop(guard)
        ended_between_steps = True
    except Interrupted:
        ended_between_steps = True  # raised between two steps (or in an evaluation): the envs are whole
        raise
    finally:
        guard.restore()
        run.close(keep_step=ended_between_steps)
    if run_dir is not None:
        figures(run_dir, run.dirs)
