"""Statistics over seeds: IQM, bootstrap confidence intervals, probability of improvement, and
reading single- and multi-seed run directories into learning curves.

One seed is an anecdote (Henderson et al. 2018, "Deep RL that matters"); results are reported as
an aggregate over seeds with a 95 % bootstrap confidence interval, and the interquartile mean is
preferred to the mean because it is robust to one outlying seed yet uses half the data
(Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice"; their library rliable
computes the same quantities, which is not a dependency here because of its size).

Intervals are percentile bootstrap intervals from :func:`scipy.stats.bootstrap` with a seeded
generator, so every number is reproducible. With one seed there is no interval: the bounds are NaN
(a one-point "interval" would claim a certainty that a single run does not give).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softac.errors import SoftacError


def _sps() -> Any:
    """``scipy.stats``, imported on first use: importing it costs ≈ 1.3 s and ≈ 60 MB of resident
    memory, and every training run imports this module (for its end-of-run summary) while only
    the statistics themselves need scipy."""
    from scipy import stats

    return stats

N_RESAMPLES = 5000
SUMMARY_FIELDS = [
    "step", "n_seeds", "mean", "median", "iqm", "mean_ci_low", "mean_ci_high", "iqm_ci_low", "iqm_ci_high",
]  # fmt: skip


# -- point estimates and intervals ------------------------------------------------------------
def iqm(x: Any, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50 % of the values, i.e. the mean after
    discarding the lowest and the highest 25 % (``scipy.stats.trim_mean(x, 0.25)``, as rliable).
    With fewer than 4 values nothing is discarded and it equals the mean."""
    return _sps().trim_mean(np.asarray(x, dtype=float), 0.25, axis=axis)


def _ci(
    data: tuple[np.ndarray, ...], statistic: Any, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval over the seeds (each sample resampled independently)."""
    if any(len(d) < 2 for d in data):
        return math.nan, math.nan
    # Why: when every resample gives the same value the interval is that value; scipy warns about
    # degenerate data (and BCa returns NaN), so answer directly.
    if all(np.ptp(d) == 0 for d in data) and len(data) == 1:
        v = float(data[0][0])
        return v, v
    res = _sps().bootstrap(
        data, statistic, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        vectorized=True, random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def aggregate(values: Any, confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, float]:
    """Summary of one number per seed (e.g. final returns).

    Returns ``n, mean, median, iqm`` and percentile-bootstrap ``confidence`` intervals of the
    mean and of the IQM (``mean_ci_low/high``, ``iqm_ci_low/high``): resample the seeds with
    replacement ``n_resamples`` times, take the statistic of each resample, report its
    (1 − c)/2 and (1 + c)/2 quantiles. Deterministic given ``seed``. With n = 1 the bounds are
    NaN (no interval from one run); with n = 2 the interval spans the two values' resamples.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise SoftacError("no values to aggregate")
    if not 0 < confidence < 1:
        raise SoftacError(f"confidence must be in (0, 1), got {confidence}")
    mean_lo, mean_hi = _ci((x,), np.mean, confidence, n_resamples, seed)
    iqm_lo, iqm_hi = _ci((x,), iqm, confidence, n_resamples, seed)
    return {
        "n": int(x.size), "mean": float(x.mean()), "median": float(np.median(x)), "iqm": float(iqm(x)),
        "mean_ci_low": mean_lo, "mean_ci_high": mean_hi, "iqm_ci_low": iqm_lo, "iqm_ci_high": iqm_hi,
    }  # fmt: skip


def _poi(x: np.ndarray, y: np.ndarray, axis: int = -1) -> Any:
    """P(X > Y) over all pairs, ties counting 1/2 (vectorised over leading resample axes)."""
    x, y = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
    return (x > y).mean(axis=(-2, -1)) + 0.5 * (x == y).mean(axis=(-2, -1))


def probability_of_improvement(
    x: Any, y: Any, confidence: float = 0.95, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> dict[str, float]:
    """Probability that a run of X scores higher than a run of Y (Agarwal et al. 2021):
    P(X > Y) = U / (n·m), with U the Mann–Whitney statistic of X (every pair (x_i, y_j) counts 1
    if x_i > y_j, 1/2 if equal). 0.5 means no difference. The interval resamples the seeds of
    X and of Y independently; NaN bounds when either side has a single run.
    Returns ``{"p": ..., "ci_low": ..., "ci_high": ...}``."""
    a, b = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise SoftacError("probability of improvement needs at least one value on each side")
    p = float(_sps().mannwhitneyu(a, b).statistic) / (a.size * b.size)
    lo, hi = _ci((a, b), _poi, confidence, n_resamples, seed)
    return {"p": p, "ci_low": lo, "ci_high": hi}


# -- reading runs -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """One run's evaluation curve: ``returns[i]`` is the evaluation return at ``steps[i]``."""

    path: Path
    algo: str
    env_id: str
    seed: int
    steps: np.ndarray
    returns: np.ndarray


def expand_runs(paths: list[Path]) -> list[Path]:
    """Single-seed run directories as given; a multi-seed directory (``seed_*`` subdirectories)
    becomes its seeds, in seed order. Anything else is a :class:`SoftacError`."""
    runs: list[Path] = []
    for path in map(Path, paths):
        if (path / "progress.csv").is_file() or (path / "config.json").is_file():
            runs.append(path)
            continue
        seeds = [p for p in path.glob("seed_*") if p.is_dir()] if path.is_dir() else []
        if not seeds:
            what = "does not exist" if not path.exists() else "has no progress.csv and no seed_* subdirectories"
            raise SoftacError(f"{path} {what}; give softac run directories or multi-seed directories")
        runs.extend(sorted(seeds, key=lambda p: (len(p.name), p.name)))
    return runs


def has_column(run_dir: Path, column: str) -> bool:
    """Whether the run's progress.csv has ``column`` (e.g. ``eval_success_rate``, which only a run
    whose environment reports success has); False when the file cannot be read."""
    try:
        with (Path(run_dir) / "progress.csv").open(newline="") as f:
            return column in (csv.DictReader(f).fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def read_curve(run_dir: Path, metric: str = "eval_return_mean") -> Curve:
    """Read a run's ``config.json`` (algo, env, seed; '?' when missing) and ``progress.csv``.
    A missing file, a missing column or a non-numeric step is a :class:`SoftacError`."""
    run_dir = Path(run_dir)
    progress = run_dir / "progress.csv"
    if not progress.is_file():
        raise SoftacError(f"{run_dir} has no progress.csv; is it a softac run directory?")
    try:
        meta = json.loads((run_dir / "config.json").read_text())
        algo, env_id, seed = str(meta["algo"]), str(meta["config"]["env_id"]), int(meta["config"]["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        algo, env_id, seed = "?", "?", -1
    try:
        with progress.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("step", metric) if c not in (reader.fieldnames or [])]
            if missing:
                raise SoftacError(f"{progress} has no '{missing[0]}' column; is it a softac progress.csv?")
            rows = [(r["step"], r[metric], reader.line_num) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SoftacError(f"cannot read {progress}: {exc}") from None
    steps, values = [], []
    for step, value, line in rows:
        try:
            steps.append(int(float(step)))
            values.append(float(value) if value not in (None, "") else math.nan)
        except (TypeError, ValueError):
            raise SoftacError(f"{progress} line {line}: non-numeric step or {metric} ({step!r}, {value!r})") from None
    return Curve(run_dir, algo, env_id, seed, np.asarray(steps, dtype=np.int64), np.asarray(values))


def load_curves(paths: list[Path], metric: str = "eval_return_mean") -> dict[tuple[str, str], list[Curve]]:
    """Every run under ``paths`` (see :func:`expand_runs`), grouped by ``(algo, env_id)`` from
    each run's config.json, each group sorted by seed."""
    groups: dict[tuple[str, str], list[Curve]] = defaultdict(list)
    for run in expand_runs(paths):
        curve = read_curve(run, metric)
        groups[(curve.algo, curve.env_id)].append(curve)
    return {k: sorted(v, key=lambda c: (c.seed, str(c.path))) for k, v in sorted(groups.items())}


def load_labelled(paths: list[Path], metric: str = "eval_return_mean") -> dict[tuple[str, str], list[Curve]]:
    """Runs grouped by ``(label, env_id)`` for figures: single-seed run directories by algorithm
    (label ``SAC``), each multi-seed directory as its own group (label ``SAC <dir name>``, so two
    settings of one algorithm, e.g. two directories of a sweep, stay two lines)."""
    groups: dict[tuple[str, str], list[Curve]] = defaultdict(list)
    for path in map(Path, paths):
        runs = expand_runs([path])
        multi = runs != [path]
        for run in runs:
            curve = read_curve(run, metric)
            label = curve.algo.upper() + (f" {path.resolve().name}" if multi else "")
            groups[(label, curve.env_id)].append(curve)
    return {k: sorted(v, key=lambda c: (c.seed, str(c.path))) for k, v in sorted(groups.items())}


def curve_table(curves: list[Curve], confidence: float = 0.95, seed: int = 0) -> list[dict[str, float]]:
    """Aggregate over seeds at every evaluation step that any seed reached.

    Unequal lengths (a seed still running, or stopped early) are handled per step: each step is
    aggregated over the seeds that have an evaluation at exactly that step, and ``n_seeds`` says
    how many; a step with one seed has NaN bounds. NaN returns are left out of their step."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for c in curves:
        for s, r in zip(c.steps.tolist(), c.returns.tolist(), strict=True):
            if math.isfinite(r):
                by_step[s].append(r)
    rows = []
    for step in sorted(by_step):
        agg = aggregate(by_step[step], confidence=confidence, seed=seed)
        rows.append({"step": step, "n_seeds": agg.pop("n"), **agg})
    return rows


def final_returns(curves: list[Curve], at_step: int | None = None) -> np.ndarray:
    """One number per run: its last evaluation, or its evaluation at ``at_step`` (an error
    naming the run when it has none there)."""
    out = []
    for c in curves:
        if at_step is None:
            if len(c.steps) == 0:
                raise SoftacError(f"{c.path} has no evaluation rows yet")
            out.append(float(c.returns[-1]))
            continue
        hit = np.flatnonzero(c.steps == at_step)
        if hit.size == 0:
            reached = f"its last is at step {int(c.steps[-1])}" if len(c.steps) else "it has none"
            raise SoftacError(f"{c.path} has no evaluation at step {at_step} ({reached})")
        out.append(float(c.returns[hit[-1]]))
    return np.asarray(out)


def write_csv_atomic(path: Path, fields: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write a CSV through a temporary file and a rename: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_summary(runs: Path | list[Path], out_csv: Path, confidence: float = 0.95, seed: int = 0) -> Path:
    """``summary.csv`` of a set of seeds of one algorithm on one environment (a multi-seed
    directory, or a list of run directories): one row per evaluation step with ``step, n_seeds,
    mean, median, iqm`` and the bootstrap bounds of the mean and IQM (see :func:`curve_table`)."""
    paths = [runs] if isinstance(runs, (str, Path)) else list(runs)
    groups = load_curves(paths)
    if not groups:
        raise SoftacError("no runs to summarise")
    if len(groups) > 1:
        names = ", ".join(f"{a} on {e}" for a, e in groups)
        raise SoftacError(f"a summary covers one algorithm on one environment; these runs mix {names}")
    curves = next(iter(groups.values()))
    return write_csv_atomic(out_csv, SUMMARY_FIELDS, curve_table(curves, confidence, seed))
