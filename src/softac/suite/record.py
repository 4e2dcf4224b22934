"""The suite directory and its record: ``DIR/.softac-suite`` marks a directory ``softac suite``
created (the only kind it ever writes into), ``DIR/suite.json`` records the arguments that fixed its
cells. A directory without the marker is the user's: the suite refuses it rather than replace their
``results.csv``, ``logs/`` or ``cells/``. A resumed suite keeps its recorded arguments: a call that
names other ones is refused, naming each difference, so no cell's rows drop out of ``results.csv``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from softac.errors import SoftacError
from softac.io.files import loads_json

MARKER = ".softac-suite"
# The arguments that fix which cells a suite holds and what each one runs; device, jobs, threads
# and --ray only say where and how fast, and may change between the calls of a campaign.
FIXED = ("suite", "algos", "envs", "seeds", "budget", "extra")
_TYPES: dict[str, Any] = {"suite": str, "algos": list, "envs": list, "seeds": list, "budget": int, "extra": list}


def check_out(out: Path, resume: bool) -> bool:
    """Refuse an ``--out`` the suite may not write (before anything is written); True when it
    already holds a suite (``--resume`` continues it)."""
    if out.exists() and not out.is_dir():
        raise SoftacError(f"--out {out} is a file, not a directory: choose a new or empty directory")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not (out / MARKER).is_file():
        raise SoftacError(f"--out {out} is not empty and softac suite did not create it (no {MARKER} in it): "
                          "choose a new or empty directory; nothing in it was changed")  # fmt: skip
    if not resume:
        raise SoftacError(f"{out} already holds a suite: pass --resume to continue it, or choose a new --out")
    return True


def create(out: Path, asked: dict[str, Any]) -> None:
    """Make the suite directory: the marker first, then ``suite.json`` (through a rename); on a
    suite already there (``--extend``), replace its record with the extended one."""
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("created by softac suite; the suite writes only into directories holding this file\n")
    tmp = out / "suite.json.tmp"
    tmp.write_text(json.dumps(asked, indent=1))
    tmp.replace(out / "suite.json")


def read(out: Path) -> dict[str, Any]:
    """The recorded arguments, checked: a damaged ``suite.json`` is one line naming it."""
    path = out / "suite.json"
    hint = "it records this suite's arguments: restore it, or run the suite in a new --out"
    if path.is_dir() or not path.exists():
        raise SoftacError(f"{path} is {'a directory' if path.is_dir() else 'missing'}, not the suite's record; {hint}")
    try:
        data = loads_json(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SoftacError(f"{path} is not readable JSON ({exc}); {hint}") from None
    if not isinstance(data, dict):
        raise SoftacError(f"{path} holds a {type(data).__name__}, not the suite's record (a JSON object); {hint}")
    for key, kind in _TYPES.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise SoftacError(f"{path} has no valid '{key}' ({kind.__name__}); {hint}")
    return data


def check_paths(out: Path, keys: list[str]) -> None:
    """Refuse, before any cell starts, a suite whose own files are not what the suite writes there
    (``cells/<key>.json`` or ``logs/<key>.log`` a directory, ``runs/<key>`` or ``cells`` a file):
    writing them would fail after a cell had trained."""
    want = [(out / "results.csv", False), (out / "cells", True), (out / "logs", True), (out / "runs", True)]
    for key in keys:
        want += [(out / "cells" / f"{key}.json", False), (out / "logs" / f"{key}.log", False)]
        want.append((out / "runs" / key, True))
    for path, is_dir in want:
        if path.exists() or path.is_symlink():
            ok = path.is_dir() if is_dir else path.is_file()
            if not ok:
                kind = "a directory" if is_dir else "a file"
                raise SoftacError(f"{path} is not {kind} as the suite writes it: move it away, then --resume")


def differences(saved: dict[str, Any], asked: dict[str, Any], keys: tuple[str, ...] = FIXED) -> list[str]:
    """``key: recorded → asked`` for every fixed argument that differs."""

    def show(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    return [f"{k} {show(saved[k]) or '(none)'} → {show(asked[k]) or '(none)'}" for k in keys if saved[k] != asked[k]]


def check_resume(out: Path, asked: dict[str, Any], extending: bool = False) -> dict[str, Any]:
    """The record of the suite in ``out``, refused (naming each difference) where ``asked`` differs;
    ``extending`` (``--extend``): its algorithms and tasks may grow, its other arguments may not."""
    saved = read(out)
    keys = tuple(k for k in FIXED if not (extending and k in ("algos", "envs")))
    diff = differences(saved, asked, keys)
    if diff:
        grow = "" if extending else "; to add algorithms or tasks, --resume --extend"
        raise SoftacError(f"{out} holds a suite run with other arguments ({'; '.join(diff)}): --resume keeps the "
                          f"recorded ones, so repeat them, or run the new ones in a new --out{grow}")  # fmt: skip
    return saved
