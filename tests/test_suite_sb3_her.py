"""The ``sb3-sac-her`` suite cell: Stable-Baselines3's real SAC + ``HerReplayBuffer`` on a goal task
made by ``softac.envs.make_env``. Its progress.csv has softac's success columns (with softac's
header), it reaches SB3's gradient updates, its HER settings come from softac's presets (4 ``future``
without one), a preset's ``normalize_obs`` becomes a ``VecNormalize`` whose statistics evaluation
does not change, a plain Dict observation runs ``sb3-sac`` too, and what cannot run is one line,
exit 2, with nothing written."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("gymnasium_robotics")

from softac.logging import COMMON_FIELDS, with_success
from softac.suite.sb3_cell import main, normalize_obs, sb3_settings
from softac.suite.spec import expand

MAZE = "PointMaze_UMaze-v3"
# 50-step episodes, so SB3's HER (which samples only ended episodes) can update from step 100.
TINY = ["--budget", "300", "--learning-starts", "100", "--hidden-sizes", "16", "16", "--batch-size", "32",
        "--eval-freq", "150", "--eval-episodes", "2", "--env-kwargs", "max_episode_steps=50"]  # fmt: skip


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_her_cell_on_a_maze_records_success(tmp_path: Path) -> None:
    assert main(["--env", MAZE, "--seeds", "0", "--run-dir", str(tmp_path / "r"), "--her", *TINY]) == 0
    header, rows = _rows(tmp_path / "r" / "seed_0" / "progress.csv")
    assert header == with_success(COMMON_FIELDS)  # softac's cells' header on a task that reports success
    assert [int(r["step"]) for r in rows] == [150, 300]
    assert [int(r["updates"]) for r in rows] == [50, 200]  # SB3 updates once a step after step 100
    assert [int(r["episodes"]) for r in rows] == [3, 6]
    for r in rows:
        assert 0.0 <= float(r["eval_success_rate"]) <= 1.0
        assert 0.0 <= float(r["train_success_rate"]) <= 1.0  # three 50-step episodes ended since the last row
        assert float(r["eval_success_rate"]) * 2 == round(float(r["eval_success_rate"]) * 2)  # 2 episodes' flags
    config = json.loads((tmp_path / "r" / "seed_0" / "config.json").read_text())
    assert config["her"] is True and config["updates"] == 200 and config["env_kwargs"] == {"max_episode_steps": 50}
    assert config["settings"]["replay_buffer_kwargs"] == {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    assert config["normalize_obs"] is False  # softac has no preset for the maze


def test_sb3_sac_runs_on_a_dict_observation(tmp_path: Path) -> None:
    argv = ["--env", MAZE, "--seeds", "0", "--run-dir", str(tmp_path / "r"), "--budget", "120", "--learning-starts",
            "60", "--hidden-sizes", "16", "--batch-size", "16", "--eval-freq", "120", "--eval-episodes", "1",
            "--env-kwargs", "max_episode_steps=40"]  # fmt: skip
    assert main(argv) == 0
    header, rows = _rows(tmp_path / "r" / "seed_0" / "progress.csv")
    assert header == with_success(COMMON_FIELDS) and [int(r["updates"]) for r in rows] == [60]
    assert not json.loads((tmp_path / "r" / "seed_0" / "config.json").read_text())["her"]


def test_her_settings_come_from_the_preset() -> None:
    kw, source = sb3_settings("FetchPush-v4", {}, her=True)
    assert kw["replay_buffer_kwargs"] == {"n_sampled_goal": 4, "goal_selection_strategy": "future"}
    assert kw["batch_size"] == 2048 and kw["gamma"] == 0.95 and "preset" in source
    assert "replay_buffer_kwargs" not in sb3_settings("FetchPush-v4", {})[0]
    assert normalize_obs("FetchReach-v4") and not normalize_obs("FetchPush-v4") and not normalize_obs(MAZE)


def test_normalized_observations_train_and_evaluate_with_the_training_statistics(tmp_path: Path) -> None:
    from softac.suite.sb3_seed import run_seed

    kw, _ = sb3_settings("FetchReach-v4", {"learning_starts": 50, "batch_size": 16, "hidden_sizes": [16]}, her=True)
    model = run_seed("FetchReach-v4", [], 0, 100, tmp_path, 50, 2, kw, True, normalize_obs("FetchReach-v4"), "cpu")
    norm = model.get_vec_normalize_env()
    assert norm is not None and norm.norm_obs and not norm.norm_reward
    # 1 reset + 100 steps seen in training (SB3's count starts at 1e-4); the 2 evaluations' 200 steps
    # were normalised with these statistics and did not add to them.
    assert norm.obs_rms["observation"].count == pytest.approx(101, abs=1e-3)
    _, rows = _rows(tmp_path / "progress.csv")
    assert [int(r["step"]) for r in rows] == [50, 100] and int(rows[-1]["updates"]) == 50
    assert all(0.0 <= float(r["eval_success_rate"]) <= 1.0 for r in rows)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--env", "Pendulum-v1", "--her"], "sb3-sac-her needs a goal-conditioned environment"),
        (["--env", MAZE, "--her", "--learning-starts", "100"], "--learning-starts 100 is shorter than one 300-step"),
    ],
)
def test_what_her_cannot_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         says: str) -> None:  # fmt: skip
    assert main([*args, "--seeds", "0", "--budget", "10", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("softac: error: ") and says in err and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_the_suite_skips_her_variants_on_tasks_without_goals() -> None:
    cells, skipped = expand("classic", ["sac", "sb3-sac-her", "sac-her"], ["Pendulum-v1"])
    assert [c.variant for c in cells] == ["sac"]
    for v in ("sb3-sac-her", "sac-her"):
        assert skipped[f"{v}__Pendulum-v1"].startswith(f"{v} needs a goal-conditioned task")
    cells, _ = expand("robotics", ["sb3-sac-her"], [MAZE])
    assert [(c.variant, c.env_id) for c in cells] == [("sb3-sac-her", MAZE)]


def test_a_cell_without_success_has_no_success_columns(tmp_path: Path) -> None:
    argv = ["--env", "Pendulum-v1", "--seeds", "0", "--run-dir", str(tmp_path / "r"), "--budget", "60",
            "--learning-starts", "30", "--hidden-sizes", "16", "--batch-size", "16", "--eval-freq", "60",
            "--eval-episodes", "1", "--env-kwargs", "max_episode_steps=30"]  # fmt: skip
    assert main(argv) == 0
    header, rows = _rows(tmp_path / "r" / "seed_0" / "progress.csv")
    assert header == COMMON_FIELDS and len(rows) == 1 and not math.isnan(float(rows[0]["eval_return_mean"]))


def test_the_suite_refuses_a_her_cell_that_could_not_start_before_any_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from softac.cli import main as softac_main

    argv = ["suite", "robotics", "--out", str(tmp_path / "s"), "--algos", "sb3-sac-her", "--envs", MAZE, "--seeds", "0",
            "--budget", "300", "--", "--learning-starts", "100"]  # fmt: skip
    assert softac_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"softac: error: cell sb3-sac-her on {MAZE}: --learning-starts 100 is shorter than one "
                          "300-step episode") and "\n" not in err  # fmt: skip
    assert not (tmp_path / "s").exists()
