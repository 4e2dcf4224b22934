"""The report's figures, drawn with rliable's plot_utils (matplotlib, no display): per task a
sample-efficiency curve (IQM over seeds, 95 % CI band); across the normalised tasks the aggregate
IQM/mean/median with CIs and the performance profile; probability of improvement between every
pair of algorithms when there are two or more. Each algorithm has one colour, the same in every
figure of a report (rliable picks a palette per call, so curves drawn one call per algorithm all came
out in its first colour)."""

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


def palette(algos: list[str]) -> dict[str, Any]:
    """{algorithm: colour}: colour-blind-safe (seaborn's "colorblind", as rliable's own default),
    assigned in sorted order over every algorithm of the report so each keeps its colour throughout."""
    import seaborn as sns

    names = sorted(set(algos))
    return dict(zip(names, sns.color_palette("colorblind", n_colors=max(len(names), 1)), strict=False))


def curve_axes(rows: list[dict[str, Any]], env: str, colors: dict[str, Any] | None = None) -> tuple[Any, Any] | None:
    """(figure, axes) of ``env``'s sample-efficiency curves, one colour and legend entry per algorithm."""
    data = S.curves(rows, env)
    if not data:
        return None
    colors = colors or palette(list(data))
    plt, pu = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    # rliable's plot takes one frame axis for all algorithms; each algorithm keeps its own steps here.
    for algo, (steps, point, ci) in data.items():
        pu.plot_sample_efficiency_curve(steps, {algo: point}, {algo: ci}, algorithms=[algo], ax=ax,
                                        colors={algo: colors[algo]}, xlabel="environment steps",
                                        ylabel="IQM return (95% CI)", labelsize="medium",
                                        ticklabelsize="small")  # fmt: skip
    ax.set_title(env)
    ax.legend(loc="best")
    return fig, ax


def curve_figure(rows: list[dict[str, Any]], env: str, out: Path, colors: dict[str, Any] | None = None) -> Path | None:
    drawn = curve_axes(rows, env, colors)
    if drawn is None:
        return None
    plt, _ = _plt()
    return _save(plt, drawn[0], out / f"curve_{env.translate(_SAFE)}.png")


def aggregate_figure(point: dict[str, np.ndarray], ci: dict[str, np.ndarray], out: Path,
                     colors: dict[str, Any] | None = None) -> Path:  # fmt: skip
    plt, pu = _plt()
    fig, _ = pu.plot_interval_estimates(point, ci, metric_names=["IQM", "Mean", "Median"], algorithms=sorted(point),
                                        colors=colors or palette(list(point)), xlabel="normalised score")  # fmt: skip
    return _save(plt, fig, out / "aggregate.png")


def profile_figure(scores: dict[str, np.ndarray], out: Path, colors: dict[str, Any] | None = None) -> Path:
    rly, _ = S.rliable()
    plt, pu = _plt()
    top = max(1.0, max(float(v.max()) for v in scores.values()))
    taus = np.linspace(0.0, top * 1.05, 101)
    with S.seeded():
        profiles, cis = rly.create_performance_profile(scores, taus, reps=S.CURVE_REPS)
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = colors or palette(list(scores))
    pu.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax, colors=colors,
                                 xlabel=r"normalised score $\tau$", ylabel=r"fraction of runs > $\tau$")  # fmt: skip
    ax.legend(loc="best")
    return _save(plt, fig, out / "performance_profile.png")


def improvement_figure(point: dict[str, float], ci: dict[str, np.ndarray], out: Path) -> Path:
    plt, pu = _plt()
    fig, ax = plt.subplots(figsize=(5, 1 + 0.5 * len(point)))
    pu.plot_probability_of_improvement(point, ci, ax=ax)
    return _save(plt, fig, out / "probability_of_improvement.png")
