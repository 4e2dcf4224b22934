"""softac suite: the report on a synthetic results.csv (IQM checked by hand) and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from softac.cli import main
from softac.errors import SoftacError
from softac.suite.report import write_report
from softac.suite.spec import expand


def _results(d: Path, returns: list[float]) -> None:
    d.mkdir()
    lines = ["algorithm,env,seed,step,return"]
    lines += [f"sac,Hopper-v5,{s},100,0" for s in range(len(returns))]
    lines += [f"sac,Hopper-v5,{s},200,{r}" for s, r in enumerate(returns)]
    (d / "results.csv").write_text("\n".join(lines) + "\n")


def test_report_iqm_by_hand(tmp_path: Path) -> None:
    # 8 seeds: IQM drops the lowest 2 and highest 2 -> mean of 3, 4, 5, 6 = 4.5; mean = 57 / 8.
    _results(tmp_path / "res", [1, 2, 3, 4, 5, 6, 7, 29])
    out = write_report(tmp_path / "res", tmp_path / "rep")
    text = out.read_text()
    assert "| softac sac | 200 | 8 | 7.1 | 4.5 |" in text
    assert "SAC (published, Gym v4, not rerun" in text and "1103.0" in text
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["results.csv"]


def test_report_refuses_other_dirs_and_bad_lines(tmp_path: Path) -> None:
    _results(tmp_path / "res", [1, 2])
    with pytest.raises(SoftacError, match="new directory"):
        write_report(tmp_path / "res", tmp_path / "res")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(SoftacError, match="not a suite report"):
        write_report(tmp_path / "res", tmp_path / "other")
    (tmp_path / "res" / "results.csv").write_text("algorithm,env,seed,step,return\nsac,Hopper-v5,x,1,2\n")
    with pytest.raises(SoftacError, match="line 2"):
        write_report(tmp_path / "res", tmp_path / "rep")


def test_unknown_names_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "mujoco-100k" in capsys.readouterr().err
    assert main(["suite", "classic", "--out", str(tmp_path / "o"), "--envs", "Foo-v0"]) == 2
    assert "Pendulum-v1" in capsys.readouterr().err
    with pytest.raises(SoftacError, match="unknown algorithm"):
        expand("classic", ["nosuch"], None)
