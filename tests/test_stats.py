"""Statistics over seeds, summary CSVs, CI bands in figures, and `softac plot|compare` on
hand-made run directories (config.json + progress.csv, no training)."""

from __future__ import annotations

import csv
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, capture_figure, fake_run, run_cli

from softac import SoftacError
from softac.analysis.plot import plot_runs, resolve_out
from softac.analysis.stats import (
    SUMMARY_FIELDS,
    aggregate,
    curve_table,
    expand_runs,
    iqm,
    load_curves,
    probability_of_improvement,
    read_curve,
    write_summary,
)
from softac.cli import main


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``softac ARGS`` through ``softac.cli.main`` in this process (the subprocess runs of
    ``run_cli`` cost ~2 s each of imports); same exit code and streams."""
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), rc, out, err)


def _multiseed(root: Path, algo: str, finals: list[float], env_id: str = "Pendulum-v1") -> Path:
    """A multi-seed directory whose seed k has returns [k, finals[k]] at steps 100 and 200."""
    for k, final in enumerate(finals):
        fake_run(root, f"seed_{k}", algo, env_id, k, [float(k), final])
    return root


# -- point estimates and intervals ------------------------------------------------------------
def test_iqm_known_values() -> None:
    # 8 values: drop the 2 lowest and the 2 highest, average 3, 4, 5, 6
    assert iqm([100, 1, 2, 3, 4, 5, 6, 7]) == pytest.approx(4.5)
    assert iqm([1, 2, 3, 100]) == pytest.approx(2.5)  # the middle two of four
    assert iqm([1.0, 2.0, 9.0]) == pytest.approx(4.0)  # fewer than 4: nothing dropped, the mean


def test_aggregate_values_and_intervals() -> None:
    x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    a = aggregate(x)
    assert set(a) == {"n", "mean", "median", "iqm", "mean_ci_low", "mean_ci_high", "iqm_ci_low", "iqm_ci_high"}
    assert (a["n"], a["mean"], a["median"]) == (8, pytest.approx(3.875), pytest.approx(3.5))
    assert a["iqm"] == pytest.approx(np.mean([2, 3, 4, 5]))
    assert a["mean_ci_low"] < a["mean"] < a["mean_ci_high"]
    assert a["iqm_ci_low"] < a["iqm"] < a["iqm_ci_high"]
    assert min(x) < a["mean_ci_low"] and a["mean_ci_high"] < max(x)  # an interval of the mean, not the range
    assert aggregate(x) == a  # deterministic given the seed
    assert aggregate(x, seed=1) != a
    assert aggregate(x, confidence=0.5)["mean_ci_high"] < a["mean_ci_high"]

    one = aggregate([7.0])  # one seed: no interval
    assert one["mean"] == one["iqm"] == 7.0 and math.isnan(one["mean_ci_low"]) and math.isnan(one["iqm_ci_high"])
    two = aggregate([1.0, 5.0])  # resampled means are 1, 3 or 5: the 2.5/97.5 % quantiles are 1 and 5
    assert (two["mean_ci_low"], two["mean_ci_high"]) == (1.0, 5.0)
    same = aggregate([2.0, 2.0, 2.0])
    assert (same["mean_ci_low"], same["mean_ci_high"]) == (2.0, 2.0)
    with pytest.raises(SoftacError):
        aggregate([])


def test_interval_shrinks_with_more_seeds() -> None:
    # The same spread over 4× and 16× as many seeds: the interval of the mean narrows like 1/√n.
    base = np.random.default_rng(0).normal(10.0, 3.0, 8)
    widths = []
    for copies in (1, 4, 16):
        a = aggregate(np.tile(base, copies))
        assert a["mean_ci_low"] < a["mean"] < a["mean_ci_high"]
        widths.append(a["mean_ci_high"] - a["mean_ci_low"])
    assert widths[1] == pytest.approx(widths[0] / 2, rel=0.2)
    assert widths[2] == pytest.approx(widths[0] / 4, rel=0.2)


def test_probability_of_improvement_by_hand() -> None:
    # pairs (x, y): 1>2 no, 1>0 yes, 2=2 half, 2>0 yes, 3>2 yes, 3>0 yes: 4.5 of 6
    poi = probability_of_improvement([1, 2, 3], [2, 0])
    assert poi["p"] == pytest.approx(0.75)
    assert poi["ci_low"] <= 0.75 <= poi["ci_high"]
    assert probability_of_improvement([2, 0], [1, 2, 3])["p"] == pytest.approx(0.25)  # P(Y > X) = 1 − P(X > Y)
    best = probability_of_improvement([5, 6, 7], [1, 2, 3])
    assert (best["p"], best["ci_low"], best["ci_high"]) == (1.0, 1.0, 1.0)
    assert probability_of_improvement([4, 4], [4, 4])["p"] == 0.5
    lone = probability_of_improvement([1.0], [0.0, 2.0])
    assert lone["p"] == 0.5 and math.isnan(lone["ci_low"])
    assert probability_of_improvement([1, 2, 3], [2, 0]) == poi  # deterministic


# -- reading runs and the summary -------------------------------------------------------------
def test_expand_and_group_runs(tmp_path: Path) -> None:
    multi = tmp_path / "multi"
    for k in (10, 0, 3):
        fake_run(multi, f"seed_{k}", "sac", "Pendulum-v1", k, [1.0])
    single = fake_run(tmp_path, "td3run", "td3", "Pendulum-v1", 0, [2.0])
    assert [p.name for p in expand_runs([multi, single])] == ["seed_0", "seed_3", "seed_10", "td3run"]
    groups = load_curves([multi, single])
    assert list(groups) == [("sac", "Pendulum-v1"), ("td3", "Pendulum-v1")]
    assert [c.seed for c in groups[("sac", "Pendulum-v1")]] == [0, 3, 10]
    with pytest.raises(SoftacError, match=r"no progress\.csv and no seed_"):
        expand_runs([tmp_path])
    with pytest.raises(SoftacError, match="does not exist"):
        expand_runs([tmp_path / "missing"])


def test_summary_rows_with_unequal_lengths(tmp_path: Path) -> None:
    multi = tmp_path / "R"
    fake_run(multi, "seed_0", "sac", "Pendulum-v1", 0, [-900, -500, -100])
    fake_run(multi, "seed_1", "sac", "Pendulum-v1", 1, [-800, -300])  # stopped early
    fake_run(multi, "seed_2", "sac", "Pendulum-v1", 2, [-1000, -400, -200])
    out = write_summary(multi, multi / "summary.csv")
    assert not list(multi.glob(".*tmp*"))  # written through a temporary file
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == SUMMARY_FIELDS
        rows = list(reader)
    assert [(r["step"], r["n_seeds"]) for r in rows] == [("100", "3"), ("200", "3"), ("300", "2")]
    assert float(rows[0]["mean"]) == pytest.approx(-900)
    assert float(rows[2]["mean"]) == pytest.approx(-150) and float(rows[2]["median"]) == pytest.approx(-150)
    expected = aggregate([-500, -300, -400])
    for key in ("iqm", "mean_ci_low", "mean_ci_high", "iqm_ci_low", "iqm_ci_high"):
        assert float(rows[1][key]) == pytest.approx(expected[key], rel=1e-5)
    # the same seeds given as a list of run directories give the same file
    again = write_summary(sorted(multi.glob("seed_*")), tmp_path / "again.csv")
    assert again.read_text() == out.read_text()
    fake_run(tmp_path, "other", "td3", "Pendulum-v1", 0, [1.0])
    with pytest.raises(SoftacError, match="one algorithm on one environment"):
        write_summary([multi, tmp_path / "other"], tmp_path / "mixed.csv")
    assert not (tmp_path / "mixed.csv").exists()


def test_bad_progress_files_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_run(tmp_path, "run", "sac", "Pendulum-v1", 0, [1.0])
    (run / "progress.csv").write_text("step,eval_return_mean\n100,1.0\nabc,2.0\n")
    with pytest.raises(SoftacError, match=r"run/progress\.csv line 3: non-numeric step"):
        read_curve(run)
    proc = run_cli("plot", str(run))
    assert_one_line_error(proc, str(run / "progress.csv"), "non-numeric step")
    (run / "progress.csv").write_text("when,eval_return_mean\n100,1.0\n")
    proc = _main(capsys, "plot", str(run), "--out", str(tmp_path / "x.png"))
    assert_one_line_error(proc, str(run / "progress.csv"), "no 'step' column")
    assert not (tmp_path / "x.png").exists() and not (run / "learning_curve.png").exists()


# -- figures ----------------------------------------------------------------------------------
def test_plot_band_is_the_bootstrap_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    for k in range(6):
        fake_run(tmp_path / "R", f"seed_{k}", "sac", "Pendulum-v1", k, list(rng.normal(-500, 100, 3)))
    fake_run(tmp_path / "R", "seed_6", "sac", "Pendulum-v1", 6, [-1.0, -2.0, -3.0, -4.0])  # alone at step 400
    curves = load_curves([tmp_path / "R"])[("sac", "Pendulum-v1")]
    for stat in ("mean", "iqm"):
        seen = capture_figure(monkeypatch)
        plot_runs([tmp_path / "R"], tmp_path / f"{stat}.png", stat=stat)
        ((_, lines),) = seen["axes"]
        ((label, ys),) = lines.items()
        assert label == f"SAC R ({stat} of seeds [0, 1, 2, 3, 4, 5, 6], 95% CI)"  # a multi-seed dir: its name
        rows = curve_table(curves)
        assert ys == pytest.approx([r[stat] for r in rows])
        (band,) = seen["bands"]
        assert sorted(band) == [100.0, 200.0, 300.0]  # no band where only one seed has a value
        for r in rows[:3]:
            lo, hi = band[float(r["step"])]
            assert (lo, hi) == pytest.approx((r[f"{stat}_ci_low"], r[f"{stat}_ci_high"]))
            values = [c.returns[int(r["step"]) // 100 - 1] for c in curves]
            assert min(values) < lo < r[stat] < hi < max(values)  # narrower than the seeds' range


def test_plot_lines_per_multiseed_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # two settings of one algorithm (two multi-seed dirs) stay two lines; single runs group by algorithm
    a = _multiseed(tmp_path / "lr=1e-4", "sac", [1.0, 3.0])
    b = _multiseed(tmp_path / "lr=3e-4", "sac", [5.0, 7.0])
    single = [fake_run(tmp_path, f"td3-{k}", "td3", "Pendulum-v1", k, [0.0, 10.0 * k]) for k in (0, 1)]
    seen = capture_figure(monkeypatch)
    plot_runs([a, b, *single], tmp_path / "f.png")
    ((_, lines),) = seen["axes"]
    assert lines == {
        "SAC lr=1e-4 (mean of seeds [0, 1], 95% CI)": [0.5, 2.0],
        "SAC lr=3e-4 (mean of seeds [0, 1], 95% CI)": [0.5, 6.0],
        "TD3 (mean of seeds [0, 1], 95% CI)": [0.0, 5.0],
    }


def test_plot_out_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = fake_run(tmp_path, "run", "sac", "Pendulum-v1", 0, [1.0, 2.0])
    other = fake_run(tmp_path, "other", "td3", "Pendulum-v1", 0, [1.0, 2.0])
    assert resolve_out(None, run) == run / "learning_curve.png"
    assert resolve_out(None) == Path("learning_curves.png")
    assert resolve_out(tmp_path / "curve") == tmp_path / "curve.png"
    assert resolve_out(tmp_path, run) == tmp_path / "learning_curve.png"
    assert resolve_out(f"{tmp_path}/new/") == tmp_path / "new" / "learning_curves.png"
    assert resolve_out(tmp_path / "c.PDF") == tmp_path / "c.PDF"
    with pytest.raises(SoftacError, match=r"cannot write a figure as '\.foo'"):
        resolve_out(tmp_path / "c.foo")

    proc = run_cli("plot", str(run), "--out", str(tmp_path / "curve"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    figs = tmp_path / "figs"
    figs.mkdir()
    proc = _main(capsys, "plot", str(run), str(other), "--out", str(figs), "--stat", "iqm")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in figs.iterdir()] == ["learning_curves.png"]
    proc = _main(capsys, "plot", str(run), "--out", str(tmp_path / "curve.foo"))
    assert_one_line_error(proc, "'.foo'")
    assert not list(tmp_path.glob("*curve.foo*"))


# -- softac compare ---------------------------------------------------------------------------
def test_compare_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _multiseed(tmp_path / "A", "sac", [1.0, 2.0, 3.0])
    b = _multiseed(tmp_path / "B", "td3", [2.0, 0.0])
    proc = run_cli("compare", str(a), str(b), "--label-a", "sac", "--label-b", "td3")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "last evaluation of each run (step 200)" in out
    sac = aggregate([1.0, 2.0, 3.0])
    line_a = next(line for line in out.splitlines() if line.startswith("sac "))
    assert line_a.split()[1:3] == ["3", "2.00"]
    assert f"[{sac['mean_ci_low']:.2f}, {sac['mean_ci_high']:.2f}]" in line_a
    assert "P(sac > td3) = 0.750 [" in out  # 4.5 of 6 pairs (see the hand count above)

    # the same groups as comma lists and as quoted globs; evaluations at step 100 (returns = seed)
    commas = ",".join(str(p) for p in sorted(a.glob("seed_*")))
    proc2 = _main(capsys, "compare", commas, f"{b}/seed_*", "--label-a", "sac", "--label-b", "td3")
    assert proc2.stdout == out
    proc3 = _main(capsys, "compare", str(a), str(b), "--at-step", "100")
    assert "evaluation at step 100" in proc3.stdout and "P(A > B) = 0.667" in proc3.stdout  # [0,1,2] vs [0,1]: 4 of 6

    assert_one_line_error(run_cli("compare", str(a), str(tmp_path / "nope")), "nope", "does not exist")
    assert_one_line_error(_main(capsys, "compare", str(a), str(b), "--at-step", "300"), "no evaluation at step 300")
    assert_one_line_error(_main(capsys, "compare", str(a), f"{tmp_path}/zz*"), "matches no directory")
    empty = fake_run(tmp_path, "empty", "td3", "Pendulum-v1", 0, [])
    assert_one_line_error(_main(capsys, "compare", str(a), str(empty)), "no evaluation rows")
    cheetah = _multiseed(tmp_path / "C", "td3", [5.0, 6.0], env_id="HalfCheetah-v5")
    assert_one_line_error(_main(capsys, "compare", str(a), str(cheetah)), "mix environments")
