"""Learning-curve figures (``softac plot``): one panel per environment, one line per algorithm
(or per group label). Several seeds are drawn as their mean or IQM with a 95 % bootstrap
confidence interval band (see :mod:`softac.analysis.stats`); one seed as a plain line."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from softac.analysis.stats import Curve, curve_table, has_column, load_labelled, read_curve
from softac.errors import SoftacError

STATS = ("mean", "iqm")
# What matplotlib's Agg canvas can write; anything else failed deep inside savefig with
# "Format 'x' is not supported" after the figure was drawn.
FORMATS = (
    "avif", "eps", "gif", "jpeg", "jpg", "pdf", "pgf", "png", "ps", "raw", "rgba", "svg", "svgz", "tif", "tiff", "webp",
)  # fmt: skip


def resolve_out(out: str | os.PathLike[str] | None, single_dir: Path | None = None) -> Path:
    """Where a figure goes. ``single_dir``: the one directory being plotted (a run or a
    multi-seed directory), if only one is.

    No ``out``: ``single_dir/learning_curve.png``, else ``learning_curves.png`` here. An existing
    directory (or a path ending in ``/``) gets that file name inside it; a name without an
    extension gets ``.png``; an extension matplotlib cannot write is a :class:`SoftacError`.
    """
    name = "learning_curve.png" if single_dir is not None else "learning_curves.png"
    if out is None:
        return Path(single_dir) / name if single_dir is not None else Path(name)
    text = os.fspath(out)
    path = Path(text)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path / name
    if not path.suffix:
        return path.with_name(path.name + ".png")
    if path.suffix[1:].lower() not in FORMATS:
        raise SoftacError(
            f"cannot write a figure as '{path.suffix}' ({path}); use .png, .pdf or .svg (or no extension for .png)"
        )
    return path


def _draw(ax: Any, label: str, curves: list[Curve], stat: str, describe: bool) -> None:
    seeds = [c.seed for c in curves]
    if len(curves) == 1:
        c = curves[0]
        ax.plot(c.steps, c.returns, marker="o", ms=3, label=f"{label} (seed {seeds[0]})" if describe else label)
        return
    rows = curve_table(curves)
    steps = np.array([r["step"] for r in rows], dtype=float)
    center = np.array([r[stat] for r in rows])
    lo = np.array([r[f"{stat}_ci_low"] for r in rows])
    hi = np.array([r[f"{stat}_ci_high"] for r in rows])
    # Markers: a curve of one evaluation is a single point, which a line without markers does not
    # draw at all (the figure showed the legend only).
    line = ax.plot(steps, center, marker="o", ms=3,
                   label=f"{label} ({stat} of seeds {seeds}, 95% CI)" if describe else label)[0]  # fmt: skip
    # Steps that only one seed reached have no interval (NaN bounds): leave the band out there.
    ok = np.isfinite(lo) & np.isfinite(hi)
    if len(steps) == 1 and ok.all():  # a band of zero width is invisible: an error bar instead
        ax.errorbar(steps, center, yerr=[center - lo, hi - center], fmt="none", ecolor=line.get_color(), capsize=4)
    elif ok.any():
        ax.fill_between(steps, np.where(ok, lo, center), np.where(ok, hi, center), where=ok,
                        color=line.get_color(), alpha=0.2, linewidth=0)  # fmt: skip


Panels = dict[str, dict[str, list[Curve]]]  # {env_id: {label: curves}}
SUCCESS_METRIC = "eval_success_rate"


def _nonempty(panels: Panels) -> Panels:
    panels = {env: {k: [c for c in v if len(c.steps)] for k, v in g.items()} for env, g in panels.items()}
    panels = {env: {k: v for k, v in g.items() if v} for env, g in panels.items()}
    return {env: g for env, g in panels.items() if g}


def plot_groups(
    panels: Panels, out: Path, title: str | None = None, stat: str = "mean", describe: bool = True,
    success: Panels | None = None,
) -> Path:
    """Draw ``{env_id: {label: curves}}``, one panel per environment; written atomically.
    ``describe``: add the seeds and the statistic to each legend label (else the title should).
    ``success``: the same for the runs whose environment reports success (``eval_success_rate``),
    drawn as a second row of panels under the returns of their environment."""
    # A Figure on an Agg canvas of its own, not pyplot: ``matplotlib.use("Agg")`` here switched the
    # backend of the whole process, so a notebook's inline plots stopped showing after ``learn()``,
    # and pyplot costs 0.3 s more to import in every run that writes its curve.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if stat not in STATS:
        raise SoftacError(f"unknown statistic '{stat}': use one of {', '.join(STATS)}")
    panels = _nonempty(panels)
    rated = _nonempty(success or {})
    if not panels:
        raise SoftacError("no evaluation rows to plot yet")
    out = resolve_out(out)
    rows = 2 if rated else 1
    fig = Figure(figsize=(6 * len(panels), 4.2 * rows))
    FigureCanvasAgg(fig)  # fig.canvas from here on
    axes = fig.subplots(rows, len(panels), squeeze=False)
    for i, (env_id, groups) in enumerate(sorted(panels.items())):
        _panel(axes[0][i], env_id, groups, stat, describe, "deterministic evaluation return")
        if rows == 2 and env_id in rated:
            _panel(axes[1][i], f"{env_id}: success rate", rated[env_id], stat, describe, "evaluation success rate")
            axes[1][i].set_ylim(-0.03, 1.03)
        elif rows == 2:
            axes[1][i].set_axis_off()  # this environment reports no success
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _panel(ax: Any, name: str, groups: dict[str, list[Curve]], stat: str, describe: bool, ylabel: str) -> None:
    for label, curves in sorted(groups.items()):
        _draw(ax, label, curves, stat, describe)
    ax.set_xlim(left=0)
    ax.set_title(name)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, stat: str = "mean") -> Path:
    """Learning curves of any set of runs: one panel per environment; one line per algorithm for
    single-seed run directories, one line per multi-seed directory (see
    :func:`softac.analysis.stats.load_labelled`); seeds of a line are aggregated (``stat``: mean or iqm,
    with a 95 % CI band)."""
    panels: Panels = defaultdict(dict)
    success: Panels = defaultdict(dict)
    for (label, env_id), curves in load_labelled(list(run_dirs)).items():
        panels[env_id][label] = curves
        # The runs whose environment reports success (the column exists only then): a second row.
        rated = [read_curve(c.path, SUCCESS_METRIC) for c in curves if has_column(c.path, SUCCESS_METRIC)]
        if rated:
            success[env_id][label] = rated
    out = resolve_out(out, Path(run_dirs[0]) if len(run_dirs) == 1 else None)
    return plot_groups(panels, out, title, stat, success=success)


