"""The report's figures, drawn with rliable's plot_utils (matplotlib, no display): per task a
sample-efficiency curve (IQM over seeds, 95 % CI band); across the normalised tasks the aggregate
IQM/mean/median with CIs and the performance profile; probability of improvement between every
pair of algorithms when there are two or more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from softac.suite import scores as S

_SAFE = str.maketrans({c: "_" for c in "/\\:* ?\"'<>|"})


def _plt() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a cluster node or in CI
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    return plt, plot_utils


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def curve_figure(rows: list[dict[str, Any]], env: str, out: Path) -> Path | None:
    data = S.curves(rows, env)
    if not data:
        return None
    plt, pu = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    # rliable's plot takes one frame axis for all algorithms; each algorithm keeps its own steps here.
    for algo, (steps, point, ci) in data.items():
        pu.plot_sample_efficiency_curve(steps, {algo: point}, {algo: ci}, algorithms=[algo], ax=ax,
                                        xlabel="environment steps", ylabel="IQM return (95% CI)",
                                        labelsize="medium", ticklabelsize="small")  # fmt: skip
    ax.set_title(env)
    ax.legend(loc="best")
    return _save(plt, fig, out / f"curve_{env.translate(_SAFE)}.png")


def aggregate_figure(point: dict[str, np.ndarray], ci: dict[str, np.ndarray], out: Path) -> Path:
    plt, pu = _plt()
    fig, _ = pu.plot_interval_estimates(point, ci, metric_names=["IQM", "Mean", "Median"],
                                        algorithms=sorted(point), xlabel="normalised score")  # fmt: skip
    return _save(plt, fig, out / "aggregate.png")


def profile_figure(scores: dict[str, np.ndarray], out: Path) -> Path:
    rly, _ = S.rliable()
    plt, pu = _plt()
    top = max(1.0, max(float(v.max()) for v in scores.values()))
    taus = np.linspace(0.0, top * 1.05, 101)
    with S.seeded():
        profiles, cis = rly.create_performance_profile(scores, taus, reps=S.CURVE_REPS)
    fig, ax = plt.subplots(figsize=(6, 4))
    pu.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax,
                                 xlabel=r"normalised score $\tau$", ylabel=r"fraction of runs > $\tau$")  # fmt: skip
    ax.legend(loc="best")
    return _save(plt, fig, out / "performance_profile.png")


def improvement_figure(point: dict[str, float], ci: dict[str, np.ndarray], out: Path) -> Path:
    plt, pu = _plt()
    fig, ax = plt.subplots(figsize=(5, 1 + 0.5 * len(point)))
    pu.plot_probability_of_improvement(point, ci, ax=ax)
    return _save(plt, fig, out / "probability_of_improvement.png")
