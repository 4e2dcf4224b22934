"""What ``--overwrite`` may delete: only files softac wrote and can recognise.

Why recognise by content and not by name alone: an earlier release removed every ``config.json``,
``progress.csv``, ``checkpoints/`` and ``tb/`` tree it found, so a user's own ``config.json`` or
``checkpoints/myproject/model.pt`` in the chosen directory was lost. Each name softac writes has a
marker here (a JSON layout, a CSV header, matplotlib's PNG signature, TensorBoard's event-file
name, a checkpoint's ``state.json`` format tag). The plan is made before anything is deleted: one
unrecognised path among softac's names refuses the whole overwrite, naming it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

from softac.errors import SoftacError
from softac.io.files import loads_json
from softac.io.rundir import BATCH, STATE

_CKPT_FILES = {STATE, "model.safetensors", "buffer.safetensors"}
_STEP = re.compile(r"^step_\d{10}(\.(tmp|old|trash)-\d+)?$")
_SEED = re.compile(r"^seed_\d+$")
_PROGRESS_HEAD = "step,wall_time_s,updates,episodes,eval_return_mean"
_MAX_HEAD = 4096


def _head(path: Path, n: int = _MAX_HEAD) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _json_keys(path: Path, keys: tuple[str, ...]) -> bool:
    # A softac JSON file is small: a huge one is not ours (and is not parsed whole).
    try:
        if path.stat().st_size > 16 * 1024 * 1024:
            return False
        data = loads_json(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and all(k in data for k in keys)


def _is_ours(path: Path) -> bool:
    """Whether the regular file ``path`` (named as softac names its files) is softac's."""
    if path.is_symlink() or not path.is_file():
        return False
    name = path.name
    if name == "config.json":
        return _json_keys(path, ("algo", "config", "torch"))
    if name == BATCH:
        return _json_keys(path, ("algo", "seeds", "config"))
    if name == "progress.csv":
        return _head(path).startswith(_PROGRESS_HEAD.encode())
    if name == "summary.csv":
        return _head(path).startswith(b"step,n_seeds,mean,median,iqm,")
    if name == "learning_curve.png":
        head = _head(path)
        return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Matplotlib" in head
    return False


def _checkpoint_ours(path: Path) -> bool:
    if path.is_symlink() or not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if not names <= _CKPT_FILES:
        return False
    if STATE not in names:  # a .tmp-/.trash- directory cut off before its state.json
        return ".tmp-" in path.name or ".trash-" in path.name or ".old-" in path.name
    return _json_keys(path / STATE, ("format", "version", "counters", "files"))


def plan_clear(run_dir: Path) -> tuple[list[Path], list[Path]]:
    """(softac's paths to remove, foreign paths among softac's names) of a run directory."""
    ours: list[Path] = []
    foreign: list[Path] = []
    for name in ("config.json", "progress.csv", "learning_curve.png", "summary.csv", BATCH):
        p = run_dir / name
        if p.exists() or p.is_symlink():
            (ours if _is_ours(p) else foreign).append(p)
    ckpts = run_dir / "checkpoints"
    if ckpts.is_symlink() or ckpts.is_file():
        foreign.append(ckpts)
    elif ckpts.is_dir():
        for p in sorted(ckpts.iterdir()):
            (ours if _STEP.match(p.name) and _checkpoint_ours(p) else foreign).append(p)
    tb = run_dir / "tb"
    if tb.is_symlink() or tb.is_file():
        foreign.append(tb)
    elif tb.is_dir():
        for p in sorted(tb.iterdir()):
            ok = p.name.startswith("events.out.tfevents.") and p.is_file() and not p.is_symlink()
            (ours if ok else foreign).append(p)
    for sub in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if _SEED.match(sub.name) and sub.is_dir() and not sub.is_symlink():
            o, f = plan_clear(sub)
            ours += o
            foreign += f
    return ours, foreign


def clear_run(run_dir: Path) -> None:
    """Remove softac's files of a run directory; refuse (deleting nothing) if any path among the
    names softac writes is not recognisably softac's."""
    ours, foreign = plan_clear(run_dir)
    if foreign:
        named = ", ".join(str(p) for p in foreign[:3]) + (f" (and {len(foreign) - 3} more)" if len(foreign) > 3 else "")
        raise SoftacError(
            f"--overwrite refused: {named} in {run_dir} was not written by softac (or is not recognisable as "
            "its file), so it is not deleted; move it away or choose another --run-dir (nothing was changed)"
        )
    for p in ours:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    seeds = [s for s in run_dir.glob("seed_*") if _SEED.match(s.name)]
    for d in [*seeds, run_dir]:
        for sub in ("checkpoints", "tb"):
            with contextlib.suppress(OSError):
                (d / sub).rmdir()  # only if empty: it held softac's files only
    # Why: an emptied seed_<s>/ of the replaced run stayed, and the new run's summary, which reads
    # every seed directory, failed on it ("seed_0 has no progress.csv") when the seeds changed.
    for d in seeds:
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty, as above
