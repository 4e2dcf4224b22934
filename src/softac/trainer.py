"""The training loop every algorithm shares: collect → update (UTD) → log → evaluate → checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from softac.checkpoint import (
    check_finite,
    list_checkpoints,
    prune_checkpoints,
    save_checkpoint,
    step_checkpoint_path,
    write_json_atomic,
)
from softac.collector import Collector
from softac.envs import make_env, make_vector_env
from softac.errors import DivergenceError, SoftacError
from softac.evaluate import EVAL_SEED_OFFSET, evaluate
from softac.logging import RunLogger

if TYPE_CHECKING:
    from softac.agents.base import OffPolicyAgent


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint was saved (exit code 128 + signal number)."""

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint
        where = f"checkpoint saved to {checkpoint}" if checkpoint else "no run directory, nothing saved"
        super().__init__(f"interrupted by {signal.Signals(signum).name}; {where}")


class SignalGuard:
    """First SIGINT/SIGTERM: finish the current step, save, exit 130/143. Second: exit at once
    (the atomic write means the previous checkpoint is intact whatever is in flight)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum
        print(
            f"\nsoftac: {signal.Signals(signum).name} received, saving a checkpoint "
            "(signal again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def prepare_run_dir(run_dir: Path, agent: OffPolicyAgent, overwrite: bool) -> None:
    """Create/check the run directory: writable, and not someone else's run."""
    config_path = run_dir / "config.json"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SoftacError(f"run directory {run_dir} is not writable: {exc.strerror or exc}") from None
    existing = config_path.exists() or (run_dir / "progress.csv").exists() or list_checkpoints(run_dir)
    if not existing:
        return
    if agent.env_steps == 0:
        if not overwrite:
            raise SoftacError(
                f"run directory {run_dir} already holds a run; use --resume {run_dir} to continue it, "
                "--overwrite to replace it, or another --run-dir"
            )
        for name in ("config.json", "progress.csv", "learning_curve.png"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        shutil.rmtree(run_dir / "tb", ignore_errors=True)
        return
    if config_path.exists():
        try:
            old = json.loads(config_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("algo") != agent.algo or old.get("config", {}).get("env_id") != agent.config.env_id:
            raise SoftacError(
                f"run directory {run_dir} holds a different run ({old.get('algo')} on "
                f"{old.get('config', {}).get('env_id')}); choose another --run-dir"
            )


def _crossed(before: int, after: int, every: int) -> bool:
    return every > 0 and before // every != after // every


def train(agent: OffPolicyAgent, run_dir: Path | None, progress: bool = True, overwrite: bool = False) -> None:
    cfg = agent.config
    if agent.env_steps >= cfg.total_steps:
        raise SoftacError(
            f"the run is already at step {agent.env_steps}; pass a larger --total-steps to extend it"
        )
    if run_dir is not None:
        prepare_run_dir(run_dir, agent, overwrite)
        write_json_atomic(
            run_dir / "config.json", {"algo": agent.algo, "config": cfg.to_dict(), "torch": torch.__version__}
        )
    resume = dict(agent.resume_state or {})
    envs = make_vector_env(cfg.env_id, cfg.n_envs, cfg.vectorization)
    # Continuing without saved env state (e.g. a checkpoint saved outside training) draws fresh
    # episodes from another seed rather than replaying the first ones.
    collector = Collector(envs, agent.scaler, cfg.seed + agent.env_steps, cfg.skip_nonfinite)
    if "collector" in resume:
        collector.restore(resume["collector"])
    eval_env = make_env(cfg.env_id)
    logger = RunLogger(run_dir, cfg.total_steps, agent.env_steps, progress)
    wall_offset = float(resume.get("wall_time_s", 0.0))
    t_start = time.perf_counter()
    existing = list_checkpoints(run_dir) if run_dir is not None else []
    last_ckpt: Path | None = existing[-1] if existing else None
    recent_returns: list[float] = []
    metrics: dict[str, Tensor] = {}
    rate_mark = (time.perf_counter(), agent.env_steps)
    steps_per_s = float("nan")
    guard = SignalGuard()

    def snapshot() -> dict[str, Any]:
        return {
            "collector": collector.state(),
            "wall_time_s": wall_offset + time.perf_counter() - t_start,
        }

    def checkpoint() -> Path | None:
        nonlocal last_ckpt
        agent.resume_state = snapshot()
        if run_dir is None:
            return None
        path = save_checkpoint(agent, step_checkpoint_path(run_dir, agent.env_steps))
        prune_checkpoints(run_dir, cfg.keep_checkpoints)
        last_ckpt = path
        return path

    def log_scalars(step: int) -> None:
        nonlocal rate_mark, steps_per_s
        now = time.perf_counter()
        steps_per_s = (step - rate_mark[1]) / max(1e-9, now - rate_mark[0])
        rate_mark = (now, step)
        values = {"time/steps_per_s": steps_per_s}
        if metrics:
            names = list(metrics)
            stacked = torch.stack([metrics[n].float() for n in names]).tolist()  # the one host sync
            for name, value in zip(names, stacked, strict=True):
                if not np.isfinite(value):
                    raise DivergenceError(f"step {step}: {name} became {value}")
                values[name] = value
            bad = check_finite(agent)
            if bad is not None:
                raise DivergenceError(f"step {step}: parameter {bad} became non-finite")
        logger.scalars(step, values)

    try:
        while agent.env_steps < cfg.total_steps:
            if guard.signum is not None:
                raise Interrupted(guard.signum, checkpoint())
            before = agent.env_steps
            action = agent.explore(collector.observe(before))
            # Why: a diverged policy emits NaN actions; stepping the env with them made the *env*
            # return NaN observations, reported as a bad environment (exit 2, "--skip-nonfinite",
            # which would then silently drop every transition). Name the real cause instead.
            # The action is already a host array, so this costs no device sync.
            if not np.isfinite(action).all():
                raise DivergenceError(f"step {before}: the policy's action became non-finite")
            tr = collector.step(action, before)
            if len(tr.reward):
                agent.buffer.add(tr.obs, tr.action, tr.reward, tr.terminated, tr.next_obs)
            agent.env_steps += cfg.n_envs
            for _ in range(agent.updates_due()):
                metrics = agent.update(agent.buffer.sample(cfg.batch_size))
            step = agent.env_steps
            for ret, length in zip(tr.episode_returns, tr.episode_lengths, strict=True):
                agent.episodes += 1
                recent_returns.append(ret)
                logger.episode(step, ret, length)
            logger.advance(cfg.n_envs)

            if _crossed(before, step, cfg.log_freq):
                log_scalars(step)
            if _crossed(before, step, cfg.eval_freq) or step >= cfg.total_steps:
                returns = evaluate(agent, eval_env, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET)
                logger.evaluation(
                    step,
                    {
                        "step": step,
                        "wall_time_s": wall_offset + time.perf_counter() - t_start,
                        "updates": agent.updates,
                        "episodes": agent.episodes,
                        "eval_return_mean": float(returns.mean()),
                        "eval_return_std": float(returns.std()),
                        "train_return_mean": float(np.mean(recent_returns)) if recent_returns else float("nan"),
                        "steps_per_s": steps_per_s,
                    },
                )
                recent_returns.clear()
            if _crossed(before, step, cfg.checkpoint_freq) or step >= cfg.total_steps:
                # Never save diverged weights over the last good checkpoint.
                if not _crossed(before, step, cfg.log_freq):
                    log_scalars(step)
                checkpoint()
        # Why here and not after ``finally``: the snapshot reads the envs' RNG states, and a closed
        # AsyncVectorEnv refuses every call (ClosedEnvironmentError at the end of every
        # --vectorization async run).
        agent.resume_state = snapshot()
    except DivergenceError as exc:
        where = f"the last good checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written before it"
        raise DivergenceError(
            f"training diverged at {exc}; {where}. Try a lower learning rate or a smaller --tau."
        ) from None
    finally:
        guard.restore()
        logger.close()
        envs.close()
        eval_env.close()
    if run_dir is not None:
        from softac.plot import plot_runs

        try:
            plot_runs([run_dir], run_dir / "learning_curve.png")
        except Exception as exc:  # a figure must never cost a finished run
            print(f"softac: warning: could not draw the learning curve: {exc}", file=sys.stderr)
