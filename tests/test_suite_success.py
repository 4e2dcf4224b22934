"""The suite report's success rates: a results.csv whose goal task reports success gets the IQM of
the final success rates with rliable's stratified-bootstrap CI (the numbers equal rliable's own call),
the README table reports that task by success rate, and a report without success shows no success
column at all. results.csv carries the success column only when some cell's progress.csv has one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from softac.cli import main
from softac.suite import scores as S
from softac.suite.report import write_report
from softac.suite.results import read_results, write_results
from softac.suite.spec import Cell

rly = pytest.importorskip("rliable.library")
metrics = pytest.importorskip("rliable.metrics")
SUCCESS = [0.2, 0.5, 0.6, 0.7, 0.8, 1.0]  # final success rates of 6 seeds: IQM = mean(0.5, 0.6, 0.7, 0.8) = 0.65


@pytest.fixture(autouse=True)
def _few_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bootstrap resample costs ~1 ms in arch's Python loop: the report's 2000 would take minutes here.
    monkeypatch.setattr(S, "REPS", 200)
    monkeypatch.setattr(S, "CURVE_REPS", 50)


def _results(d: Path, success: bool) -> None:
    """sac-her on PointMaze (success reported when ``success``) and sac on Hopper (never), 6 seeds."""
    d.mkdir()
    lines = ["algorithm,env,seed,step,return" + (",success" if success else "")]
    for s, rate in enumerate(SUCCESS):
        lines.append(f"sac-her,PointMaze_UMaze-v3,{s},500,-90" + (",0.0" if success else ""))
        lines.append(f"sac-her,PointMaze_UMaze-v3,{s},1000,{-100 * (1 - rate)}" + (f",{rate}" if success else ""))
        lines.append(f"sac,Hopper-v5,{s},1000,{1000 + 10 * s}" + ("," if success else ""))
    (d / "results.csv").write_text("\n".join(lines) + "\n")


def test_report_shows_the_success_iqm_with_rliables_interval(tmp_path: Path) -> None:
    _results(tmp_path / "res", success=True)
    text = write_report(tmp_path / "res", tmp_path / "rep", figures=False).read_text()
    np.random.seed(S.SEED)
    x = np.array(SUCCESS)[:, None]
    _, ci = rly.get_interval_estimates({"a": x}, lambda s: np.array([metrics.aggregate_mean(s),
                                       metrics.aggregate_iqm(s)]), reps=S.REPS,
                                       random_state=np.random.RandomState(S.SEED))  # fmt: skip
    maze = text.split("## PointMaze_UMaze-v3")[1].split("##")[0]
    head = "| success mean | success IQM | success IQM 95% CI | return mean | return IQM | return IQM 95% CI |"
    assert head in maze
    assert f"| softac sac-her | 1000 | 6 | 0.63 | 0.65 | [{ci['a'][0][1]:.2f}, {ci['a'][1][1]:.2f}] | " in maze
    hopper = text.split("## Hopper-v5")[1].split("##")[0]
    assert "success" not in hopper  # Hopper reports no success: its table is the returns' alone
    across = text.split("## Success rate")[1].split("##")[0]
    assert "Across tasks: PointMaze_UMaze-v3." in across and "| softac sac-her | 0.650 | [" in across
    table = (tmp_path / "rep" / "table.md").read_text()
    assert table.startswith("| task | metric | step | softac sac: IQM [95% CI] (seeds) | softac sac-her:")
    assert f"| PointMaze_UMaze-v3 | success rate | 1000 | – | 0.65 [{ci['a'][0][1]:.2f}, " in table
    assert "| Hopper-v5 | return | 1000 | 1025.0 [" in table


def test_report_without_success_has_no_success_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _results(tmp_path / "res", success=False)
    assert main(["suite", "report", str(tmp_path / "res"), "--out", str(tmp_path / "rep"), "--markdown"]) == 0
    out = capsys.readouterr().out
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "success" not in text.lower() and "success" not in out.lower() and "metric" not in out
    assert out.startswith("| task | step | softac sac: IQM [95% CI] (seeds) | softac sac-her:")
    assert "| softac sac-her | 1000 | 6 | " in text


def test_markdown_prints_success_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _results(tmp_path / "res", success=True)
    assert main(["suite", "report", str(tmp_path / "res"), "--markdown"]) == 0
    assert "| PointMaze_UMaze-v3 | success rate | 1000 | – | 0.65 [" in capsys.readouterr().out


def test_bad_success_value_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _results(tmp_path / "res", success=True)
    path = tmp_path / "res" / "results.csv"
    path.write_text(path.read_text().replace(",0.7\n", ",7\n"))
    assert main(["suite", "report", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err.strip()
    assert "outside [0, 1]" in err and "\n" not in err


def _progress(path: Path, rows: list[tuple[int, float, float | None]]) -> None:
    path.mkdir(parents=True)
    with (path / "progress.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "eval_return_mean"] + (["eval_success_rate"] if rows[0][2] is not None else []))
        w.writerows([(s, r) + ((ok,) if ok is not None else ()) for s, r, ok in rows])


def test_results_csv_has_the_success_column_only_when_a_cell_reports_it(tmp_path: Path) -> None:
    goal, plain = Cell("sac-her", "PointMaze_UMaze-v3"), Cell("sac", "Pendulum-v1")
    for s in (0, 1):
        _progress(tmp_path / "runs" / goal.key / f"seed_{s}", [(500, -80.0, 0.1 * s), (1000, -50.0, 0.5 + 0.25 * s)])
        _progress(tmp_path / "runs" / plain.key / f"seed_{s}", [(500, -900.0, None), (1000, -300.0 - s, None)])
    header = write_results(tmp_path, [plain], [0, 1], 1000).read_text().splitlines()[0]
    assert header == "algorithm,env,seed,step,return"
    path = write_results(tmp_path, [goal, plain], [0, 1], 1000)
    assert path.read_text().splitlines()[0] == "algorithm,env,seed,step,return,success"
    rows = read_results(path)
    assert [r["success"] for r in rows if r["env"] == "PointMaze_UMaze-v3"] == [0.0, 0.5, 0.1, 0.75]
    assert {r["success"] for r in rows if r["env"] == "Pendulum-v1"} == {None}
