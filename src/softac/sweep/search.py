"""Hyper-parameter search: Ray Tune trials proposed by Optuna (``OptunaSearch``), each trial one
sampled setting trained on every seed of the sweep, one seed after another.

- A trial's directory is named by its parameters (``trial_<hash>``), so a trial that Tune starts
  again after its worker died, or that ``--resume`` asks again, finds its runs and continues them
  from their checkpoints. A lock file keeps two trials with the same parameters (possible with
  ``choice``/``int`` spaces) from writing the same runs at once; the second then finds them done.
- The Optuna study lives in ``SWEEP/optuna.db`` (SQLite), so ``--resume`` continues the same
  study: finished trials count against ``--trials`` and inform the sampler; trials that were
  running when the sweep stopped are asked again first (``points_to_evaluate``).
- Pruning (``--pruner median|asha``) compares trials after each seed: the trial reports the mean
  final metric over the seeds done so far, ``training_iteration`` = seeds done.
- ``best.json`` is computed from the run directories (every seed finished), not from Tune's
  in-memory results, so it covers the trials of earlier, interrupted invocations too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from ray import tune

from softac.analysis.stats import final_returns, read_curve
from softac.errors import SoftacError
from softac.sweep.spec import SweepSpec, space_bounds, write_json_atomic
from softac.sweep.summary import env_dir
from softac.sweep.trial import metric_problem, run_one, run_state

STUDY = "softac"


def trial_dir(out: Path, spec: SweepSpec, params: dict[str, Any]) -> Path:
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return Path(out) / env_dir(spec.envs[0]) / f"trial_{key}"


def search_trainable(config: dict[str, Any], spec_json: dict[str, Any], out: str) -> None:
    spec = SweepSpec.from_json(spec_json)
    assert spec.search is not None
    metric = spec.search["metric"]
    params = {k: config[k] for k in spec.search["space"]}
    where = trial_dir(Path(out), spec, params)
    where.mkdir(parents=True, exist_ok=True)
    write_json_atomic(where / "params.json", params)
    finals: list[float] = []
    t0 = time.perf_counter()
    with (where / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for i, seed in enumerate(spec.seeds):
            values = {**spec.given_values(), **params, "env_id": spec.envs[0], "seed": seed}
            res = run_one(spec.algo, values, where / f"seed_{seed}", metric, preset=spec.preset)
            finals.append(res["final"])
            tune.report({metric: sum(finals) / len(finals), "seeds_done": i + 1,
                         "minutes": (time.perf_counter() - t0) / 60, "error": res["error"] or ""})  # fmt: skip
            if res["error"]:
                return


def search_space(spec: SweepSpec) -> dict[str, Any]:
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


def _storage(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'optuna.db'}"


def study_state(out: Path) -> tuple[int, list[dict[str, Any]], int]:
    """Of the saved study: trials that ended, the parameters of trials that were running when
    the sweep stopped (and were not run again since), and the number of trials it holds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=STUDY, storage=_storage(out))
    except KeyError:  # no study saved yet
        return 0, [], 0
    finished = [t for t in study.trials if t.state.is_finished()]
    seen = {json.dumps(t.params, sort_keys=True) for t in finished}
    again = []
    for t in study.trials:
        key = json.dumps(t.params, sort_keys=True)
        if t.state == optuna.trial.TrialState.RUNNING and t.params and key not in seen:
            again.append(t.params)
            seen.add(key)
    return len(finished), again, len(study.trials)


def run_search(spec: SweepSpec, out: Path, run_config: Any, cost: dict[str, float]) -> dict[str, Any] | None:
    """Run the search (or the rest of it) and write best.json; returns its content."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
    from ray.tune.search.optuna import OptunaSearch

    search = spec.search
    assert search is not None
    metric, mode = search["metric"], search["mode"]
    storage = _storage(out)
    done, again, asked = study_state(out)
    todo = max(0, int(search["trials"]) - done)
    print(f"softac sweep: search of {search['trials']} trials; {done} finished, {todo} to run "
          f"({len(again)} of them interrupted before and continued)")  # fmt: skip
    if todo:
        scheduler: Any = FIFOScheduler()
        if search["pruner"] == "median":
            scheduler = MedianStoppingRule(time_attr="training_iteration", grace_period=1, min_samples_required=3)
        elif search["pruner"] == "asha":
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=len(spec.seeds), grace_period=1)
        import optuna

        # A new random stream on each resume: the first one's would propose its first points again.
        sampler = optuna.samplers.TPESampler(seed=search["seed"] + asked)
        searcher = OptunaSearch(metric=metric, mode=mode, sampler=sampler, study_name=STUDY,
                                storage=optuna.storages.RDBStorage(storage), points_to_evaluate=again[:todo] or None)
        trainable = tune.with_parameters(search_trainable, spec_json=spec.to_json(), out=str(out))
        tune.Tuner(
            tune.with_resources(trainable, cost), param_space=search_space(spec), run_config=run_config,
            tune_config=tune.TuneConfig(metric=metric, mode=mode, search_alg=searcher, scheduler=scheduler,
                                        num_samples=todo, trial_dirname_creator=lambda t: t.trial_id,
                                        reuse_actors=True),
        ).fit()  # fmt: skip
    best = best_trial(spec, out)
    if best is not None:
        write_json_atomic(Path(out) / "best.json", best)
    return best


def best_trial(spec: SweepSpec, out: Path) -> dict[str, Any] | None:
    """The trial with the best mean final metric among those whose every seed finished."""
    search = spec.search
    assert search is not None
    metric, mode = search["metric"], search["mode"]
    scored, problem = [], None
    for where in sorted((Path(out) / env_dir(spec.envs[0])).glob("trial_*")):
        try:
            params = json.loads((where / "params.json").read_text())
        except (OSError, ValueError):
            continue
        total = int(spec.run_values(spec.envs[0], params)["total_steps"])
        runs = [where / f"seed_{s}" for s in spec.seeds]
        if not all(run_state(r, total)[0] == "finished" for r in runs):
            continue  # pruned, failed or interrupted: its mean would cover fewer seeds
        problem = next((p for p in (metric_problem(r, metric) for r in runs) if p is not None), None)
        if problem is not None:
            continue
        value = float(sum(final_returns([read_curve(r, metric)])[0] for r in runs) / len(runs))
        if math.isfinite(value):
            scored.append((value if mode == "max" else -value, str(where), params, value))
    if not scored:
        raise SoftacError(problem or f"no trial of the search finished all its seeds with a finite {metric}")
    _, where_best, params, value = max(scored)
    return {"metric": metric, "mode": mode, "value": value, "seeds": spec.seeds, "config": params,
            "trial_dir": where_best}  # fmt: skip
