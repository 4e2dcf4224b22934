"""Learning-curve figures from one or several run directories (``softac plot``)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from softac.errors import SoftacError
from softac.logging import read_progress


def _load(run_dir: Path) -> tuple[str, str, int, np.ndarray, np.ndarray]:
    progress = run_dir / "progress.csv"
    if not progress.is_file():
        raise SoftacError(f"{run_dir} has no progress.csv; is it a softac run directory?")
    try:
        meta = json.loads((run_dir / "config.json").read_text())
        algo, env_id, seed = meta["algo"], meta["config"]["env_id"], int(meta["config"]["seed"])
    except (OSError, ValueError, KeyError):
        algo, env_id, seed = "?", "?", 0
    rows = read_progress(progress)
    steps = np.array([float(r["step"]) for r in rows])
    returns = np.array([float(r["eval_return_mean"]) for r in rows])
    return algo, env_id, seed, steps, returns


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """One panel per environment; one line per algorithm. Several seeds of the same algorithm and
    environment are drawn as their mean with a min–max band (on the steps they share)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, dict[str, list[tuple[int, np.ndarray, np.ndarray]]]] = defaultdict(lambda: defaultdict(list))
    for run_dir in run_dirs:
        algo, env_id, seed, steps, returns = _load(Path(run_dir))
        if len(steps):
            groups[env_id][algo].append((seed, steps, returns))
    if not groups:
        raise SoftacError("no evaluation rows to plot yet")
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False)
    for ax, (env_id, algos) in zip(axes[0], sorted(groups.items()), strict=True):
        for algo, runs in sorted(algos.items()):
            seeds = sorted(s for s, _, _ in runs)
            if len(runs) == 1:
                _, steps, returns = runs[0]
                ax.plot(steps, returns, marker="o", ms=3, label=f"{algo.upper()} (seed {seeds[0]})")
                continue
            n = min(len(s) for _, s, _ in runs)
            steps = runs[0][1][:n]
            stack = np.stack([r[:n] for _, _, r in runs])
            line = ax.plot(steps, stack.mean(0), label=f"{algo.upper()} (mean of seeds {seeds})")[0]
            ax.fill_between(steps, stack.min(0), stack.max(0), color=line.get_color(), alpha=0.2)
        ax.set_xlim(left=0)
        ax.set_title(env_id)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("deterministic evaluation return")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
