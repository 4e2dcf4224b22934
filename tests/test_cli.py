"""``softac`` end to end in subprocesses: outputs of a run, eval, plot, and bad input → exit 2."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY, assert_one_line_error, cli_env, run_cli

from softac import SAC, TD3, SoftacError, cli
from softac.cli.train import build_train_parser
from softac.logging import read_progress


def test_train_writes_a_complete_run_directory(cli_sac_run: Path) -> None:
    run = cli_sac_run
    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "sac"
    cfg = config["config"]
    assert cfg["env_id"] == "Pendulum-v1" and cfg["total_steps"] == 600 and cfg["hidden_sizes"] == [32, 32]
    assert cfg["gamma"] == 0.99 and cfg["batch_size"] == 64  # the full resolved config, defaults too

    with (run / "progress.csv").open(newline="") as f:
        header = next(csv.reader(f))
    for column in ("step", "eval_return_mean", "eval_return_std", "wall_time_s"):
        assert column in header
    rows = read_progress(run / "progress.csv")
    assert [int(r["step"]) for r in rows] == [300, 600]
    assert int(rows[-1]["updates"]) == 400  # the run went past learning_starts and updated
    assert all(float(r["eval_return_mean"]) < 0 for r in rows)  # Pendulum returns are negative
    assert float(rows[1]["wall_time_s"]) > float(rows[0]["wall_time_s"]) > 0

    events = list((run / "tb").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_0000000300", "step_0000000600"]
    png = run / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    agent = SAC.load(run)
    assert agent.env_steps == 600 and agent.updates == 400


def test_tensorboard_events_hold_training_scalars(cli_sac_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(cli_sac_run / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"eval/return_mean", "loss/critic", "loss/actor", "alpha", "rollout/episode_return"} <= tags
    assert [e.step for e in acc.Scalars("eval/return_mean")] == [300, 600]


def test_eval_prints_mean_return(cli_sac_run: Path) -> None:
    proc = run_cli("eval", str(cli_sac_run), "--episodes", "2")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"mean return (-?\d+\.\d+) ± (\d+\.\d+) over 2 episodes", proc.stdout)
    assert match, proc.stdout
    assert -2000 < float(match.group(1)) < 0
    assert "at step 600" in proc.stdout


@pytest.fixture(scope="module")
def td3_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TD3 run made through the Python API (the plot only needs its run directory)."""
    run_dir = tmp_path_factory.mktemp("api-td3") / "td3"
    agent = TD3("Pendulum-v1", **TINY, learning_starts=200, total_steps=400, eval_freq=200)
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates == 200
    return run_dir


def test_plot_overlays_two_algorithms(
    cli_sac_run: Path, td3_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tmp_path / "figs" / "both.png"
    proc = run_cli("plot", str(cli_sac_run), str(td3_run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in proc.stdout
    # in-process: the figure really has one panel with one line per algorithm, labelled
    from softac.analysis import plot as plot_mod

    captured: dict[str, object] = {}
    original = plt.Figure.savefig

    def spy(fig: plt.Figure, *args: object, **kwargs: object) -> None:
        captured["panels"] = [ax.get_title() for ax in fig.axes]
        captured["labels"] = sorted(line.get_label() for ax in fig.axes for line in ax.get_lines())
        original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    plot_mod.plot_runs([cli_sac_run, td3_run], tmp_path / "again.png")
    assert captured["panels"] == ["Pendulum-v1"]
    assert captured["labels"] == ["SAC (seed 0)", "TD3 (seed 0)"]


def test_discrete_env_exits_2_with_one_line(tmp_path: Path) -> None:
    # through the installed console script (the `softac` entry point of pyproject.toml)
    script = Path(sys.executable).with_name("softac")
    if not script.exists():
        pytest.skip("the softac console script is not installed next to this Python")
    proc = subprocess.run(
        [str(script), "train", "--env", "CartPole-v1", "--run-dir", str(tmp_path / "r"), "--no-progress"],
        capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
    )  # fmt: skip
    assert_one_line_error(proc, "CartPole-v1", "Discrete", "use --algo sac-discrete or dqn")
    assert not (tmp_path / "r").exists()  # nothing was written for a refused run


@pytest.mark.parametrize(
    ("args", "needles"),
    [(["--gamma", "1.5"], ["gamma must be in [0, 1], got 1.5"]),
     (["--no-such-flag", "3"], ["unrecognized arguments", "--no-such-flag"])],
)  # fmt: skip
def test_bad_train_input_exits_2_with_one_line(args: list[str], needles: list[str], tmp_path: Path) -> None:
    proc = run_cli("train", *args, "--run-dir", str(tmp_path / "r"), "--no-progress")
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "r").exists()


# -- more bad input, in-process (the same main() as the console script, without the start-up cost)
def _main_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softac: error:"), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--tau", "0"], "tau must be in (0, 1]"),
        (["--batch-size", "many"], "--batch-size"),
        (["--batch-size", "1.5"], "--batch-size"),
        (["--algo", "a2c"], "unknown --algo 'a2c'"),
        (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["--hidden-sizes", "32", "0"], "hidden_sizes"),
        (["--policy-delay", "2"], "unrecognized arguments: --policy-delay"),  # a TD3 flag given to SAC
        (["--algo", "td3", "--policy-delay", "0"], "policy_delay"),
        (["--seeds", "3-1"], "expected seeds like 0-7 or 0,3,9"),
        (["--seeds", "1,1"], "seeds must be distinct"),
        (["--device", "cuda:7"] if not torch.cuda.is_available() else ["--device", "nonsense"], "device"),
    ],
)
def test_bad_train_input_in_process(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _main_error(capsys, "train", *args, "--run-dir", str(tmp_path / "r"), "--no-progress")
    assert needle in line
    assert not (tmp_path / "r").exists()


def test_integer_flags_accept_scientific_notation() -> None:
    parser = build_train_parser("sac")
    args = parser.parse_args(["--total-steps", "1e6", "--buffer-size", "1_000"])
    assert args.total_steps == 1_000_000 and args.buffer_size == 1000


def test_every_config_field_is_a_flag() -> None:
    import dataclasses

    from softac import registry

    assert {"sac", "td3", "ddpg"} <= set(registry.names())
    for algo in registry.names():
        help_text = build_train_parser(algo).format_help()
        for f in dataclasses.fields(registry.get(algo).config_cls):
            assert "--" + f.name.replace("_", "-") in help_text, (algo, f.name)


def test_unknown_command_and_debug(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert "unknown command 'fly'" in _main_error(capsys, "fly")
    with pytest.raises(SoftacError, match="gamma"):
        cli.main(["train", "--gamma", "1.5", "--debug", "--run-dir", str(tmp_path / "r")])


def test_plot_and_eval_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cli_sac_run: Path
) -> None:
    assert "progress.csv" in _main_error(capsys, "plot", str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()
    assert "does not exist" in _main_error(capsys, "eval", str(tmp_path / "missing"))
    assert "--episodes" in _main_error(capsys, "eval", str(cli_sac_run), "--episodes", "0")
    assert "not a softac run" in _main_error(capsys, "eval", str(tmp_path))


def test_ctrl_c_outside_training_exits_130_with_one_line(
    cli_sac_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import softac.evaluate

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(softac.evaluate, "evaluate", interrupted)
    assert cli.main(["eval", str(cli_sac_run), "--episodes", "1"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0]
