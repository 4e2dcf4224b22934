"""Sweeps on Ray Tune: a grid (environments × settings × seeds, one Tune trial per run) or an
Optuna search (one Tune trial per sampled setting, its seeds one after another).

Fault tolerance is layered: Tune's ``FailureConfig(max_failures)`` starts a trial again when its
worker dies, and the trial then continues each run from its newest softac checkpoint (see
:func:`softac.sweep.trial.run_one`), so a retry redoes at most ``checkpoint_freq`` steps. A sweep
interrupted as a whole (``softac sweep --resume``) skips the runs that finished.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# Why before importing Ray Tune: the "new output" engine prints a table per experiment and status
# lines even at verbose=0; the per-trial CSV/JSON/TensorBoard loggers would duplicate what each
# run directory already holds.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Ctrl-C: Tune's own handler stops the experiment and returns as if it had ended; softac wants the
# KeyboardInterrupt (exit 130, "continue it with --resume").
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")

import ray
from ray import tune
from tqdm import tqdm

from softac.errors import SoftacError
from softac.sweep.precheck import catch_sigterm
from softac.sweep.search import run_search, study_state, trial_dir
from softac.sweep.spec import SweepSpec
from softac.sweep.summary import env_dir, write_sweep_summary
from softac.sweep.trial import run_one, run_state


def grid_trials(spec: SweepSpec, out: Path) -> list[dict[str, Any]]:
    """One entry per run: environment, setting, seed, its config values and run directory."""
    trials = []
    for env_id in spec.envs:
        for label, values in spec.settings():
            for seed in spec.seeds:
                run_dir = out / env_dir(env_id) / label / f"seed_{seed}"
                config = {**spec.given_values(), **values, "env_id": env_id, "seed": seed}
                total = spec.run_values(env_id, values)["total_steps"]
                trials.append({"env": env_id, "setting": label, "seed": seed, "values": config, "total_steps": total,
                               "run_dir": str(run_dir), "preset": spec.preset})  # fmt: skip
    return trials


def _grid_trainable(config: dict[str, Any], algo: str) -> None:
    t = config["trial"]
    res = run_one(algo, t["values"], Path(t["run_dir"]), preset=t["preset"])
    tune.report({"final_return": res["final"], "minutes": res["minutes"], "error": res["error"] or ""})


class _Progress(tune.Callback):
    """One line per finished trial, a tqdm bar of trials done/total with an ETA."""

    def __init__(self, total: int, done: int, show_bar: bool, spec: SweepSpec, out: Path) -> None:
        self.bar = tqdm(total=total, initial=done, unit="trial", file=sys.stderr, disable=not show_bar,
                        dynamic_ncols=True)  # fmt: skip
        self.spec, self.out = spec, out
        self.failed: list[str] = []

    def _line(self, text: str) -> None:
        self.bar.write(text, file=sys.stdout)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        r = trial.last_result or {}
        if self.spec.search is not None:
            metric, n = self.spec.search["metric"], len(self.spec.seeds)
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.config.items())
            name = trial_dir(self.out, self.spec, dict(trial.config)).name
            seeds = r.get("seeds_done", 0)
            what = f"{name} ({params}): {metric} {r.get(metric, math.nan):.2f}, mean of {seeds} of {n} seed(s)"
            if seeds < n and not r.get("error"):
                what += " (stopped by the pruner)"
        else:
            t = trial.config["trial"]
            what = f"{t['env']} {t['setting']} seed {t['seed']}: final return {r.get('final_return', math.nan):.2f}"
        if r.get("error"):
            what += f"  FAILED: {r['error']}"
            self.failed.append(what)
        self._line(f"{what}  ({r.get('minutes', 0.0):.1f} min)")
        self.bar.update(1)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(f"trial {trial.trial_id}: its worker died; retrying from its newest checkpoint")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.failed.append(trial.trial_id)
        self._line(f"trial {trial.trial_id}: FAILED after its retries ({trial.error_file or 'no error file'})")
        self.bar.update(1)


def connect_ray(address: str | None, cpus: int | None = None) -> bool:
    """Start a local Ray instance (or join a cluster); True when this call started it."""
    if ray.is_initialized():
        return False
    if address is None:
        # "local": never attach to a cluster that `ray start` left running on this machine.
        ray.init(address="local", num_cpus=cpus or os.cpu_count(), include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
    else:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except ConnectionError as exc:  # no cluster there: a traceback before
            raise SoftacError(f"cannot reach the Ray cluster at --address {address}: {exc}") from None
    return True


def run_sweep(
    spec: SweepSpec, out: Path, address: str | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run (or continue: finished runs are skipped) the validated sweep ``spec`` into ``out``
    (which holds its sweep.json).
    Returns ``{"failed": [lines of failed trials], "best": best.json's content or None}``."""
    out = Path(out).resolve()
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # our own line per failure instead
    # Tune's Optuna searcher reports a trial's last value twice; Optuna warns about the repeat.
    warnings.filterwarnings("ignore", message="The reported value is ignored", category=UserWarning)
    search = spec.search is not None
    todo: list[dict[str, Any]] = []
    if search:
        total, done = int(spec.search["trials"]), min(int(spec.search["trials"]), study_state(out)[0])  # type: ignore[index]
    else:
        trials = grid_trials(spec, out)
        todo = [t for t in trials if run_state(Path(t["run_dir"]), t["total_steps"])[0] != "finished"]
        total, done = len(trials), len(trials) - len(todo)
        print(f"softac sweep: {total} runs ({len(spec.envs)} environment(s) × {len(spec.settings())} setting(s) × "
              f"{len(spec.seeds)} seed(s)); {done} already finished, {len(todo)} to run")  # fmt: skip
    reporter = _Progress(total, done, progress, spec, out)
    started = connect_ray(address) if (search or todo) else False
    catch_sigterm()  # after ray.init, which installs its own SIGTERM handler
    try:
        run_config = tune.RunConfig(
            name=f"{'search' if search else 'grid'}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(out / ".tune"),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures), verbose=0, callbacks=[reporter],
        )  # fmt: skip
        cost = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
        best = None
        if search:
            best = run_search(spec, out, run_config, cost)
        elif todo:
            trainable = tune.with_resources(tune.with_parameters(_grid_trainable, algo=spec.algo), cost)
            tune.Tuner(
                trainable, param_space={"trial": tune.grid_search(todo)}, run_config=run_config,
                tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: t.trial_id, reuse_actors=True),
            ).fit()  # fmt: skip
    finally:
        reporter.bar.close()
        if started:
            ray.shutdown()
    write_sweep_summary(out, spec)
    return {"failed": reporter.failed, "best": best}
