"""Preparing a run's directories before training writes to them: writable, not someone else's run,
``config.json`` per learner, and ``runs.json`` at the top of a batched run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from softac.errors import SoftacError
from softac.io.files import write_json_atomic
from softac.io.rundir import BATCH, learner_dirs, list_checkpoints
from softac.protocols import AgentLike

_RUN_FILES = ("config.json", "progress.csv", "learning_curve.png", "summary.csv", BATCH)


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise SoftacError(f"run directory {run_dir} is not writable: {exc.strerror or exc}") from None


def _holds_run(run_dir: Path) -> bool:
    return (
        any((run_dir / name).exists() for name in _RUN_FILES)
        or bool(list_checkpoints(run_dir))
        or any(run_dir.glob("seed_*/config.json"))
    )


def _clear(run_dir: Path) -> None:
    """What ``--overwrite`` replaces: softac's own files, nothing else the directory holds."""
    for name in _RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    shutil.rmtree(run_dir / "tb", ignore_errors=True)
    for sub in run_dir.glob("seed_*"):
        if (sub / "config.json").is_file():
            _clear(sub)


def _same_run(run_dir: Path, agent: AgentLike, k: int) -> dict[str, Any]:
    """The config.json of the run being continued in ``run_dir``, checked to be this agent's run."""
    try:
        old = json.loads((run_dir / "config.json").read_text())
        algo, env_id = old["algo"], old["config"]["env_id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SoftacError(
            f"run directory {run_dir} has an unreadable config.json; resume from its checkpoints with "
            "--resume, or choose another --run-dir"
        ) from None
    if algo != agent.algo or env_id != agent.config.env_id:
        raise SoftacError(
            f"run directory {run_dir} holds a different run ({algo} on {env_id}); choose another --run-dir"
        )
    return dict(old)


def prepare(run_dir: Path, agent: AgentLike, overwrite: bool) -> list[Path]:
    """The learners' directories, checked and ready, with their ``config.json`` written."""
    _check_writable(run_dir)
    dirs = learner_dirs(run_dir, agent.seeds)
    presets: list[Any] = [agent.preset.record() if agent.preset is not None else None] * len(dirs)
    if agent.env_steps == 0 and _holds_run(run_dir):
        if not overwrite:
            raise SoftacError(
                f"run directory {run_dir} already holds a run; use --resume {run_dir} to continue it, "
                "--overwrite to replace it, or another --run-dir"
            )
        _clear(run_dir)
    elif agent.env_steps > 0:
        for k, d in enumerate(dirs):
            if (d / "config.json").exists():
                # A resumed agent is rebuilt from its checkpoint, which knows no preset: keep the record.
                previous = _same_run(d, agent, k)
                if presets[k] is None:
                    presets[k] = previous.get("preset")
    if agent.learners > 1:
        write_json_atomic(
            run_dir / BATCH,
            {"algo": agent.algo, "env_id": agent.config.env_id, "seeds": list(agent.seeds),
             "config": agent.config.to_dict(), "preset": presets[0]},
        )  # fmt: skip
    for k, d in enumerate(dirs):
        _check_writable(d)
        write_json_atomic(
            d / "config.json",
            {"algo": agent.algo, "config": agent.learner_config(k).to_dict(), "preset": presets[k],
             "torch": torch.__version__},
        )  # fmt: skip
    return dirs
