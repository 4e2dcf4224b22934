"""Learning-curve figures and the run logger, on hand-made run directories (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import capture_figure, fake_run

from softac import SoftacError
from softac.analysis.plot import plot_runs
from softac.analysis.stats import aggregate
from softac.logging import CSV_FIELDS, RunLogger, read_progress


def test_plot_groups_by_env_and_algorithm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [
        fake_run(tmp_path, "a", "sac", "Pendulum-v1", 0, [-1000, -500, -200]),
        fake_run(tmp_path, "b", "sac", "Pendulum-v1", 1, [-800, -300, -100]),
        fake_run(tmp_path, "c", "td3", "Pendulum-v1", 0, [-1200, -900]),
        fake_run(tmp_path, "d", "ddpg", "HalfCheetah-v5", 0, [10, 20]),
    ]
    seen = capture_figure(monkeypatch)
    out = plot_runs(runs, tmp_path / "out" / "curves.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "out").glob(".*tmp*"))  # written atomically, no temp file left
    panels = dict(seen["axes"])
    assert set(panels) == {"Pendulum-v1", "HalfCheetah-v5"}
    pend = panels["Pendulum-v1"]
    assert set(pend) == {"SAC (mean of seeds [0, 1], 95% CI)", "TD3 (seed 0)"}
    assert pend["SAC (mean of seeds [0, 1], 95% CI)"] == [-900, -400, -150]  # the mean over seeds
    assert pend["TD3 (seed 0)"] == [-1200, -900]
    assert panels["HalfCheetah-v5"] == {"DDPG (seed 0)": [10, 20]}
    # one band: the two SAC seeds' 95% bootstrap CI of the mean at each step (with two seeds the
    # resampled means are a, (a+b)/2 or b, so the 2.5% and 97.5% quantiles are the two values)
    assert len(seen["bands"]) == 1
    expected = {100.0: (-1000, -800), 200.0: (-500, -300), 300.0: (-200, -100)}
    for x, (lo, hi) in expected.items():
        agg = aggregate([lo, hi])
        assert seen["bands"][0][x] == pytest.approx((agg["mean_ci_low"], agg["mean_ci_high"]))
        assert seen["bands"][0][x] == pytest.approx((lo, hi))


def test_drawing_a_curve_leaves_the_callers_matplotlib_backend(tmp_path: Path) -> None:
    """The backend is the caller's (a notebook's inline one): every run's curve used to switch the whole
    process to Agg with ``matplotlib.use``, so a notebook's plots stopped showing after ``learn()``."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        run = fake_run(tmp_path, "a", "sac", "Pendulum-v1", 0, [-1000, -500])
        out = plot_runs([run], tmp_path / "curve.png")
        assert out.read_bytes()[:4] == b"\x89PNG"  # still drawn, as a PNG, by the Agg canvas
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_plot_errors(tmp_path: Path) -> None:
    with pytest.raises(SoftacError, match=r"no progress\.csv"):
        plot_runs([tmp_path], tmp_path / "x.png")
    empty = fake_run(tmp_path, "empty", "sac", "Pendulum-v1", 0, [])
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
