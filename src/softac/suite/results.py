"""``results.csv``: one row per (algorithm, env, seed, evaluation step), read from every finished
cell's progress.csv files; rebuilt whole each time, so a cell's rows never depend on the others.

A cell counts as done only when its files are complete: every seed's progress.csv is readable,
its steps increase, every return is finite, and its last evaluation is at or past the budget. A
cell short of that is rerun or named, never counted (a NaN row, a deleted seed or a deleted run
reached results.csv while the suite said "2 of 2 cells done")."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from softac.analysis.stats import write_csv_atomic
from softac.suite.spec import Cell

FIELDS = ["algorithm", "env", "seed", "step", "return"]
# The evaluation success rate, a column of results.csv only when some cell's environment reports success
# (softac.success): empty on the rows of the tasks that do not, absent from a suite where none does.
SUCCESS = "success"


def _success(path: Path, n: int, text: str | None) -> float | None:
    """One row's ``eval_success_rate`` (None: not reported; NaN there means no flag came back)."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path} line {n} has a garbled eval_success_rate ({text!r})") from None
    if math.isnan(value):
        return None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{path} line {n} has an eval_success_rate outside [0, 1] ({value})")
    return value


def _seed_rows(path: Path) -> list[tuple[int, float, float | None]]:
    """(step, eval return, eval success rate or None) of one seed's progress.csv; ValueError naming
    the file and line."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {"step", "eval_return_mean"} <= set(reader.fieldnames):
                raise ValueError(f"{path} has no step and eval_return_mean columns")
            out: list[tuple[int, float, float | None]] = []
            for n, r in enumerate(reader, start=2):
                try:
                    step, ret = int(r["step"]), float(r["eval_return_mean"])
                except (TypeError, ValueError):
                    raise ValueError(f"{path} line {n} is garbled (step {r.get('step')!r}, "
                                     f"eval_return_mean {r.get('eval_return_mean')!r})") from None  # fmt: skip
                if not math.isfinite(ret):
                    raise ValueError(f"{path} line {n} has a non-finite return ({ret})")
                if out and step <= out[-1][0]:
                    raise ValueError(f"{path} line {n}: step {step} does not follow step {out[-1][0]}")
                out.append((step, ret, _success(path, n, r.get("eval_success_rate"))))
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path} is unreadable ({exc})") from None


def _seed_dirs(run_dir: Path, seeds: list[int]) -> list[Path]:
    # `softac train --seeds S` writes DIR/seed_<s>/ even for one seed; a run directory from before
    # that holds the one seed's files itself.
    single = len(seeds) == 1 and not (run_dir / f"seed_{seeds[0]}").is_dir()
    return [run_dir if single else run_dir / f"seed_{s}" for s in seeds]


def cell_rows(out: Path, cell: Cell, seeds: list[int], budget: int | None = None) -> list[dict[str, Any]]:
    """The cell's rows. With ``budget``: ValueError naming what is missing or wrong when the cell
    is not complete. Without (a suite stopped at a deadline, read as it is): a seed without a
    progress.csv is left out, a garbled or non-finite row is still an error."""
    rows = []
    for seed, d in zip(seeds, _seed_dirs(out / "runs" / cell.key, seeds), strict=True):
        progress = d / "progress.csv"
        if not progress.is_file():
            if budget is None:
                continue
            raise ValueError(f"seed {seed} has no {progress.relative_to(out)}")
        got = _seed_rows(progress)
        if budget is not None and (not got or got[-1][0] < budget):
            last = got[-1][0] if got else 0
            raise ValueError(f"seed {seed} stopped at step {last} of {budget} ({progress.relative_to(out)})")
        rows += [{"algorithm": cell.variant, "env": cell.env_id, "seed": seed, "step": st, "return": r, SUCCESS: ok}
                 for st, r, ok in got]  # fmt: skip
    return rows


def cell_problem(out: Path, cell: Cell, seeds: list[int], budget: int) -> str | None:
    """Why the cell's files are not a finished cell (None: they are)."""
    try:
        cell_rows(out, cell, seeds, budget)
    except ValueError as exc:
        return str(exc)
    return None


def files_problem(out: Path, cell: Cell, seeds: list[int]) -> str | None:
    """A garbled or non-finite row in the cell's progress.csv files so far (None: none), named before
    the cell is resumed: ``softac train --resume`` keeps the rows up to its checkpoint and would
    stop on such a line without naming the file."""
    try:
        cell_rows(out, cell, seeds)
    except ValueError as exc:
        return str(exc)
    return None


def write_results(out: Path, done: list[Cell], seeds: list[int], budget: int) -> Path:
    """results.csv of the ``done`` cells (each checked complete by the caller)."""
    rows = [r for c in sorted(done, key=lambda c: c.key) for r in cell_rows(out, c, seeds, budget)]
    if not any(r[SUCCESS] is not None for r in rows):
        return write_csv_atomic(out / "results.csv", FIELDS, rows)  # the writer leaves the empty column out
    shown = [{**r, SUCCESS: "" if r[SUCCESS] is None else r[SUCCESS]} for r in rows]
    return write_csv_atomic(out / "results.csv", [*FIELDS, SUCCESS], shown)


def read_results(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.csv, checked: a bad line (not a number, a non-finite return, a negative
    step or seed, a success rate outside [0, 1], a second row for the same algorithm, env, seed and
    step) is a ValueError naming it. Each row's ``success`` is None where the file has none."""
    seen: dict[tuple[str, str, int, int], int] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(FIELDS) <= set(reader.fieldnames):
            raise ValueError(f"{path} needs the columns {', '.join(FIELDS)}")
        out = []
        for n, r in enumerate(reader, start=2):
            try:
                algo, env = str(r["algorithm"] or ""), str(r["env"] or "")
                seed, step, ret = int(r["seed"]), int(r["step"]), float(r["return"])
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {n} is not algorithm,env,seed,step,return: {r}") from None
            if not algo or not env:
                raise ValueError(f"{path} line {n} has no algorithm or env: {r}")
            if not math.isfinite(ret):
                raise ValueError(f"{path} line {n} has a non-finite return ({r['return']}): remove or fix that row")
            if seed < 0 or step < 0:
                raise ValueError(f"{path} line {n} has a negative seed or step: {r}")
            row = {"algorithm": algo, "env": env, "seed": seed, "step": step, "return": ret,
                   SUCCESS: _success(path, n, r.get(SUCCESS))}  # fmt: skip
            key = (algo, env, seed, step)
            if key in seen:
                raise ValueError(f"{path} lines {seen[key]} and {n} are both {key[0]} on {key[1]}, seed {key[2]}, "
                                 f"step {key[3]}: keep one of them")  # fmt: skip
            seen[key] = n
            out.append(row)
    return out
