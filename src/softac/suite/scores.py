"""A suite's results as the arrays rliable takes, and the statistics computed with rliable
(Agarwal et al., NeurIPS 2021): IQM and mean with stratified-bootstrap 95 % CIs, performance
profiles, probability of improvement. Nothing here re-implements what rliable computes.

Normalised scores (aggregates and profiles across tasks) divide a return by a normaliser: the
published SAC return at 1M steps from ``reference/mujoco_published.csv`` (Gym v4, not rerun) for
the MuJoCo tasks, and 500, the episode cap, for CartPole-v1. Tasks without a normaliser (Pendulum,
LunarLander) enter the per-task table and curves but no aggregate; the report says which.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import numpy as np

from softac.errors import SoftacError

REPS = 2000  # bootstrap resamples of the table, the aggregates and probability of improvement
CURVE_REPS = 500  # per evaluation step of a curve (many steps: fewer resamples each)
MAX_CURVE_POINTS = 50
SEED = 0  # the bootstrap's RandomState: every number of a report is reproducible
# (env base name -> normaliser, what it is) beside the published SAC 1M numbers
OTHER_NORMALISERS = {"CartPole": (500.0, "the episode cap of CartPole-v1")}

Finals = dict[tuple[str, str], dict[int, tuple[int, float]]]


def rliable() -> tuple[Any, Any]:
    """``(rliable.library, rliable.metrics)``, imported on use: rliable is an optional extra (and
    its import pulls in arch, statsmodels and seaborn, seconds that `softac suite` runs need not pay)."""
    try:
        from rliable import library, metrics
    except ImportError:
        raise SoftacError("softac suite report needs rliable: pip install 'softac[suite]'") from None
    return library, metrics


def reference() -> list[dict[str, str]]:
    text = resources.files("softac.suite").joinpath("reference/mujoco_published.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def normalisers(envs: list[str]) -> dict[str, tuple[float, str]]:
    """{env id: (normaliser, what it is)} for the envs that have one."""
    sac_1m = {r["env"]: float(r["return"]) for r in reference() if r["algorithm"] == "SAC" and r["step"] == "1000000"}
    out = {}
    for env in envs:
        base = env.split("-v")[0]
        if base in sac_1m:
            out[env] = (sac_1m[base], "published SAC at 1M steps (Gym v4, not rerun)")
        elif base in OTHER_NORMALISERS:
            out[env] = OTHER_NORMALISERS[base]
    return out


def final_by_cell(rows: list[dict[str, Any]]) -> Finals:
    """{(env, algorithm): {seed: (last step, return there)}}."""
    out: Finals = {}
    for r in rows:
        seeds = out.setdefault((r["env"], r["algorithm"]), {})
        if r["seed"] not in seeds or r["step"] >= seeds[r["seed"]][0]:
            seeds[r["seed"]] = (r["step"], r["return"])
    return out


def final_success_by_cell(rows: list[dict[str, Any]]) -> Finals:
    """{(env, algorithm): {seed: (last step, success rate there)}} of the cells whose every seed's
    last evaluation reports a success rate (``success`` not None); the others are absent."""
    last: dict[tuple[str, str], dict[int, tuple[int, float | None]]] = {}
    for r in rows:
        seeds = last.setdefault((r["env"], r["algorithm"]), {})
        if r["seed"] not in seeds or r["step"] >= seeds[r["seed"]][0]:
            seeds[r["seed"]] = (r["step"], r.get("success"))
    return {
        cell: {s: (st, ok) for s, (st, ok) in seeds.items() if ok is not None}
        for cell, seeds in last.items()
        if all(ok is not None for _, ok in seeds.values())
    }


@contextmanager
def seeded() -> Iterator[np.random.RandomState]:
    """What rliable's bootstrap needs to be reproducible: its StratifiedBootstrap draws the resampled
    indices from numpy's *global* generator (``np.random.choice``), not from the ``random_state``
    it is given; so seed the global one for the call and put the caller's state back after."""
    # rliable hands random_state to arch, which deprecates it with a warning per call; harmless here.
    warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    saved = np.random.get_state()
    np.random.seed(SEED)
    try:
        yield np.random.RandomState(SEED)
    finally:
        np.random.set_state(saved)


def task_estimates(values: list[float]) -> dict[str, float]:
    """Mean and IQM of one task's per-seed finals, each with its 95 % bootstrap CI over the seeds
    (rliable's stratified bootstrap over one task; NaN bounds with one seed: no interval from one run)."""
    rly, metrics = rliable()
    x = np.asarray(values, dtype=float)[:, None]
    out = {"n": float(len(values)), "mean": float(metrics.aggregate_mean(x)), "iqm": float(metrics.aggregate_iqm(x))}
    low = high = np.full(2, np.nan)
    if len(values) >= 2:
        with seeded() as rs:
            _, ci = rly.get_interval_estimates({"a": x}, lambda s: np.array([metrics.aggregate_mean(s),
                                               metrics.aggregate_iqm(s)]), reps=REPS, random_state=rs)  # fmt: skip
        low, high = ci["a"]
    out.update(mean_ci_low=float(low[0]), mean_ci_high=float(high[0]), iqm_ci_low=float(low[1]),
               iqm_ci_high=float(high[1]))  # fmt: skip
    return out


def score_matrix(finals: Finals, algos: list[str], envs: list[str], scale: dict[str, float]) -> dict[str, np.ndarray]:
    """{algorithm: (runs, tasks)} of final returns divided by ``scale`` (1 where absent), over the
    seeds every one of ``envs`` has for that algorithm (a stratified bootstrap needs whole rows)."""
    out = {}
    for algo in algos:
        seeds = sorted(set.intersection(*(set(finals[(e, algo)]) for e in envs)))
        if seeds:
            out[algo] = np.array([[finals[(e, algo)][s][1] / scale.get(e, 1.0) for e in envs] for s in seeds])
    return out


def aggregates(scores: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(IQM, mean, median) of normalised scores across tasks and runs, with stratified-bootstrap CIs."""
    rly, metrics = rliable()
    func = lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_mean(s), metrics.aggregate_median(s)])  # noqa: E731
    with seeded() as rs:
        point, ci = rly.get_interval_estimates(scores, func, reps=REPS, random_state=rs)
    return dict(point), dict(ci)


def improvement(scores: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """P(X > Y) for every ordered pair "X,Y" of algorithms (rliable's probability_of_improvement,
    rank-based per task, so raw returns need no normaliser), with stratified-bootstrap CIs."""
    rly, metrics = rliable()
    algos = sorted(scores)
    pairs = {}
    for i, x in enumerate(algos):
        for y in algos[i + 1 :]:
            n = min(len(scores[x]), len(scores[y]))  # the bootstrap resamples both with the same rows
            pairs[f"{x},{y}"] = (scores[x][:n], scores[y][:n])
    if not pairs:
        return {}, {}
    with seeded() as rs:
        point, ci = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=REPS, random_state=rs)
    return {k: float(np.ravel(v)[0]) for k, v in point.items()}, {k: np.ravel(v) for k, v in ci.items()}


def curves(rows: list[dict[str, Any]], env: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{algorithm: (steps, IQM over seeds at each step, its 95 % CI (2, steps))} for ``env``, over
    the evaluation steps every seed reached (at most MAX_CURVE_POINTS of them, evenly spaced)."""
    rly, metrics = rliable()
    by: dict[str, dict[int, dict[int, float]]] = {}
    for r in rows:
        if r["env"] == env:
            by.setdefault(r["algorithm"], {}).setdefault(r["seed"], {})[r["step"]] = r["return"]
    out = {}
    for algo, seeds in sorted(by.items()):
        steps = sorted(set.intersection(*(set(v) for v in seeds.values())))
        if len(steps) > MAX_CURVE_POINTS:
            steps = [steps[round(i)] for i in np.linspace(0, len(steps) - 1, MAX_CURVE_POINTS)]
        if not steps:
            continue
        arr = np.array([[seeds[s][t] for t in steps] for s in sorted(seeds)])[:, None, :]  # (runs, 1 task, steps)
        func = lambda s: np.array([metrics.aggregate_iqm(s[..., j]) for j in range(s.shape[-1])])  # noqa: E731
        with seeded() as rs:
            point, ci = rly.get_interval_estimates({algo: arr}, func, reps=CURVE_REPS, random_state=rs)
        out[algo] = (np.array(steps), point[algo], ci[algo])
    return out
