"""Learning-curve figures (``softac plot``): one panel per environment, one line per algorithm
(or per group label). Several seeds are drawn as their mean or IQM with a 95 % bootstrap
confidence interval band (see :mod:`softac.stats`); one seed as a plain line."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from softac.errors import SoftacError
from softac.stats import Curve, curve_table, load_labelled

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


def plot_groups(
    panels: dict[str, dict[str, list[Curve]]], out: Path, title: str | None = None, stat: str = "mean",
    describe: bool = True,
) -> Path:
    """Draw ``{env_id: {label: curves}}``, one panel per environment; written atomically.
    ``describe``: add the seeds and the statistic to each legend label (else the title should)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if stat not in STATS:
        raise SoftacError(f"unknown statistic '{stat}': use one of {', '.join(STATS)}")
    panels = {env: {k: [c for c in v if len(c.steps)] for k, v in g.items()} for env, g in panels.items()}
    panels = {env: {k: v for k, v in g.items() if v} for env, g in panels.items()}
    panels = {env: g for env, g in panels.items() if g}
    if not panels:
        raise SoftacError("no evaluation rows to plot yet")
    out = resolve_out(out)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (env_id, groups) in zip(axes[0], sorted(panels.items()), strict=True):
        for label, curves in sorted(groups.items()):
            _draw(ax, label, curves, stat, describe)
        ax.set_xlim(left=0)
        ax.set_title(env_id)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("deterministic evaluation return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    try:
        fig.savefig(tmp, dpi=110)
        tmp.replace(out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, stat: str = "mean") -> Path:
    """Learning curves of any set of runs: one panel per environment; one line per algorithm for
    single-seed run directories, one line per multi-seed directory (see
    :func:`softac.stats.load_labelled`); seeds of a line are aggregated (``stat``: mean or iqm,
    with a 95 % CI band)."""
    panels: dict[str, dict[str, list[Curve]]] = defaultdict(dict)
    for (label, env_id), curves in load_labelled(list(run_dirs)).items():
        panels[env_id][label] = curves
    return plot_groups(panels, resolve_out(out, Path(run_dirs[0]) if len(run_dirs) == 1 else None), title, stat)


