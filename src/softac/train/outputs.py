"""Preparing a run's directories before training writes to them: writable, not someone else's run,
``config.json`` per learner, and ``runs.json`` at the top of a batched run."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from softac.analysis.plot import plot_runs
from softac.analysis.stats import write_summary
from softac.errors import SoftacError
from softac.io.files import loads_json, write_json_atomic
from softac.io.owned import clear_run
from softac.io.rundir import BATCH, learner_dirs, list_checkpoints, seed_layout
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


# The run directory each live agent last wrote (an agent trained in this process, then given a
# larger budget, continues its own run; see ``_check_target``).
_WROTE: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()


def _source_run(agent: AgentLike) -> Path | None:
    """The run directory the agent's state came from: the one it wrote in this process, or the
    one holding the checkpoint it was loaded from."""
    try:
        wrote = _WROTE.get(agent)
    except TypeError:  # an unhashable agent-like object: nothing recorded
        wrote = None
    if wrote is not None:
        return wrote
    if agent.loaded_from is None:
        return None
    parents = agent.loaded_from.resolve().parents  # RUN/checkpoints/step_N or RUN/seed_s/checkpoints/step_N
    return parents[2] if seed_layout(agent) else parents[1]


def _check_target(run_dir: Path, agent: AgentLike) -> None:
    """Why: ``--resume A --run-dir B`` (or ``SAC.load(A).learn(run_dir=B)``) wrote A's state
    over another run B of the same algorithm and environment (B's config.json, progress.csv and
    checkpoints replaced). A resumed agent continues its own run, or goes to a directory that
    holds no run."""
    source = _source_run(agent)
    if source is not None and run_dir.resolve() == source:
        return
    if _holds_run(run_dir):
        came = f" (it continues {source})" if source is not None else ""
        raise SoftacError(
            f"run directory {run_dir} holds a different run; a resumed run{came} continues in its own directory "
            "or in an empty/new --run-dir (nothing was changed)"
        )


def _config_problem(path: Path) -> tuple[str | None, str | None, str | None]:
    """(algo, env_id, problem) of a run's config.json; ``problem`` names what is wrong, or None."""
    try:
        old = loads_json(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, f"cannot be read ({exc})"
    except json.JSONDecodeError as exc:
        return None, None, f"is not valid JSON ({exc})"
    if not isinstance(old, dict):
        return None, None, "is not a JSON object"
    config = old.get("config")
    algo, env_id = old.get("algo"), config.get("env_id") if isinstance(config, dict) else None
    if not isinstance(algo, str):
        return None, None, "has no 'algo' field"
    if not isinstance(env_id, str):
        return algo, None, "has no 'config.env_id' field"
    return algo, env_id, None


def _same_run(run_dir: Path, agent: AgentLike, own: bool) -> None:
    """Resuming into ``run_dir`` must continue the run that is there, not another one.

    In the run's own directory (``own``: the checkpoint resumed from lies in it) ``config.json`` is derived
    from the checkpoint, which is checksummed and validated: whatever is wrong with it (unreadable,
    not an object, fields missing, or naming another algorithm, environment or seed) is rewritten
    from the checkpoint with one note naming the problem, never refused (a healthy
    run was refused as "holds a different run"). Only a ``config.json`` that is not a file (a
    directory, a link) is refused: softac did not write it and does not delete it."""
    path = run_dir / "config.json"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise SoftacError(f"run directory {run_dir}: config.json is not a regular file (a directory or a link), "
                          "which softac did not write and will not replace; move it away (nothing was changed)")
    if not path.exists():
        if own:
            print(f"softac: note: {path} is missing; rewriting it from the checkpoint", file=sys.stderr)
        return
    algo, env_id, problem = _config_problem(path)
    seed = _config_seed(path)
    if problem is None and (algo != agent.algo or env_id != agent.config.env_id
                            or (seed is not None and seed not in agent.seeds)):  # fmt: skip
        problem = f"names another run ({algo} on {env_id}" + (f", seed {seed}" if seed is not None else "") + ")"
    if problem is None:
        return
    if own:
        print(f"softac: note: {path} {problem}; rewriting it from the checkpoint", file=sys.stderr)
        return
    if problem.startswith("names another run"):
        raise SoftacError(
            f"run directory {run_dir} holds a different run ({algo} on {env_id}); choose another --run-dir"
        )
    raise SoftacError(
        f"run directory {run_dir}: config.json {problem}, so it cannot be told to hold this run; "
        "choose another --run-dir"
    )


def _config_seed(path: Path) -> int | None:
    try:
        old = loads_json(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    seed = old.get("config", {}).get("seed") if isinstance(old, dict) and isinstance(old.get("config"), dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _previous_preset(path: Path) -> Any:
    """The preset record of a run's config.json (None when it has none or cannot be read)."""
    try:
        old = loads_json(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return old.get("preset") if isinstance(old, dict) else None


def prepare(run_dir: Path, agent: AgentLike, overwrite: bool) -> list[Path]:
    """The learners' directories, checked and ready, with their ``config.json`` written."""
    _check_writable(run_dir)
    dirs = learner_dirs(run_dir, agent.seeds, seed_layout(agent))
    preset = getattr(agent, "preset", None)
    presets: list[Any] = [preset.record() if preset is not None else None] * len(dirs)
    if agent.env_steps == 0 and _holds_run(run_dir):
        if not overwrite:
            raise SoftacError(
                f"run directory {run_dir} already holds a run; use --resume {run_dir} to continue it, "
                "--overwrite to replace it, or another --run-dir"
            )
        clear_run(run_dir)
    elif agent.env_steps > 0:
        own = _source_run(agent) == run_dir.resolve()  # this run's own directory
        for k, d in enumerate(dirs):
            _same_run(d, agent, own)
            # A resumed agent is rebuilt from its checkpoint, which knows no preset: keep the record.
            if presets[k] is None and (d / "config.json").is_file():
                presets[k] = _previous_preset(d / "config.json")
        _check_target(run_dir, agent)
    if seed_layout(agent):
        write_json_atomic(
            run_dir / BATCH,
            {"algo": agent.algo, "env_id": agent.config.env_id, "seeds": list(agent.seeds),
             "config": agent.config.to_dict(), "env": agent.env_source.describe(), "preset": presets[0]},
        )  # fmt: skip
    for k, d in enumerate(dirs):
        _check_writable(d)
        write_json_atomic(
            d / "config.json",
            {"algo": agent.algo, "config": agent.learner_config(k).to_dict(), "torch": torch.__version__,
             "env": agent.env_source.describe(), "preset": presets[k]},
        )
    with contextlib.suppress(TypeError):
        _WROTE[agent] = run_dir.resolve()
    return dirs


def where_saved(agent: AgentLike, run_dir: Path | None) -> str:
    """What an error line says about the run's state on disk, read from the disk at that moment."""
    if run_dir is None:
        return "no checkpoint was written before it (no run directory)"
    found = list_checkpoints(learner_dirs(run_dir, agent.seeds, seed_layout(agent))[0])
    return f"the last good checkpoint is {found[-1]}" if found else "no checkpoint was written before it"


def figures(run_dir: Path, dirs: list[Path]) -> None:
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
