"""Run a suite's cells: each cell is one ``softac train --seeds`` process (its seeds as learners),
``jobs`` of them at a time, each with ``cores // jobs`` threads so the machine is never
oversubscribed. A cell's state lives in ``DIR/cells/<key>.json``; its run in ``DIR/runs/<key>``,
its output in ``DIR/logs/<key>.log`` (written as it runs, so a killed suite keeps it).

A cell is done when its process exited 0 *and* its files are complete (``results.cell_problem``);
one recorded done whose files are not (a deleted run, a seed missing) is run again."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from softac.cli.args import flag_name
from softac.io.rundir import holds_run, list_checkpoints
from softac.suite.results import cell_problem, files_problem
from softac.suite.spec import EXTERNAL, EXTERNAL_FLAGS, VARIANTS, Cell
from softac.suite.stop import Stop


def cell_state(out: Path, cell: Cell) -> dict[str, Any]:
    path = out / "cells" / f"{cell.key}.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {"status": "pending"}
    return dict(state) if isinstance(state, dict) else {"status": "pending"}


def write_state(out: Path, cell: Cell, state: dict[str, Any]) -> None:
    path = out / "cells" / f"{cell.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)


def _set_aside_if_unresumable(run_dir: Path, seeds: list[int]) -> bool:
    """A batched cell killed while its learners wrote their first checkpoints (one after another)
    has checkpoints on some seeds and none that every seed reached: ``softac train --resume``
    refuses it, and there is nothing to resume exactly. Move it aside (nothing deleted) so the
    cell starts again from step 0, as a single run without a checkpoint does; True if moved."""
    if len(seeds) < 2:
        return False
    names = [{p.name for p in list_checkpoints(run_dir / f"seed_{s}")} for s in seeds]
    if set.intersection(*names) or not any(names):
        return False
    n = 0
    while run_dir.with_name(f"{run_dir.name}.unresumable-{n}").exists():
        n += 1
    run_dir.rename(run_dir.with_name(f"{run_dir.name}.unresumable-{n}"))
    return True


def saved_step(run_dir: Path, seeds: list[int]) -> int | None:
    """The newest checkpoint step every seed of the cell has (None: no checkpoint to resume from)."""
    dirs = [run_dir / f"seed_{s}" for s in seeds] if (run_dir / f"seed_{seeds[0]}").is_dir() else [run_dir]
    steps = [{int(p.name.split("_")[1]) for p in list_checkpoints(d)} for d in dirs]
    common = set.intersection(*steps) if steps else set()
    return max(common) if common else None


def train_argv(cell: Cell, run_dir: Path, seeds: list[int], budget: int, device: str, threads: int,
               extra: list[str]) -> list[str]:  # fmt: skip
    """The ``softac train`` command of a cell: a fresh run, or ``--resume`` of one already there
    (resumed exactly from its newest checkpoint, or restarted if it died before the first)."""
    if cell.variant in EXTERNAL:  # another library's cell: it resumes by skipping its finished seeds
        seed_list = ",".join(map(str, seeds))
        return [sys.executable, "-m", "softac.suite.sb3_cell", "--env", cell.env_id, "--seeds", seed_list,
                "--budget", str(budget), "--run-dir", str(run_dir), "--device", device, "--threads", str(threads),
                *EXTERNAL_FLAGS.get(cell.variant, ()), *extra]  # fmt: skip
    base = [sys.executable, "-m", "softac.cli", "train", "--no-progress", "--device", device, "--threads", str(threads)]
    if holds_run(run_dir) and not _set_aside_if_unresumable(run_dir, seeds):
        return [*base, "--resume", str(run_dir), "--total-steps", str(budget)]
    algo, overrides = VARIANTS[cell.variant]
    flags = [x for k, v in overrides.items() for x in _flag(k, v)]
    seed_arg = ",".join(str(s) for s in seeds)
    return [*base, "--algo", algo, "--env", cell.env_id, "--seeds", seed_arg, "--total-steps", str(budget),
            "--preset", "auto", "--run-dir", str(run_dir), *flags, *extra]  # fmt: skip


def _flag(name: str, value: Any) -> list[str]:
    """A variant's override as command-line words: a bool is ``--name`` / ``--no-name``."""
    if isinstance(value, bool):
        return [flag_name(name) if value else "--no-" + flag_name(name)[2:]]
    return [flag_name(name), str(value)]


def _last_line(log: Path, returncode: int) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else f"softac train exited {returncode}"


def run_cell(out: Path, cell: Cell, seeds: list[int], budget: int, device: str, threads: int,
             extra: list[str], stop: Stop | None = None) -> dict[str, Any]:  # fmt: skip
    """Run (or continue) one cell and record its state: done, failed (with the reason) or, when
    ``stop`` caught a signal, interrupted (with the checkpoint step it can resume from)."""
    run_dir = out / "runs" / cell.key
    damaged = files_problem(out, cell, seeds)
    if damaged is not None:
        refused = {"status": "failed", "seconds": 0.0, "run_dir": f"runs/{cell.key}",
                   "reason": f"{damaged}: fix or move that file aside, then --resume"}  # fmt: skip
        write_state(out, cell, refused)
        return refused
    argv = train_argv(cell, run_dir, seeds, budget, device, threads, extra)
    t0 = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    (out / "logs").mkdir(exist_ok=True)
    log = out / "logs" / f"{cell.key}.log"
    with log.open("w") as f:
        returncode = (stop or Stop()).run(argv, env, f)
    state: dict[str, Any] = {"status": "done", "returncode": returncode,
                             "seconds": round(time.perf_counter() - t0, 1), "run_dir": f"runs/{cell.key}"}  # fmt: skip
    if stop is not None and stop.signum is not None and returncode != 0:
        state["status"] = "interrupted"
        state["saved_step"] = saved_step(run_dir, seeds) if run_dir.is_dir() else None
    elif returncode != 0:
        state.update(status="failed", reason=_last_line(log, returncode))
    else:
        problem = cell_problem(out, cell, seeds, budget)
        if problem is not None:
            state.update(status="failed", reason=f"its files are incomplete: {problem}")
    write_state(out, cell, state)
    return state


def threads(jobs: int) -> int:
    """Threads per cell so that ``jobs`` cells in parallel do not oversubscribe this machine's cores."""
    return max(1, (os.cpu_count() or 1) // jobs)


class Bar:
    """One line per finished cell plus a whole-suite bar; the ETA is the mean time of the cells
    finished in this call times those left, divided by the jobs in parallel (honest: no guess
    before the first cell ends)."""

    def __init__(self, total: int, jobs: int) -> None:
        self.total, self.jobs, self.done, self.t0 = total, jobs, 0, time.perf_counter()
        self.lock = threading.Lock()

    def finished(self, cell: Cell, state: dict[str, Any]) -> None:
        with self.lock:
            self.done += 1
            took = time.perf_counter() - self.t0
            left = self.total - self.done
            eta = took / self.done * left if self.done else float("nan")
            what = {"done": "done", "interrupted": "interrupted"}.get(state["status"], f"FAILED: {state.get('reason')}")
            print(f"cell {cell.variant} on {cell.env_id}: {what} ({state['seconds']:.0f} s)", flush=True)
            filled = int(30 * self.done / max(self.total, 1))
            print(f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} cells, ETA {eta:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip


def todo_cells(out: Path, cells: list[Cell], seeds: list[int], budget: int) -> list[Cell]:
    """The cells to run: not recorded done, or recorded done with incomplete files (named)."""
    todo = []
    for c in cells:
        if cell_state(out, c).get("status") != "done":
            todo.append(c)
        elif (problem := cell_problem(out, c, seeds, budget)) is not None:
            print(f"cell {c.variant} on {c.env_id}: recorded done, but {problem}: running it again", flush=True)
            todo.append(c)
    return todo


def run_cells(out: Path, cells: list[Cell], seeds: list[int], budget: int, device: str, jobs: int,
              extra: list[str], n_threads: int | None = None, stop: Stop | None = None,
              ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Run every cell not yet done (``n_threads`` each; default ``threads(jobs)``); returns
    {cell key: state} of every cell. After ``stop`` caught a signal no further cell starts."""
    todo = todo_cells(out, cells, seeds, budget)
    bar = Bar(len(todo), jobs)

    def one(cell: Cell) -> None:
        if stop is not None and stop.signum is not None:
            return
        bar.finished(cell, run_cell(out, cell, seeds, budget, device, n_threads or threads(jobs), extra, stop))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, todo))
    return {c.key: cell_state(out, c) for c in cells}
