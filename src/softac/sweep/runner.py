"""Sweeps on Ray Tune: a grid (environments × settings × seeds, one Tune trial per run) or an
Optuna search (one Tune trial per sampled setting, its seeds one after another).

Fault tolerance is layered: Tune's ``FailureConfig(max_failures)`` starts a trial again when its
worker dies, and the trial then continues each run from its newest softac checkpoint (see
:func:`softac.sweep.trial.run_one`), so a retry redoes at most ``checkpoint_freq`` steps. A sweep
interrupted as a whole (``softac sweep --resume``) skips the runs that finished.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# Why before importing Ray Tune: the "new output" engine prints a table per experiment and status
# lines even at verbose=0; the per-trial CSV/JSON/TensorBoard loggers would duplicate what each
# run directory already holds.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import ray
from ray import tune
from tqdm import tqdm

from softac.errors import SoftacError
from softac.sweep.spec import SweepSpec, space_bounds, write_json_atomic
from softac.sweep.summary import env_dir, write_sweep_summary
from softac.sweep.trial import run_one, run_state


def grid_trials(spec: SweepSpec, out: Path) -> list[dict[str, Any]]:
    """One entry per run: environment, setting, seed, its config values and run directory."""
    fixed = spec.fixed_values()
    trials = []
    for env_id in spec.envs:
        for label, values in spec.settings():
            for seed in spec.seeds:
                run_dir = out / env_dir(env_id) / label / f"seed_{seed}"
                config = {**fixed, **values, "env_id": env_id, "seed": seed}
                trials.append({"env": env_id, "setting": label, "seed": seed, "values": config,
                               "run_dir": str(run_dir)})  # fmt: skip
    return trials


def _grid_trainable(config: dict[str, Any], algo: str) -> None:
    t = config["trial"]
    res = run_one(algo, t["values"], Path(t["run_dir"]))
    tune.report({"final_return": res["final"], "minutes": res["minutes"], "error": res["error"] or ""})


def _search_trainable(config: dict[str, Any], spec_json: dict[str, Any], out: str) -> None:
    spec = SweepSpec.from_json(spec_json)
    metric = spec.search["metric"] if spec.search else "eval_return_mean"
    trial_dir = Path(out) / env_dir(spec.envs[0]) / f"trial_{tune.get_context().get_trial_id()}"
    trial_dir.mkdir(parents=True, exist_ok=True)
    params = {k: config[k] for k in (spec.search or {}).get("space", {})}
    write_json_atomic(trial_dir / "params.json", params)
    finals: list[float] = []
    t0 = time.perf_counter()
    for i, seed in enumerate(spec.seeds):
        values = {**spec.fixed_values(), **params, "env_id": spec.envs[0], "seed": seed}
        res = run_one(spec.algo, values, trial_dir / f"seed_{seed}", metric)
        finals.append(res["final"])
        # Reported after each seed: the pruner (median rule / ASHA on training_iteration = seeds
        # done) compares trials on the same first seeds; the last report is the mean over all.
        tune.report({metric: sum(finals) / len(finals), "seeds_done": i + 1,
                     "minutes": (time.perf_counter() - t0) / 60, "error": res["error"] or ""})  # fmt: skip
        if res["error"]:
            return


def _search_space(spec: SweepSpec) -> dict[str, Any]:
    space: dict[str, Any] = {}
    for name, text in (spec.search or {}).get("space", {}).items():
        kind = text.partition(":")[0]
        bounds = space_bounds(spec.algo, name, text)
        if kind == "choice":
            space[name] = tune.choice(bounds)
        elif kind == "loguniform":
            space[name] = tune.loguniform(*bounds)
        elif kind == "uniform":
            space[name] = tune.uniform(*bounds)
        elif kind == "int":
            space[name] = tune.randint(bounds[0], bounds[1] + 1)  # Tune's upper end is excluded
        else:
            space[name] = tune.lograndint(bounds[0], bounds[1] + 1)
    return space


class _Progress(tune.Callback):
    """One line per finished trial, a tqdm bar of trials done/total with an ETA."""

    def __init__(self, total: int, done: int, show_bar: bool, metric: str | None) -> None:
        self.bar = tqdm(total=total, initial=done, unit="trial", file=sys.stderr, disable=not show_bar,
                        dynamic_ncols=True)  # fmt: skip
        self.metric = metric  # None for a grid
        self.failed: list[str] = []

    def _line(self, text: str) -> None:
        self.bar.write(text, file=sys.stdout)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        r = trial.last_result or {}
        if self.metric is not None:
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.config.items())
            value = r.get(self.metric, math.nan)
            seeds = r.get("seeds_done", 0)
            what = f"trial {trial.trial_id} ({params}): {self.metric} {value:.2f}, mean of {seeds} seed(s)"
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


def _connect(address: str | None, cpus: int | None = None) -> bool:
    """Start a local Ray instance (or join a cluster); True when this call started it."""
    if ray.is_initialized():
        return False
    if address is None:
        # "local": never attach to a cluster that `ray start` left running on this machine.
        ray.init(address="local", num_cpus=cpus or os.cpu_count(), include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
    else:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    return True


def _run_search(spec: SweepSpec, out: Path, run_config: Any, cost: dict[str, float], resume: bool) -> dict[str, Any]:
    """The Optuna search through Tune; continues the saved experiment on ``resume``."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    search = spec.search
    assert search is not None
    metric, mode = search["metric"], search["mode"]
    trainable = tune.with_resources(
        tune.with_parameters(_search_trainable, spec_json=spec.to_json(), out=str(out)), cost
    )
    path = out / ".tune" / "search"
    if resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
    else:
        pruner = search["pruner"]
        scheduler: Any = FIFOScheduler()
        if pruner == "median":
            scheduler = MedianStoppingRule(time_attr="training_iteration", grace_period=1, min_samples_required=3)
        elif pruner == "asha":
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=len(spec.seeds), grace_period=1)
        searcher = OptunaSearch(metric=metric, mode=mode, seed=search["seed"])
        tuner = tune.Tuner(
            trainable, param_space=_search_space(spec), run_config=run_config,
            tune_config=tune.TuneConfig(metric=metric, mode=mode, search_alg=searcher, scheduler=scheduler,
                                        num_samples=search["trials"],
                                        trial_dirname_creator=lambda t: t.trial_id, reuse_actors=True),
        )  # fmt: skip
    results = tuner.fit()
    metrics: list[dict[str, Any]] = [results[i].metrics or {} for i in range(len(results))]
    ok = [m for m in metrics if not m.get("error") and math.isfinite(m.get(metric, math.nan))]
    # A pruned trial's value is a mean over fewer seeds: only trials that ran every seed compete.
    full = [m for m in ok if m.get("seeds_done") == len(spec.seeds)]
    if not full:
        raise SoftacError(f"no trial of the search ran all its seeds to a finite {metric}; see the lines above")
    top = max(full, key=lambda m: float(m[metric]) * (1 if mode == "max" else -1))
    trial_dir = out / env_dir(spec.envs[0]) / f"trial_{top.get('trial_id', '?')}"
    best = {
        "metric": metric, "mode": mode, "value": float(top[metric]), "seeds": spec.seeds,
        "config": json.loads((trial_dir / "params.json").read_text()), "trial_dir": str(trial_dir),
    }  # fmt: skip
    write_json_atomic(out / "best.json", best)
    return best


def run_sweep(
    spec: SweepSpec, out: Path, address: str | None = None, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run (or continue) the validated sweep ``spec`` into ``out`` (which holds its sweep.json).
    Returns ``{"failed": [lines of failed trials], "best": best.json's content or None}``."""
    out = Path(out).resolve()
    logging.getLogger("ray.tune").setLevel(logging.CRITICAL)  # our own line per failure instead
    search = spec.search is not None
    todo: list[dict[str, Any]] = []
    if search:
        total, done = int(spec.search["trials"]), 0  # type: ignore[index]
    else:
        trials = grid_trials(spec, out)
        todo = [t for t in trials if run_state(Path(t["run_dir"]), t["values"]["total_steps"])[0] != "finished"]
        total, done = len(trials), len(trials) - len(todo)
        print(f"softac sweep: {total} runs ({len(spec.envs)} environment(s) × {len(spec.settings())} setting(s) × "
              f"{len(spec.seeds)} seed(s)); {done} already finished, {len(todo)} to run")  # fmt: skip
    reporter = _Progress(total, done, progress, spec.search["metric"] if spec.search else None)
    started = _connect(address) if (search or todo) else False
    try:
        run_config = tune.RunConfig(
            name="search" if search else f"grid-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(out / ".tune"),
            failure_config=tune.FailureConfig(max_failures=spec.max_failures), verbose=0, callbacks=[reporter],
        )  # fmt: skip
        cost = {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial}
        best = None
        if search:
            best = _run_search(spec, out, run_config, cost, resume)
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
