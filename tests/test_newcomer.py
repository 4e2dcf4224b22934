"""What a new user met first (issue 22): a multi-seed curve of one evaluation that drew nothing,
progress.csv columns that are always empty for the run's family, PPO's bar without a total."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import TINY, fake_run
from test_ppo import PPO_TINY

from softac import PPO, SAC
from softac.logging import COMMON_FIELDS, FAMILY_FIELDS, read_progress
from softac.plot import plot_runs


def _drawn_pixels(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """At savefig: how many pixels of the first line's colour the axes show, legend removed (a
    legend alone draws that colour too, which is what the figure showed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    seen: dict[str, int] = {}
    original = plt.Figure.savefig

    def spy(fig: Any, *args: Any, **kwargs: Any) -> None:
        ax = fig.axes[0]
        colour = np.array(mcolors.to_rgb(ax.get_lines()[0].get_color())) * 255
        legend = ax.get_legend()
        legend.set_visible(False)
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
        seen["pixels"] = int((np.abs(image - colour).max(axis=-1) < 40).sum())
        legend.set_visible(True)
        original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    return seen


@pytest.mark.parametrize("evaluations", [[-500.0], [-500.0, -300.0]])
def test_multi_seed_curve_is_visible_with_one_evaluation(
    evaluations: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seeds"
    for seed in (0, 1, 2):
        fake_run(root, f"seed_{seed}", "sac", "Pendulum-v1", seed, [r + 40 * seed for r in evaluations])
    seen = _drawn_pixels(monkeypatch)
    plot_runs([root], tmp_path / "curve.png")
    assert seen["pixels"] > 20  # a marker (and an interval), not the legend only


def test_progress_csv_has_its_familys_columns_only(tmp_path: Path) -> None:
    SAC("Pendulum-v1", **TINY, learning_starts=50, total_steps=100, eval_freq=100, log_freq=50).learn(
        run_dir=tmp_path / "sac", progress=False
    )
    PPO("Pendulum-v1", **PPO_TINY, total_steps=64, eval_freq=64, log_freq=32).learn(
        run_dir=tmp_path / "ppo", progress=False
    )
    for name, family in (("sac", "off-policy"), ("ppo", "on-policy")):
        rows = read_progress(tmp_path / name / "progress.csv")
        assert list(rows[-1]) == COMMON_FIELDS + FAMILY_FIELDS[family]
        assert "step" in rows[-1] and "eval_return_mean" in rows[-1]
        # every family column is filled (training scalars logged before the final evaluation)
        assert all(rows[-1][c] != "" for c in FAMILY_FIELDS[family]), (name, rows[-1])


def test_ppo_progress_bar_keeps_its_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 100 steps in rollouts of 16 × 2 = 32 steps: the run ends at 128, the first boundary past 100
    agent = PPO("Pendulum-v1", **PPO_TINY, total_steps=100, eval_freq=1000)
    agent.learn(progress=True)
    assert agent.env_steps == 128
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any("128/128" in line for line in bar), bar[-3:]
    assert not any("128step" in line or "/100 " in line for line in bar)  # no total dropped, none wrong
