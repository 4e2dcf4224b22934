"""``SWEEP/summary.csv`` and ``SWEEP/summary.png``: per environment and setting, the final return
over seeds (mean, median, IQM, 95 % bootstrap CIs; :mod:`softac.analysis.stats`) and the learning curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from softac.analysis.plot import plot_groups
from softac.analysis.stats import Curve, aggregate, final_returns, read_curve, write_csv_atomic
from softac.errors import SoftacError
from softac.sweep.spec import SweepSpec

SWEEP_SUMMARY_FIELDS = [
    "env", "setting", "n_seeds", "last_step", "mean", "median", "iqm", "mean_ci_low", "mean_ci_high",
    "iqm_ci_low", "iqm_ci_high",
]  # fmt: skip


def env_dir(env_id: str) -> str:
    """An environment id as one directory name ('ALE/Pong-v5' has a slash)."""
    return env_id.replace("/", "_")


def setting_dirs(out: Path, spec: SweepSpec, env_id: str) -> list[Path]:
    base = Path(out) / env_dir(env_id)
    if spec.search is None:
        return [base / label for label, _ in spec.settings()]
    return sorted(p for p in base.glob("trial_*") if p.is_dir())


def _curves(setting: Path) -> list[Curve]:
    """The seeds of a setting that have at least one evaluation (a run still at its start has none)."""
    runs = sorted((p for p in setting.glob("seed_*") if (p / "progress.csv").is_file()),
                  key=lambda p: (len(p.name), p.name))  # fmt: skip
    curves = []
    for run in runs:
        try:
            curve = read_curve(run)
        except SoftacError:
            continue  # a damaged file of one run must not cost the summary of the others
        if len(curve.steps):
            curves.append(curve)
    return curves


def write_sweep_summary(out: Path, spec: SweepSpec) -> dict[str, Any]:
    """Write summary.csv (and summary.png when any run has an evaluation); return the rows."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    panels: dict[str, dict[str, list[Curve]]] = {}
    for env_id in spec.envs:
        for setting in setting_dirs(out, spec, env_id):
            curves = _curves(setting)
            if not curves:
                continue
            agg = aggregate(final_returns(curves))
            rows.append({"env": env_id, "setting": setting.name, "n_seeds": agg.pop("n"),
                         "last_step": max(int(c.steps[-1]) for c in curves), **agg})  # fmt: skip
            ci = "" if math.isnan(agg["iqm_ci_low"]) else f" [{agg['iqm_ci_low']:.4g}, {agg['iqm_ci_high']:.4g}]"
            n = len(curves)
            panels.setdefault(env_id, {})[f"{setting.name}: final IQM {agg['iqm']:.4g}{ci}, {n} seed(s)"] = curves
    write_csv_atomic(out / "summary.csv", SWEEP_SUMMARY_FIELDS, rows)
    if panels:
        title = f"{spec.algo.upper()} sweep: mean over seeds with 95% bootstrap CI"
        plot_groups(panels, out / "summary.png", title=title, describe=False)
    return {"rows": rows}
