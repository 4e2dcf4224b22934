"""``softac suite --ray ADDRESS``: the suite's cells as Ray Tune trials, through ``softac sweep``'s
machinery (its Ray connection, its quiet Tune settings, Tune's FailureConfig retries) rather than a
second scheduler. Each trial runs the very cell ``--jobs`` runs locally (``runner.run_cell``: one
``softac train --seeds`` process, resumed from its newest checkpoint when a retry finds one), so
a cell's state and results are the same whichever way it ran. On a cluster, ``--out`` must be a
directory every node sees (a shared filesystem), as for ``softac sweep``.

SIGINT/SIGTERM: Tune unwinds and Ray's shutdown ends the trials; a trial's ``softac train`` ends with
its Ray worker (the cell's parent-death signal, ``softac.suite.child``), so a cell keeps the newest
checkpoint it wrote (every ``--checkpoint-freq`` steps; the run resumes from it exactly). Its state
is recorded as interrupted at that step, and the suite says so in its one line (``Stop.signum``)."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune

from softac.suite.runner import Bar, cell_state, run_cell, saved_step, write_state
from softac.suite.spec import Cell
from softac.suite.stop import SIGNALS, Stop
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


@contextmanager
def _signals_raise(stop: Stop) -> Iterator[Callable[[], None]]:
    """While the trials run, the first SIGINT or SIGTERM is recorded in ``stop`` and raised as
    KeyboardInterrupt in this thread, where Tune unwinds (softac.sweep.runner keeps Tune's own SIGINT
    handler off); a second one ends the suite at once. Yields ``again``, which installs the handlers
    anew: ``ray.init`` replaces SIGTERM's with Ray's own (a stack dump, then exit 1)."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    old = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handle(signum: int, frame: object) -> None:
        if stop.signum is None:
            stop.signum = signum
            print(f"\nsoftac: {signal.Signals(signum).name} received: the Ray trials stop; each cell keeps its "
                  "newest checkpoint (signal again to stop at once)", file=sys.stderr, flush=True)  # fmt: skip
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            raise KeyboardInterrupt

    def again() -> None:
        for sig in SIGNALS:
            signal.signal(sig, handle)

    again()
    try:
        yield again
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run_cells_ray(out: Path, cells: list[Cell], seeds: list[int], budget: int, device: str, threads: int,
                  extra: list[str], address: str, stop: Stop | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Run every cell not yet done as a Tune trial of ``threads`` CPUs (and one GPU on a CUDA device)
    on the Ray instance ``address`` ("local": a new one on this machine); {cell key: state}. A signal
    (recorded in ``stop``) ends the trials: each unfinished cell is recorded as interrupted at its
    newest checkpoint."""
    out = Path(out).resolve()
    stop = stop if stop is not None else Stop()
    todo = [c for c in cells if cell_state(out, c).get("status") != "done"]
    if todo:
        with _signals_raise(stop) as again:
            # Shut down the instance this call began, also when a signal came during ray.init (before
            # connect_ray could return that it started one).
            ours = not ray.is_initialized()
            try:
                connect_ray(None if address == "local" else address)
                again()
                _fit(out, todo, seeds, budget, device, threads, extra)
            except KeyboardInterrupt:
                if stop.signum is None:  # Tune's own, or one that came before the handlers
                    stop.signum = int(signal.SIGINT)
            finally:
                if ours and ray.is_initialized():
                    ray.shutdown()
        if stop.signum is not None:
            for c in todo:
                if cell_state(out, c).get("status") != "done":
                    run_dir = out / "runs" / c.key
                    step = saved_step(run_dir, seeds) if run_dir.is_dir() else None
                    write_state(out, c, {"status": "interrupted", "saved_step": step, "run_dir": f"runs/{c.key}"})
    return {c.key: cell_state(out, c) for c in cells}


def _fit(out: Path, todo: list[Cell], seeds: list[int], budget: int, device: str, threads: int,
         extra: list[str]) -> None:  # fmt: skip
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
