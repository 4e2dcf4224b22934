"""``results.csv``: one row per (algorithm, env, seed, evaluation step), read from every finished
cell's progress.csv files; rebuilt whole each time, so a cell's rows never depend on the others."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from softac.logging import read_progress
from softac.stats import write_csv_atomic
from softac.suite.spec import Cell

FIELDS = ["algorithm", "env", "seed", "step", "return"]


def cell_rows(out: Path, cell: Cell, seeds: list[int]) -> list[dict[str, Any]]:
    run_dir = out / "runs" / cell.key
    # `softac train --seeds S` writes DIR/seed_<s>/ even for one seed; a run directory
    # from before that holds the one seed's files itself.
    dirs = [run_dir / f"seed_{s}" if (run_dir / f"seed_{s}").is_dir() or len(seeds) > 1 else run_dir for s in seeds]
    rows = []
    for seed, d in zip(seeds, dirs, strict=True):
        progress = d / "progress.csv"
        if not progress.is_file():
            continue
        for r in read_progress(progress):
            rows.append({"algorithm": cell.variant, "env": cell.env_id, "seed": seed, "step": int(r["step"]),
                         "return": float(r["eval_return_mean"])})  # fmt: skip
    return rows


def write_results(out: Path, done: list[Cell], seeds: list[int]) -> Path:
    rows = [r for c in sorted(done, key=lambda c: c.key) for r in cell_rows(out, c, seeds)]
    return write_csv_atomic(out / "results.csv", FIELDS, rows)


def read_results(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.csv, checked: a bad line is one clear error (SoftacError via the caller)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not set(FIELDS) <= set(reader.fieldnames):
            raise ValueError(f"{path} needs the columns {', '.join(FIELDS)}")
        out = []
        for n, r in enumerate(reader, start=2):
            try:
                out.append({"algorithm": r["algorithm"], "env": r["env"], "seed": int(r["seed"]),
                            "step": int(r["step"]), "return": float(r["return"])})  # fmt: skip
            except (TypeError, ValueError):
                raise ValueError(f"{path} line {n} is not algorithm,env,seed,step,return: {r}") from None
    return out
