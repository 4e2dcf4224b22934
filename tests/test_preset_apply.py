"""Presets in use: the CLI applies the preset of (algorithm, environment) by default, prints it,
records it in config.json, lets every flag override it and ``--preset none`` skip it; the Python
API applies one only when asked; ``softac presets`` lists them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY, TINY_FLAGS

from softac import DQN, SAC, DiscreteSAC, DQNConfig, SoftacError, cli
from softac.presets import get_preset

SHORT = ["--total-steps", "300", "--learning-starts", "100", "--eval-freq", "300", *TINY_FLAGS]


def _train(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, dict[str, object]]:
    run_dir = argv[argv.index("--run-dir") + 1]
    assert cli.main(["train", *argv]) == 0
    out = capsys.readouterr().out  # stdout: stderr keeps its one-line errors (exit 2, exit 3)
    return out, json.loads((Path(run_dir) / "config.json").read_text())


def test_cli_applies_prints_and_records_the_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, record = _train(capsys, "--algo", "dqn", "--env", "CartPole-v1", *SHORT, "--run-dir", str(tmp_path / "r"))
    lines = [line for line in out.splitlines() if line.startswith("softac: preset")]
    assert len(lines) == 1
    assert lines[0].startswith("softac: preset dqn/CartPole-v1 (https://docs.cleanrl.dev/")
    assert "lr=0.00025" in lines[0] and "target_update_interval=500" in lines[0]
    assert "batch_size=" not in lines[0] and "overridden by your settings: " in lines[0]  # TINY sets batch_size
    config = record["config"]
    assert isinstance(config, dict)
    assert config["lr"] == 2.5e-4 and config["loss"] == "mse" and config["utd_ratio"] == 0.1  # the preset's
    assert config["batch_size"] == 64 and config["total_steps"] == 300  # the flags'
    preset = record["preset"]
    assert isinstance(preset, dict)
    assert preset["name"] == "dqn/CartPole-v1" and preset["source"].startswith("https://docs.cleanrl.dev/")
    assert preset["values"]["batch_size"] == 128 and preset["values"]["hidden_sizes"] == [120, 84]
    assert set(preset["overridden"]) == {"total_steps", "learning_starts", "batch_size", "buffer_size",
                                         "hidden_sizes"}  # fmt: skip


def test_cli_preset_none_gives_the_plain_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, record = _train(capsys, "--algo", "dqn", "--env", "CartPole-v1", "--preset", "none", *SHORT,
                         "--run-dir", str(tmp_path / "r"))  # fmt: skip
    assert "softac: preset" not in out and record["preset"] is None
    config = record["config"]
    assert isinstance(config, dict)
    assert (config["lr"], config["loss"], config["utd_ratio"]) == (DQNConfig.lr, "huber", 0.25)


def test_cli_resume_keeps_the_record_and_refuses_another_preset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "r"
    _train(capsys, "--algo", "sac-discrete", "--env", "CartPole-v1", *SHORT, "--checkpoint-freq", "300",
           "--run-dir", str(run))  # fmt: skip
    assert cli.main(["train", "--resume", str(run), "--preset", "none", "--total-steps", "400"]) == 2
    assert "--preset cannot be changed" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(run), "--total-steps", "400", "--no-progress"]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["preset"]["name"] == "sac-discrete/CartPole-v1" and record["config"]["total_steps"] == 400


def test_api_presets_are_opt_in() -> None:
    plain = DQN("CartPole-v1", **TINY)
    assert plain.preset is None and plain.config.lr == DQNConfig.lr
    tuned = DQN("CartPole-v1", **TINY, preset="auto", lr=1e-3)
    preset = get_preset("dqn", "CartPole-v1")
    assert preset is not None and tuned.preset is not None
    assert tuned.config.lr == 1e-3 and tuned.config.target_update_interval == preset.params["target_update_interval"]
    assert tuned.config.hidden_sizes == TINY["hidden_sizes"]  # given: overrides the preset's 120×84
    assert "lr" in tuned.preset.overridden and "target_update_interval" not in tuned.preset.overridden
    assert DiscreteSAC("SoftacTest/Guess-v0", **TINY, preset="auto").preset is None  # none for this env
    with pytest.raises(SoftacError, match="not both"):
        SAC("Pendulum-v1", config=SAC.config_cls(), preset="auto")
    with pytest.raises(SoftacError, match="preset must be one of 'auto', 'none'"):
        SAC("Pendulum-v1", **TINY, preset="fast")


def test_presets_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["presets", "--algo", "dqn"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out[1:] if line.startswith("dqn")]
    assert out[0].split() == ["algo", "env", "total_steps", "source"]
    assert ["dqn", "CartPole-v1", "500000", "https://docs.cleanrl.dev/rl-algorithms/dqn/#dqnpy"] in rows
    assert all(line.startswith(("dqn", "(")) for line in out[1:])
    assert cli.main(["presets", "--algo", "sac-discrete", "--env", "CartPole-v1"]) == 0
    out_text = capsys.readouterr().out
    assert "target_entropy_scale = 0.7" in out_text and "note: " in out_text
    assert cli.main(["presets", "--algo", "a2c"]) == 2
    assert "no presets for algorithm 'a2c'" in capsys.readouterr().err
    assert cli.main(["presets", "--algo", "dqn", "--env", "Pendulum-v1"]) == 2
