"""A suite's results are exact: a cell whose files are incomplete (a NaN row, a missing seed, a
deleted run, a garbled or short progress.csv) is never counted done, and is named; a report says
exactly the step it read, refuses bad rows naming them, flags unequal seeds; its curves draw each
algorithm in a colour of its own, with a legend."""

from __future__ import annotations

from pathlib import Path

import pytest

from softac.errors import SoftacError
from softac.suite import scores as S
from softac.suite.report import write_report
from softac.suite.results import cell_problem, read_results, write_results
from softac.suite.runner import todo_cells, write_state
from softac.suite.spec import Cell

CELL = Cell("sac", "Pendulum-v1")
HEAD = "step,eval_return_mean,eval_return_std,updates\n"


@pytest.fixture(autouse=True)
def _few_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "REPS", 100)  # a bootstrap resample costs ~1 ms: the report's 2000 is slow here
    monkeypatch.setattr(S, "CURVE_REPS", 30)


def _cell(out: Path, seeds: tuple[int, ...] = (0, 1), steps: tuple[int, ...] = (200, 400)) -> None:
    for s in seeds:
        d = out / "runs" / CELL.key / f"seed_{s}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "progress.csv").write_text(HEAD + "".join(f"{t},{-100.0 * s - t},1.0,{t}\n" for t in steps))


def _damage(out: Path, how: str) -> None:
    seed1 = out / "runs" / CELL.key / "seed_1" / "progress.csv"
    if how == "nan row":
        seed1.write_text(HEAD + "200,nan,1.0,100\n400,-3.0,1.0,300\n")
    elif how == "inf row":
        seed1.write_text(HEAD + "200,-1.0,1.0,100\n400,inf,1.0,300\n")
    elif how == "missing seed":
        seed1.unlink()
    elif how == "deleted run":
        for p in sorted((out / "runs").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    elif how == "short of the budget":
        seed1.write_text(HEAD + "200,-1.0,1.0,100\n")
    elif how == "garbled":
        seed1.write_text(HEAD + "200,-1.0,1.0,100\nxx,??\n")
    elif how == "steps out of order":
        seed1.write_text(HEAD + "400,-1.0,1.0,100\n200,-1.0,1.0,300\n")
    elif how == "no columns":
        seed1.write_bytes(b"\x00\xff garbage")


DAMAGE = ["nan row", "inf row", "missing seed", "deleted run", "short of the budget", "garbled", "steps out of order",
          "no columns"]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGE)
def test_an_incomplete_cell_is_never_counted_done(tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    _cell(tmp_path)
    assert cell_problem(tmp_path, CELL, [0, 1], 400) is None
    write_state(tmp_path, CELL, {"status": "done"})
    _damage(tmp_path, how)
    problem = cell_problem(tmp_path, CELL, [0, 1], 400)
    assert problem is not None
    if how != "deleted run":
        assert "seed 1" in problem or "seed_1" in problem, problem
    # Recorded done, but its files are not: run again, and the line says why.
    assert todo_cells(tmp_path, [CELL], [0, 1], 400) == [CELL]
    assert f"recorded done, but {problem}: running it again" in capsys.readouterr().out
    with pytest.raises(ValueError):
        write_results(tmp_path, [CELL], [0, 1], 400)


def _results(d: Path, lines: list[str]) -> Path:
    d.mkdir()
    (d / "results.csv").write_text("algorithm,env,seed,step,return\n" + "\n".join(lines) + "\n")
    return d


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("sac,Hopper-v5,1,200,nan", "line 5 has a non-finite return"),
        ("sac,Hopper-v5,1,200,inf", "non-finite"),
        ("sac,Hopper-v5,1,200,-inf", "non-finite"),
        ("sac,Hopper-v5,0,200,5", "lines 3 and 5 are both sac on Hopper-v5"),
        ("sac,Hopper-v5,-1,200,5", "negative seed"),
        (",Hopper-v5,2,200,5", "no algorithm"),
    ],
)
def test_bad_rows_are_refused_naming_them(tmp_path: Path, row: str, says: str) -> None:
    d = _results(tmp_path / "r", ["sac,Hopper-v5,0,100,1", "sac,Hopper-v5,0,200,2", "sac,Hopper-v5,1,100,3", row])
    with pytest.raises(ValueError, match=says):
        read_results(d / "results.csv")
    with pytest.raises(SoftacError, match=says):
        write_report(d, tmp_path / "rep", figures=False)
    assert not (tmp_path / "rep").exists()


def test_a_step_between_evaluations_is_never_labelled_as_read(tmp_path: Path) -> None:
    """--step 500 over evaluations at 400 and 600 printed "Read at step 500" over the 400 numbers."""
    rows = [f"sac,Hopper-v5,{s},{t},{t + s}" for s in range(3) for t in (200, 400, 600)]
    rows += [f"td3,Hopper-v5,{s},{t},{t - s}" for s in range(3) for t in (250, 500)]
    d = _results(tmp_path / "r", rows)
    text = write_report(d, tmp_path / "rep", figures=False, step=500).read_text()
    assert "sac on Hopper-v5 (no evaluation at 500 for seed(s) 0, 1, 2; nearest 400 and 600)" in text
    assert "| softac td3 | 500 | 3 |" in text and "| softac sac |" not in text
    with pytest.raises(SoftacError, match=r"no cell .* has an evaluation at step 300"):
        write_report(d, tmp_path / "rep2", figures=False, step=300)
    # Exactly at a step every seed has, the numbers are that step's.
    text = write_report(d, tmp_path / "rep3", figures=False, step=400).read_text()
    assert "| softac sac | 400 | 3 | 401.0 |" in text


def test_seeds_ending_at_different_steps_are_refused_not_mixed(tmp_path: Path) -> None:
    rows = [f"sac,Hopper-v5,{s},{t},{t}" for s in range(3) for t in (200, 400, 600) if not (s == 2 and t == 600)]
    d = _results(tmp_path / "r", rows)
    with pytest.raises(SoftacError, match=r"seeds end at different steps \(seed 0 at 600, seed 1 at 600, seed 2 at "
                                          r"400\); read every cell at one step with --step 400"):  # fmt: skip
        write_report(d, tmp_path / "rep", figures=False)
    assert "| softac sac | 400 | 3 |" in write_report(d, tmp_path / "rep", figures=False, step=400).read_text()


def test_a_cell_past_the_budget_is_labelled_with_its_own_step_and_unequal_seeds_are_flagged(tmp_path: Path) -> None:
    """PPO ends at the first rollout boundary at or past the budget (51,200 for 50,000)."""
    rows = [f"sac,CartPole-v1,{s},50000,{400 + s}" for s in range(4)]
    rows += [f"ppo,CartPole-v1,{s},51200,{300 + s}" for s in range(3)]
    d = _results(tmp_path / "r", rows)
    out = write_report(d, tmp_path / "rep", figures=False)
    text, table = out.read_text(), (out.parent / "table.md").read_text()
    assert "| softac ppo | 51200 | 3 |" in text and "| softac sac | 50000 | 4 |" in text
    assert "| CartPole-v1 | see each | " in table
    assert " (3) at step 51200 |" in table and " (4) at step 50000 |" in table
    assert "**Different final steps on CartPole-v1**: ppo at 51200; sac at 50000" in text
    flag = "**Unequal seeds on CartPole-v1**: ppo: 3 seeds (0, 1, 2); sac: 4 seeds (0, 1, 2, 3)"
    assert flag in text and flag in table


def test_each_algorithm_has_its_own_colour_and_a_legend(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from softac.suite.figures import curve_axes

    rows = [{"algorithm": a, "env": "Hopper-v5", "seed": s, "step": t, "return": float(k * t + s)}
            for k, a in enumerate(("crossq", "sac", "td3")) for s in range(3) for t in (100, 200, 300)]  # fmt: skip
    fig, ax = curve_axes(rows, "Hopper-v5") or (None, None)
    colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert set(colours) == {"crossq", "sac", "td3"} and len(set(map(str, colours.values()))) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["crossq", "sac", "td3"]
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.parametrize("how", ["garbled", "nan row", "no columns"])
def test_a_damaged_progress_csv_is_named_before_the_cell_is_resumed(tmp_path: Path, how: str) -> None:
    """softac train --resume keeps the rows up to its checkpoint and stopped on such a line with a
    traceback that named no file; the suite names the file and starts nothing."""
    from softac.suite.runner import cell_state, run_cell

    _cell(tmp_path)
    _damage(tmp_path, how)
    state = run_cell(tmp_path, CELL, [0, 1], 400, "cpu", 1, [])
    assert state["status"] == "failed" and "seed_1/progress.csv" in state["reason"], state
    assert state["reason"].endswith("fix or move that file aside, then --resume")
    assert cell_state(tmp_path, CELL) == state and not (tmp_path / "logs").exists()  # nothing was started


def test_extend_adds_cells_and_keeps_every_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--resume --extend --algos td3 on a sac suite: both cells' rows in results.csv, the record grown;
    the other arguments still refused when they differ."""
    import json

    from softac.cli import main
    from softac.suite import record

    out = tmp_path / "s"
    record.create(out, {"suite": "classic", "algos": ["sac"], "envs": ["Pendulum-v1"], "seeds": [0, 1],
                        "budget": 400, "device": "cpu", "extra": [], "cells": [CELL.key], "skipped": {}})  # fmt: skip
    td3 = Cell("td3", "Pendulum-v1")
    for cell in (CELL, td3):  # both finished (td3's files as a finished run would leave them)
        for s in (0, 1):
            d = out / "runs" / cell.key / f"seed_{s}"
            d.mkdir(parents=True)
            (d / "progress.csv").write_text(HEAD + f"200,-{s + 1}.0,1.0,100\n400,-{s + 2}.0,1.0,300\n")
        write_state(out, cell, {"status": "done"})
    argv = ["suite", "classic", "--out", str(out), "--envs", "Pendulum-v1", "--seeds", "0,1", "--budget", "400"]
    assert main([*argv, "--algos", "td3", "--resume"]) == 2
    assert "algos sac → td3" in capsys.readouterr().err  # without --extend: refused, with the way to add
    assert main([*argv, "--algos", "td3", "--extend"]) == 2
    assert "pass --resume with it" in capsys.readouterr().err
    assert main([*argv, "--algos", "td3", "--resume", "--extend", "--seeds", "0"]) == 2
    assert "seeds 0,1 → 0" in capsys.readouterr().err
    assert main([*argv, "--algos", "td3", "--resume", "--extend"]) == 0
    assert "(2 of 2 cells done)" in capsys.readouterr().out
    assert json.loads((out / "suite.json").read_text())["algos"] == ["sac", "td3"]
    rows = read_results(out / "results.csv")
    assert {(r["algorithm"], r["seed"], r["step"]) for r in rows} == {
        (a, s, t) for a in ("sac", "td3") for s in (0, 1) for t in (200, 400)
    }
    # Resumed as extended: the recorded arguments now include td3.
    assert main([*argv, "--algos", "sac,td3", "--resume"]) == 0


def test_aggregates_over_tasks_read_at_different_steps_say_so(tmp_path: Path) -> None:
    rows = [f"sac,Hopper-v5,{s},{t},{t + s}" for s in range(3) for t in (100, 200)]
    rows += [f"sac,Walker2d-v5,{s},{t},{t + s}" for s in range(3) for t in (100,)]
    text = write_report(_results(tmp_path / "r", rows), tmp_path / "rep", figures=False).read_text()
    note = "**Different final steps across tasks** (the aggregates mix them): Hopper-v5 at 200; Walker2d-v5 at 100"
    assert note in text
    text = write_report(tmp_path / "r", tmp_path / "rep", figures=False, step=100).read_text()
    assert "Different final steps" not in text
