"""What a new user meets first: a multi-seed curve of one evaluation that drew nothing, progress.csv
columns that are always empty for the run's family, PPO's bar without a total; a bare ``softac``
that trained, versions that disagreed, runs that ended before learning started and said nothing,
CrossQ's CPU cost unsaid, Ctrl-C without the command that resumes, several seeds without one line
across them."""

from __future__ import annotations

import re
import shlex
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import ROOT, TINY, TINY_FLAGS, assert_one_line_error, fake_run, on_cpu, popen_cli, run_cli
from test_ppo import PPO_TINY

import softac
from softac import PPO, SAC, CrossQ, cli, registry
from softac.analysis.plot import plot_runs
from softac.analysis.stats import aggregate
from softac.io.rundir import list_checkpoints
from softac.logging import COMMON_FIELDS, FAMILY_FIELDS, read_progress


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


# -- a bare `softac`, --version, one version ----------------------------------------------------
def test_bare_softac_prints_help_and_trains_nothing(tmp_path: Path) -> None:
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: softac COMMAND")
    for command in cli.COMMANDS:
        assert re.search(rf"^  {command} ", proc.stdout, re.MULTILINE), command
    assert list(tmp_path.iterdir()) == []  # no runs/ directory: nothing was trained
    # `softac | head -3`: a reader that leaves early (here: before softac writes at all) gets no traceback
    piped = popen_cli()
    assert piped.stdout is not None
    piped.stdout.close()
    _, err = piped.communicate(timeout=60)
    assert piped.returncode == 141 and err == "", (piped.returncode, err)


def test_version_has_one_source() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout == f"softac {softac.__version__}\n", proc
    from setuptools.config.pyprojecttoml import read_configuration

    project = read_configuration(ROOT / "pyproject.toml", expand=False)["project"]
    assert "version" not in project and "version" in project["dynamic"]
    # what pip will record, computed by setuptools itself from the same pyproject.toml
    assert read_configuration(ROOT / "pyproject.toml")["project"]["version"] == softac.__version__
    for name in ("SAC", "TD3", "DDPG", "DQN", "PPO", "discrete SAC", "CrossQ"):
        assert name in project["description"], name
    assert len(registry.names()) == 7  # a new algorithm: name it in the description too


# -- a run that would make no gradient update ------------------------------------------------
@pytest.mark.parametrize(("args", "needles"), [
    (["--algo", "td3", "--env", "Pendulum-v1", "--total-steps", "5000"],
     ["--total-steps 5000 ends before learning starts", "--learning-starts 10000, from the td3/Pendulum-v1 preset",
      "--total-steps above 10000 or --learning-starts below 5000"]),
    (["--algo", "ddpg", "--env", "Pendulum-v1", "--total-steps", "9999"], ["ddpg/Pendulum-v1 preset"]),
    (["--algo", "sac", "--env", "Pendulum-v1", "--learning-starts", "20000"],
     ["--total-steps 20000, from the sac/Pendulum-v1 preset ends", "(--learning-starts 20000)"]),
    (["--algo", "dqn", "--env", "CartPole-v1", "--total-steps", "5000"], ["10000, from the dqn/CartPole-v1 preset"]),
    (["--algo", "td3", "--env", "Pendulum-v1", "--preset", "none"],  # the config's own defaults: 20,000 < 25,000
     ["--total-steps 20000, the default ends before learning starts (--learning-starts 25000, the default)"]),
    (["--algo", "sac", "--env", "Pendulum-v1", "--total-steps", "150", "--utd-ratio", "0.01"],
     ["--utd-ratio 0.01 owes no update after learning starts (--learning-starts 100, from the sac/Pendulum-v1 "
      "preset)", "a larger --utd-ratio or --total-steps"]),
])  # fmt: skip
def test_a_run_without_updates_is_refused(args: list[str], needles: list[str], tmp_path: Path) -> None:
    proc = run_cli("train", *args, "--run-dir", str(tmp_path / "r"), *TINY_FLAGS)
    assert_one_line_error(proc, "this run would make no gradient update", *needles)
    assert not (tmp_path / "r").exists()


def test_both_numbers_given_warns_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "r"
    argv = ["train", "--algo", "td3", "--env", "Pendulum-v1", "--total-steps", "120", "--learning-starts", "300"]
    assert cli.main([*argv, "--eval-freq", "120", "--run-dir", str(run), *TINY_FLAGS]) == 0
    err = capsys.readouterr().err
    assert "softac: warning: this run makes no gradient update (total_steps 120 ends before learning starts at " \
           "step 300)" in err
    assert int(read_progress(run / "progress.csv")[-1]["updates"]) == 0
    # the Python API warns the same way (a script's numbers are meant)
    SAC("Pendulum-v1", **TINY, total_steps=50, learning_starts=100, eval_freq=50).learn(progress=False)
    assert "this run makes no gradient update" in capsys.readouterr().err
    # a run that updates says nothing of the kind
    SAC("Pendulum-v1", **TINY, total_steps=120, learning_starts=100, eval_freq=120).learn(progress=False)
    assert "gradient update" not in capsys.readouterr().err


def test_finished_run_still_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "r"
    flags = ["--algo", "td3", "--env", "Pendulum-v1", "--learning-starts", "100", "--eval-freq", "200", *TINY_FLAGS]
    assert cli.main(["train", *flags, "--total-steps", "200", "--run-dir", str(run)]) == 0
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(run), "--total-steps", "300", "--no-progress"]) == 0
    assert int(read_progress(run / "progress.csv")[-1]["updates"]) == 200


# -- CrossQ's cost on a CPU ------------------------------------------------------------------
def test_crossq_says_its_cpu_cost_at_start(tmp_path: Path) -> None:
    if not on_cpu():
        pytest.skip("the note is about CPU runs")
    notes = CrossQ("Pendulum-v1", device="cpu", total_steps=20_000, learning_starts=5000).start_notes()
    assert len(notes) == 1 and "2048×2048 critics cost about" in notes[0]
    assert "--critic-hidden-sizes 512 512" in notes[0]
    assert CrossQ("Pendulum-v1", device="cpu", critic_hidden_sizes=(256, 256)).start_notes() == []
    # one update of the default critics; a buffer smaller than the batch's two halves (was refused, naming 512)
    proc = run_cli("train", "--algo", "crossq", "--total-steps", "2", "--learning-starts", "1", "--buffer-size", "300",
                   "--eval-episodes", "1", "--threads", "1", "--no-progress",
                   "--run-dir", str(tmp_path / "r"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "softac: note: CrossQ's 2048×2048 critics cost about" in proc.stderr


# -- Ctrl-C names the command that resumes; several seeds get one line across them ---------------------
def test_ctrl_c_prints_the_command_that_resumes(tmp_path: Path) -> None:
    run = tmp_path / "my runs" / "r"  # a space: the command must be quoted to be pasted
    proc = popen_cli("train", "--total-steps", "1000000", "--learning-starts", "100", "--eval-freq", "200",
                     "--checkpoint-freq", "1000000", "--no-compile-update", *TINY_FLAGS,
                     "--run-dir", str(run))  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (run / "progress.csv").is_file() or len((run / "progress.csv").read_text().splitlines()) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    command = f"softac train --resume {shlex.quote(str(run))}"
    assert last.endswith(f" — to continue it: {command}"), last
    step = int(list_checkpoints(run)[-1].name.split("_")[-1])
    resumed = run_cli(*shlex.split(command)[1:], "--total-steps", str(step + 50), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert int(read_progress(run / "progress.csv")[-1]["step"]) == step + 50


def test_several_seeds_end_with_one_aggregate_line(tmp_path: Path) -> None:
    run = tmp_path / "r"
    proc = run_cli("train", "--seeds", "0-2", "--total-steps", "150", "--learning-starts", "100", "--eval-freq", "150",
                   "--preset", "none", *TINY_FLAGS, "--run-dir", str(run))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    finals = [float(read_progress(run / f"seed_{s}" / "progress.csv")[-1]["eval_return_mean"]) for s in range(3)]
    agg = aggregate(finals)
    line = proc.stdout.strip().splitlines()[-1]
    assert line.startswith(f"3 seeds at step 150: final eval return mean {agg['mean']:.1f}, 95% CI "
                           f"[{agg['mean_ci_low']:.1f}, {agg['mean_ci_high']:.1f}]"), line  # fmt: skip
    assert agg["mean_ci_low"] < agg["mean_ci_high"]  # three different seeds: a real interval
