"""Learning-curve figures and the run logger, on hand-made run directories (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from softac import SoftacError
from softac.logging import CSV_FIELDS, RunLogger, read_progress
from softac.plot import plot_runs

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _fake_run(root: Path, name: str, algo: str, env_id: str, seed: int, returns: list[float]) -> Path:
    run = root / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"algo": algo, "config": {"env_id": env_id, "seed": seed}}))
    lines = ["step,eval_return_mean,eval_return_std,wall_time_s"]
    lines += [f"{100 * (i + 1)},{r},0,{i}" for i, r in enumerate(returns)]
    (run / "progress.csv").write_text("\n".join(lines) + "\n")
    return run


def _capture_figure(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    original = plt.Figure.savefig

    def spy(fig: Any, *args: Any, **kwargs: Any) -> None:
        seen["axes"] = [
            (ax.get_title(), {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()})
            for ax in fig.axes
        ]
        seen["bands"] = sum(len(ax.collections) for ax in fig.axes)
        original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    return seen


def test_plot_groups_by_env_and_algorithm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [
        _fake_run(tmp_path, "a", "sac", "Pendulum-v1", 0, [-1000, -500, -200]),
        _fake_run(tmp_path, "b", "sac", "Pendulum-v1", 1, [-800, -300, -100]),
        _fake_run(tmp_path, "c", "td3", "Pendulum-v1", 0, [-1200, -900]),
        _fake_run(tmp_path, "d", "ddpg", "HalfCheetah-v5", 0, [10, 20]),
    ]
    seen = _capture_figure(monkeypatch)
    out = plot_runs(runs, tmp_path / "out" / "curves.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "out").glob(".*tmp*"))  # written atomically, no temp file left
    panels = dict(seen["axes"])
    assert set(panels) == {"Pendulum-v1", "HalfCheetah-v5"}
    pend = panels["Pendulum-v1"]
    assert set(pend) == {"SAC (mean of seeds [0, 1])", "TD3 (seed 0)"}
    assert pend["SAC (mean of seeds [0, 1])"] == [-900, -400, -150]  # the mean over seeds
    assert pend["TD3 (seed 0)"] == [-1200, -900]
    assert panels["HalfCheetah-v5"] == {"DDPG (seed 0)": [10, 20]}
    assert seen["bands"] == 1  # the min–max band of the two SAC seeds


def test_plot_errors(tmp_path: Path) -> None:
    with pytest.raises(SoftacError, match=r"no progress\.csv"):
        plot_runs([tmp_path], tmp_path / "x.png")
    empty = _fake_run(tmp_path, "empty", "sac", "Pendulum-v1", 0, [])
    with pytest.raises(SoftacError, match="no evaluation rows"):
        plot_runs([empty], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_run_logger_appends_rows_and_truncates_on_resume(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path, start_step=0)
    logger.scalars(50, {"loss/critic": 1.5, "alpha": 0.3})
    for step in (100, 200, 300):
        logger.evaluation(step, {"step": step, "eval_return_mean": -step / 3, "eval_return_std": 0.0})
    logger.close()
    rows = read_progress(tmp_path / "progress.csv")
    assert list(rows[0]) == CSV_FIELDS
    assert [r["step"] for r in rows] == ["100", "200", "300"]
    assert rows[0]["loss_critic"] == "1.5" and rows[0]["alpha"] == "0.3"  # last training scalars joined
    assert rows[1]["eval_return_mean"] == "-66.6667"

    # resuming from a checkpoint at step 200: the row at 300 belonged to the lost part of the run
    logger = RunLogger(tmp_path, start_step=200)
    logger.evaluation(300, {"step": 300, "eval_return_mean": -1.0, "eval_return_std": 0.0})
    logger.close()
    rows = read_progress(tmp_path / "progress.csv")
    assert [(r["step"], r["eval_return_mean"]) for r in rows] == [("100", "-33.3333"), ("200", "-66.6667"),
                                                                   ("300", "-1")]  # fmt: skip
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 2


def test_fresh_logger_replaces_old_rows(tmp_path: Path) -> None:
    (tmp_path / "progress.csv").write_text("step,eval_return_mean\n100,5\n")
    RunLogger(tmp_path, start_step=0).close()
    assert read_progress(tmp_path / "progress.csv") == []
