"""The run-directory layout: where checkpoints go, which are complete, which to prune.

A single run::

    RUN/config.json, progress.csv, tb/, learning_curve.png
    RUN/checkpoints/step_NNNNNNNNNN/   (state.json, model.safetensors, buffer.safetensors)

A batched run of several seeds holds one such directory per seed, ``RUN/seed_<s>/``, so every
tool that reads a single run works on any of them, plus the aggregates at ``RUN/`` itself
(``runs.json`` naming the seeds, ``summary.csv``, ``learning_curve.png``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

from softac.errors import SoftacError
from softac.io.files import loads_json, refuse_foreign

STATE = "state.json"
_CKPT_FILES = (STATE, "model.safetensors", "buffer.safetensors")  # what a checkpoint directory holds
BATCH = "runs.json"  # marks a batched run directory and lists its seeds
_STEP_DIR = re.compile(r"^step_(\d{10})$")


class NoCheckpoint(SoftacError):
    """A run directory without any checkpoint: ``--resume`` restarts it from its config.json."""


def as_path(value: object, what: str) -> Path:
    """A path argument of the Python API (``load``, ``save``, ``learn(run_dir=)``): a str or
    os.PathLike, non-empty. ``SAC.load(123)`` raised a TypeError traceback, ``run_dir=""`` wrote
    into the current directory without a word."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise SoftacError(f"{what} must be a path (str or os.PathLike), got {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise SoftacError(f"{what} must be a non-empty path, got {value!r}")
    return Path(text)


def step_checkpoint_path(run_dir: Path, env_steps: int) -> Path:
    return run_dir / "checkpoints" / f"step_{env_steps:010d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete step checkpoints of a run directory, oldest first (``.tmp`` ones are ignored)."""
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if _STEP_DIR.match(p.name) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: p.name)


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints, and stale ``.tmp`` directories."""
    for old in list_checkpoints(run_dir)[:-keep]:
        # Why rename first: rmtree deletes file by file, so a kill midway left a step_* directory
        # that still had state.json but no model.safetensors, listed as a complete checkpoint that
        # does not load. The rename is atomic: the checkpoint is either whole or not listed.
        trash = old.with_name(f"{old.name}.trash-{os.getpid()}")
        old.rename(trash)
        foreign = [p for p in trash.iterdir() if p.name not in _CKPT_FILES or p.is_symlink() or not p.is_file()]
        if not foreign:
            shutil.rmtree(trash, ignore_errors=True)
            continue
        # Something softac did not write was put inside: only softac's files go, the rest stays
        # where its owner put it (no longer a checkpoint: it has no state.json).
        for name in _CKPT_FILES:
            (trash / name).unlink(missing_ok=True)
        trash.rename(old)
        print(f"softac: note: pruned the checkpoint {old} but kept {', '.join(p.name for p in foreign[:3])} in it "
              "(not written by softac)", file=sys.stderr)  # fmt: skip
    ckpt_dir = run_dir / "checkpoints"
    if ckpt_dir.is_dir():
        for p in ckpt_dir.iterdir():
            if ".old-" in p.name and not (ckpt_dir / p.name.split(".old-")[0]).exists():
                p.rename(ckpt_dir / p.name.split(".old-")[0])  # a replace cut off mid-way: keep the old
            elif ".tmp-" in p.name or ".old-" in p.name or ".trash-" in p.name:
                shutil.rmtree(p, ignore_errors=True)


def holds_run(run_dir: Path) -> bool:
    """A directory with softac's run files (config.json, runs.json) or checkpoints in it."""
    return (run_dir / "config.json").is_file() or (run_dir / BATCH).is_file() or bool(list_checkpoints(run_dir))


def seed_layout(agent: object) -> bool:
    """Whether the agent's run has one ``seed_<s>/`` per learner: several learners, or a run made
    with ``--seeds`` (``--seeds 7`` makes ``DIR/seed_7/`` as ``--help`` promises) or loaded
    from a batched run directory (a one-seed ``runs.json`` sent a resume to the wrong directory)."""
    seeds = getattr(agent, "seeds", ())
    return bool(getattr(agent, "seed_dirs", False)) or len(seeds) > 1


def learner_dirs(run_dir: Path, seeds: tuple[int, ...], batched: bool | None = None) -> list[Path]:
    """Where each learner writes: the run directory itself for a single run, ``seed_<s>/`` each
    for a batched one."""
    if not (len(seeds) > 1 if batched is None else batched):
        return [run_dir]
    return [run_dir / f"seed_{s}" for s in seeds]


def batched_seeds(run_dir: Path) -> list[int] | None:
    """The seeds of a batched run directory (from ``runs.json``), or None for any other path."""
    marker = run_dir / BATCH
    if not marker.is_file():
        return None
    try:
        seeds = loads_json(marker.read_text())["seeds"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SoftacError(f"{marker} is unreadable ({exc}); it should list the run's seeds") from None
    if not isinstance(seeds, list) or not seeds or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        raise SoftacError(f"{marker} does not list the run's seeds as non-negative integers")
    return seeds


def _seed_runs(path: Path) -> list[Path]:
    """``seed_<s>/`` subdirectories that hold a run (a batched run's learners)."""
    subs = [p for p in path.glob("seed_*") if re.fullmatch(r"seed_\d+", p.name) and p.is_dir()]
    return sorted((p for p in subs if (p / "config.json").is_file() or list_checkpoints(p)), key=lambda p: p.name)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory itself, or the newest checkpoint of a run directory. What is missing is
    named: a run's ``runs.json``, a checkpoint's ``state.json``, or the checkpoints themselves."""
    if not path.exists():
        raise SoftacError(f"{path} does not exist")
    if path.is_file():
        refuse_foreign(path)
        raise SoftacError(f"{path} is a file; give a checkpoint directory or a run directory")
    if (path / STATE).is_file():
        return path
    if any((path / name).exists() for name in ("model.safetensors", "buffer.safetensors")):
        raise SoftacError(f"checkpoint {path} has no {STATE} (it records the checkpoint's config, counters and "
                          "checksums); the checkpoint is incomplete: use another one")  # fmt: skip
    found = list_checkpoints(path)
    if found:
        return found[-1]
    seeds = _seed_runs(path)
    if seeds and not (path / "config.json").is_file():
        named = ", ".join(p.name for p in seeds[:3]) + (", ..." if len(seeds) > 3 else "")
        raise SoftacError(
            f"{path / BATCH} is missing: it lists the seeds of the batched run in {path} ({named}); restore it, "
            f"or give one seed's directory (e.g. {seeds[0]})"
        )
    ckpt_dir = path / "checkpoints"
    partial = sorted(p for p in ckpt_dir.iterdir() if _STEP_DIR.match(p.name)) if ckpt_dir.is_dir() else []
    if partial:
        raise SoftacError(f"no complete checkpoint in {ckpt_dir}: {partial[-1].name} has no {STATE}; "
                          "the checkpoints are incomplete")  # fmt: skip
    if (path / "config.json").is_file():
        raise NoCheckpoint(f"{path} holds a run with no checkpoint yet (config.json, but nothing in {ckpt_dir})")
    raise NoCheckpoint(f"{path} is not a softac run or checkpoint directory (no config.json, {BATCH}, "
                       f"{STATE} or checkpoints/ in it)")  # fmt: skip
