"""softac suite --ray local: the cells run as Ray Tune trials through softac sweep's machinery and
leave the same cell states, run directories and results.csv as local cells."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from softac.cli import main

pytest.importorskip("ray")


@pytest.mark.slow
def test_suite_cells_as_local_ray_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "suite"
    argv = ["suite", "classic", "--out", str(out), "--algos", "sac,td3", "--envs", "Pendulum-v1", "--seeds", "0",
            "--budget", "400", "--jobs", "2", "--ray", "local"]  # fmt: skip
    train = ["--", "--learning-starts", "100", "--eval-freq", "200", "--eval-episodes", "1", "--hidden-sizes", "16",
             "16", "--batch-size", "16"]  # fmt: skip
    assert main(argv + train) == 0
    text = capsys.readouterr().out
    assert "cell sac on Pendulum-v1: done" in text and "cell td3 on Pendulum-v1: done" in text
    for key in ("sac__Pendulum-v1", "td3__Pendulum-v1"):
        assert json.loads((out / "cells" / f"{key}.json").read_text())["status"] == "done"
        rows = list(csv.DictReader((out / "runs" / key / "seed_0" / "progress.csv").open()))
        assert [int(r["step"]) for r in rows] == [200, 400] and int(rows[-1]["updates"]) > 0  # updates reached
    with (out / "results.csv").open() as f:
        results = list(csv.DictReader(f))
    assert sorted((r["algorithm"], r["step"]) for r in results) == [("sac", "200"), ("sac", "400"), ("td3", "200"),
                                                                    ("td3", "400")]  # fmt: skip
    # A second call finds every cell done and starts no Ray at all.
    assert main([*argv, "--resume", *train]) == 0
    assert "cell " not in capsys.readouterr().out
