"""The training shell every algorithm shares: signals, logging, evaluation, checkpoint cadence and
divergence, around a per-family step (``FAMILY_STEPS``). It knows the agent protocol only.

With several learners (seeds) every one advances together; each has its own run directory,
logger, evaluation environment and checkpoints. A learner that diverges stops the whole run
(exit code 3, naming its seed): the learners share one update call, nothing non-finite is ever
checkpointed, so a resume could only restart all of them from their last common checkpoint
anyway — and the healthy seeds' last good checkpoints are kept.
"""

from __future__ import annotations

import functools
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
from softac.io.rundir import learner_dirs, list_checkpoints, prune_checkpoints, seed_layout, step_checkpoint_path
from softac.io.state import check_finite, save_checkpoint
from softac.logging import ProgressBar, RunLogger, csv_fields
from softac.plot import plot_runs
from softac.protocols import AgentLike
from softac.stats import write_summary
from softac.success import recent_successes, success_columns
from softac.train.carry import LIVE, notices, pending_evaluation, recent_returns, take_live_step, wall_time
from softac.train.offpolicy import OffPolicyStep
from softac.train.onpolicy import OnPolicyStep
from softac.train.outputs import prepare
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

    def __init__(self, agent: AgentLike, run_dir: Path | None, progress: bool, overwrite: bool) -> None:
        cfg = agent.config
        self.agent = agent
        resume = agent.resume_state
        # The training returns since the last evaluation are part of the exact state (without them,
        # train_return_mean differed after kill and resume although the weights were identical).
        self.recent: list[list[float]] = [recent_returns(r) for r in (resume or [{}] * agent.learners)]
        self.recent_success: list[list[float]] = [recent_successes(r) for r in (resume or [{}] * agent.learners)]
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
                 "recent_successes": list(self.recent_success[k]), "pending_evaluation": self.pending_eval}
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

    def loop(self, guard: SignalGuard) -> None:
        agent, cfg = self.agent, self.agent.config
        self.guard = guard
        if self.pending_eval:  # owed by the checkpoint a signal took during an evaluation
            self.evaluate(agent.env_steps)
            self.checkpoint()
        while agent.env_steps < cfg.total_steps:
            if guard.signum is not None:
                raise Interrupted(guard.signum, self.checkpoint())
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
            if _crossed(before, step, cfg.checkpoint_freq) or step >= cfg.total_steps:
                if not logged:  # never save diverged weights over the last good checkpoint
                    self.log_scalars(step)
                self.checkpoint()
        # Why here and not after ``close``: the snapshot reads the envs' RNG states, and a closed
        # AsyncVectorEnv refuses every call.
        agent.resume_state = self.snapshot()

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


def _where(agent: AgentLike, run_dir: Path | None) -> str:
    """What an error line says about the run's state on disk, read from the disk at that moment."""
    if run_dir is None:
        return "no checkpoint was written before it (no run directory)"
    found = list_checkpoints(learner_dirs(run_dir, agent.seeds, seed_layout(agent))[0])
    return f"the last good checkpoint is {found[-1]}" if found else "no checkpoint was written before it"


def train(agent: AgentLike, run_dir: Path | None, progress: bool = True, overwrite: bool = False) -> None:
    """Train ``agent`` to its config's ``total_steps``, writing ``run_dir`` if given (locked
    against a second process for the whole call, see ``softac.io.lock``). A failure names the
    last good checkpoint, which it never touches."""
    if agent.env_steps >= agent.config.total_steps and not pending_evaluation(agent.resume_state):
        raise SoftacError(f"the run is already at step {agent.env_steps}; pass a larger --total-steps to extend it")
    lock = RunLock(run_dir).acquire() if run_dir is not None else None
    try:
        notices(agent, run_dir)
        _train(agent, run_dir, progress, overwrite)
    except DivergenceError as exc:
        raise DivergenceError(
            f"training diverged at {exc}; {_where(agent, run_dir)}. Try a lower learning rate or a smaller --tau."
        ) from None
    except EnvError as exc:
        raise EnvError(f"{exc}; {_where(agent, run_dir)}") from exc.__cause__
    except WriteError as exc:
        raise WriteError(f"{exc}; {_where(agent, run_dir)}") from None
    finally:
        if lock is not None:
            lock.release()


def _train(agent: AgentLike, run_dir: Path | None, progress: bool, overwrite: bool) -> None:
    run = _Run(agent, run_dir, progress, overwrite)
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
        _figures(run_dir, run.dirs)


def _figures(run_dir: Path, dirs: list[Path]) -> None:
    """Each learner's learning curve; for several seeds also the aggregate: ``summary.csv`` (per
    evaluation step mean, median, IQM and 95% bootstrap intervals over seeds) and a figure with
    the interval as a band. A figure must never cost a finished run: failures are warnings."""
    jobs: list[tuple[Path, Callable[[], Path]]] = [
        (d / "learning_curve.png", functools.partial(plot_runs, [d], d / "learning_curve.png")) for d in dirs
    ]
    if len(dirs) > 1:
        jobs.append((run_dir / "summary.csv", functools.partial(write_summary, run_dir, run_dir / "summary.csv")))
        jobs.append((run_dir / "learning_curve.png",
                     functools.partial(plot_runs, [run_dir], run_dir / "learning_curve.png")))  # fmt: skip
    for path, job in jobs:
        try:
            job()
        except Exception as exc:
            print(f"softac: warning: could not write {path}: {exc}", file=sys.stderr)
