"""``softac suite --ray ADDRESS``: the suite's cells as Ray Tune trials, through ``softac sweep``'s
machinery (its Ray connection, its quiet Tune settings, Tune's FailureConfig retries) rather than a
second scheduler. Each trial runs the very cell ``--jobs`` runs locally (``runner.run_cell``: one
``softac train --seeds`` process, resumed from its newest checkpoint when a retry finds one), so
a cell's state and results are the same whichever way it ran. On a cluster, ``--out`` must be a
directory every node sees (a shared filesystem), as for ``softac sweep``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune

from softac.suite.runner import Bar, cell_state, run_cell
from softac.suite.spec import Cell
from softac.sweep.runner import connect_ray  # the sweep's connection: "local" never attaches to a stray cluster

MAX_FAILURES = 2  # a trial whose worker died is started again and resumes its cell's run


def _trainable(config: dict[str, Any], out: str, seeds: list[int], budget: int, device: str, threads: int,
               extra: list[str]) -> None:  # fmt: skip
    state = run_cell(Path(out), Cell(**config["cell"]), seeds, budget, device, threads, extra)
    tune.report({"status": state["status"], "seconds": state["seconds"]})


class _Lines(tune.Callback):
    """The suite's own progress: a line per finished cell and the whole-suite bar. Tune pickles its
    callbacks with the experiment, so the Bar (which holds a lock) is made on first use."""

    def __init__(self, out: Path, total: int) -> None:
        self.out, self.total, self.t0 = out, total, time.perf_counter()
        self.bar: Bar | None = None

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.bar is None:
            self.bar = Bar(self.total, 1)
            self.bar.t0 = self.t0
        cell = Cell(**trial.config["cell"])
        self.bar.finished(cell, cell_state(self.out, cell) | {"seconds": (trial.last_result or {}).get("seconds", 0.0)})


def run_cells_ray(out: Path, cells: list[Cell], seeds: list[int], budget: int, device: str, threads: int,
                  extra: list[str], address: str) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Run every cell not yet done as a Tune trial of ``threads`` CPUs (and one GPU on a CUDA device)
    on the Ray instance ``address`` ("local": a new one on this machine); {cell key: state}."""
    out = Path(out).resolve()
    todo = [c for c in cells if cell_state(out, c).get("status") != "done"]
    if todo:
        started = connect_ray(None if address == "local" else address)
        try:
            cost: dict[str, float] = {"cpu": threads, "gpu": 1 if device.startswith("cuda") else 0}
            fn = tune.with_parameters(_trainable, out=str(out), seeds=seeds, budget=budget, device=device,
                                      threads=threads, extra=extra)  # fmt: skip
            trainable = tune.with_resources(fn, cost)
            run_config = tune.RunConfig(
                name=f"suite-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(out / ".tune"),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
                callbacks=[_Lines(out, len(todo))],
            )
            tune.Tuner(
                trainable, param_space={"cell": tune.grid_search([dataclasses.asdict(c) for c in todo])},
                run_config=run_config, tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: t.trial_id),
            ).fit()  # fmt: skip
        finally:
            if started:
                ray.shutdown()
    return {c.key: cell_state(out, c) for c in cells}
