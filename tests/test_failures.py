"""When things go wrong (issue 16, items 3–7): a second process on a run, a disk that fills up,
an environment that crashes, memory that cannot exist, NaN in a checkpoint or in evaluation. Each
is one line with a documented exit code, and the last good checkpoint is kept and named."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_one_line_error, popen_cli, run_cli

from softac import SAC, TD3, SoftacError, cli
from softac.errors import EnvError, WriteError
from softac.io.files import read_tensors as read_tensor_file
from softac.io.files import sha256_file, write_safetensors
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def _leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if ".tmp" in p.name]


# -- item 3: one process per run directory ---------------------------------------------------
def _wait(predicate: Any, proc: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.kill()
    pytest.fail("timed out waiting for the first trainer")


def test_second_process_on_a_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = popen_cli(
        "train", "--env", "Pendulum-v1", "--total-steps", "1000000", "--learning-starts", "100",
        "--checkpoint-freq", "200", "--eval-freq", "100000", "--run-dir", str(run), *TINY_FLAGS,
        "--no-compile-update",  # a budget that never ends, not a reason to compile (BaseConfig.compiles)
    )  # fmt: skip
    try:
        _wait(lambda: bool(list_checkpoints(run)), first)
        # Stopped, not killed: it still holds the lock, and it no longer trains beside the two
        # refused processes (it ran a whole core for their ~5 s) or prunes checkpoints under them.
        first.send_signal(signal.SIGSTOP)
        assert (run / ".lock").read_text().strip() == str(first.pid)
        for args in (["--resume", str(run)], ["--run-dir", str(run), "--overwrite", "--total-steps", "300"]):
            line = assert_one_line_error(run_cli("train", *args, "--no-progress"), "in use", f"PID {first.pid}")
            assert str(run) in line
        assert list_checkpoints(run)  # the refused processes deleted nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    # the kernel released the lock of the killed process: the run resumes at once
    proc = run_cli("train", "--resume", str(run), "--total-steps", str(_step(run) + 100), "--no-progress")
    assert proc.returncode == 0, proc.stderr


def _step(run: Path) -> int:
    return int(list_checkpoints(run)[-1].name.removeprefix("step_"))


# -- item 4: a write that fails is one line; temp files go; the last checkpoint is named --------
def _fail_fsync_of(monkeypatch: pytest.MonkeyPatch, needle: str, after: int = 0) -> None:
    """Make fsync fail with ENOSPC (disk full) for files whose path contains ``needle``, after
    ``after`` successful ones: the OS call under the code, not the code under test."""
    real = os.fsync
    seen = {"n": 0}

    def fsync(fd: int) -> None:
        if needle in str(Path(f"/proc/self/fd/{fd}").readlink()):
            seen["n"] += 1
            if seen["n"] > after:
                raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_progress_csv_disk_full_names_the_last_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    # fsync of progress.csv: once when the run prepares it, once for the row at step 200; the row
    # at step 400 hits the full disk, after the checkpoint of step 200.
    _fail_fsync_of(monkeypatch, "progress.csv", after=2)
    agent = TD3("Pendulum-v1", **TINY, learning_starts=100, total_steps=600, eval_freq=200, checkpoint_freq=200)
    with pytest.raises(WriteError) as info:
        agent.learn(run_dir=run, progress=False)
    monkeypatch.undo()
    msg = str(info.value)
    assert "\n" not in msg
    assert f"cannot write {run / 'progress.csv'}: No space left on device" in msg
    assert f"the last good checkpoint is {run / 'checkpoints' / 'step_0000000200'}" in msg
    assert _leftovers(run) == []
    # the run resumes from that checkpoint: nothing lost, and progress.csv has each step once
    resumed = TD3.load(run)
    assert resumed.env_steps == 200
    resumed.learn(run_dir=run, progress=False)
    assert [r["step"] for r in read_progress(run / "progress.csv")] == ["200", "400", "600"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_config_json_disk_full_is_one_line_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], sac_checkpoint: Path
) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(sac_checkpoint, run)
    _fail_fsync_of(monkeypatch, "config.json")
    code, err = _main(capsys, "train", "--resume", str(run), "--total-steps", "600", "--no-progress")
    # the note that the resume started, then the one error line
    assert code == 2 and len(err) == 2 and err[0].startswith("softac: resuming"), err
    err = err[1:]
    assert err[0].startswith("softac: error: cannot write") and "config.json: No space left on device" in err[0]
    assert f"the last good checkpoint is {run / 'checkpoints' / 'step_0000000400'}" in err[0]
    assert _leftovers(run) == []


def test_tensorboard_directory_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "tb").write_text("a file where TensorBoard's directory goes")
    code, err = _main(capsys, "train", "--total-steps", "200", "--learning-starts", "100", "--run-dir", str(run),
                      *TINY_FLAGS)  # fmt: skip
    assert code == 2 and len(err) == 1 and f"cannot write {run / 'tb'}" in err[0], err
    assert (run / "tb").read_text().startswith("a file")


# -- item 5: an exception inside the environment -------------------------------------------------
@pytest.mark.parametrize(("env_id", "needle"), [
    ("SoftacTest/Crash-v0", "raised ZeroDivisionError in step() at step 149: division by zero"),
    ("SoftacTest/CrashReset-v0", "raised RuntimeError in reset() at step 150: reset failed in the user's code"),
])  # fmt: skip
def test_environment_exception_exits_4_naming_env_step_and_checkpoint(
    env_id: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "--algo", "td3", "--env", env_id, "--total-steps", "400", "--learning-starts", "50",
            "--checkpoint-freq", "100", "--eval-freq", "1000", "--run-dir", str(run), *TINY_FLAGS]  # fmt: skip
    code, err = _main(capsys, *args)
    assert code == 4 and len(err) == 1, err
    assert err[0].startswith(f"softac: error: the environment {env_id} {needle}")
    assert err[0].endswith(f"the last good checkpoint is {run / 'checkpoints' / 'step_0000000100'}")
    assert TD3.load(run).env_steps == 100
    # --debug shows the environment's own traceback (the exception's cause)
    with pytest.raises(EnvError) as info:
        cli.main([*args[:-len(TINY_FLAGS) - 2], "--run-dir", str(tmp_path / "dbg"), *TINY_FLAGS, "--debug"])
    assert isinstance(info.value.__cause__, (ZeroDivisionError, RuntimeError))


def test_evaluation_environment_exception_is_an_env_error() -> None:
    agent = TD3("SoftacTest/Crash-v0", **TINY, learning_starts=10, total_steps=20, eval_freq=20)
    agent.env_source.make = lambda: __import__("helpers").CrashingEnv(crash_at=3)  # type: ignore[method-assign]
    with pytest.raises(EnvError, match=r"evaluation environment SoftacTest/Crash-v0 raised ZeroDivisionError"):
        agent.learn(progress=False)


# -- item 6: memory that cannot exist ------------------------------------------------------------
@pytest.mark.parametrize(("flags", "needle"), [
    (["--buffer-size", "1e12"], "the replay buffer would need 36.0 TB, more than all of this machine's memory"),
    (["--hidden-sizes", "1000000000"], "the networks ("),
])  # fmt: skip
def test_impossible_memory_is_refused_at_once(
    flags: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    code, err = _main(capsys, "train", "--env", "Pendulum-v1", *flags, "--run-dir", str(tmp_path / "r"))
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert re.search(r"\d+\.\d GB available of \d+\.\d GB", err[0]), err[0]  # the machine's memory, named
    assert time.monotonic() - start < 20
    assert not (tmp_path / "r").exists()


def test_memory_estimate_counts_only_the_rows_a_run_fills() -> None:
    agent = SAC("Pendulum-v1", **{**TINY, "buffer_size": 1_000_000}, total_steps=1000)
    assert agent.memory_estimate()["replay buffer"] == 1000 * (2 * 3 + 1 + 2) * 4
    assert agent.memory_reserved()["replay buffer"] == 1_000_000 * 9 * 4
    with pytest.raises(SoftacError, match="networks"):
        SAC("Pendulum-v1", hidden_sizes=(200_000, 200_000))


# -- item 7: NaN/inf weights in a loaded checkpoint; NaN in the evaluation environment -----------
def _poison(ckpt: Path, name: str) -> None:
    """Put a NaN into one tensor of a checkpoint and re-sign it (as a tool or an attacker could)."""
    # cloned: the tensors read map the file, which is about to be rewritten
    tensors = {k: v.clone() for k, v in read_tensor_file(ckpt / "model.safetensors").items()}
    tensors[name].view(-1)[0] = float("nan")
    write_safetensors(ckpt / "model.safetensors", tensors)
    state = json.loads((ckpt / "state.json").read_text())
    state["files"]["model.safetensors"] = sha256_file(ckpt / "model.safetensors")
    (ckpt / "state.json").write_text(json.dumps(state))


def test_checkpoint_with_nan_weights_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = SAC("Pendulum-v1", **TINY)
    agent.save(tmp_path / "ckpt")
    _poison(tmp_path / "ckpt", "net/actor/trunk.weights.0")
    with pytest.raises(SoftacError, match=r"holds NaN/inf values in net/actor/trunk\.weights\.0"):
        SAC.load(tmp_path / "ckpt")
    code, err = _main(capsys, "eval", str(tmp_path / "ckpt"), "--episodes", "1")
    assert code == 2 and len(err) == 1 and "use an earlier checkpoint" in err[0], err


def test_nan_in_the_evaluation_environment_is_reported_not_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code, err = _main(capsys, "train", "--env", "SoftacTest/EvalNaN-v0", "--total-steps", "100", "--learning-starts",
                      "50", "--eval-freq", "50", "--run-dir", str(run), *TINY_FLAGS)  # fmt: skip
    assert code == 2 and len(err) == 1, err
    assert "evaluation environment returned a non-finite reward" in err[0]
    assert read_progress(run / "progress.csv") == []  # no "nan" row


def test_skip_nonfinite_ends_nan_evaluation_episodes_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    agent = SAC("SoftacTest/EvalNaN-v0", **TINY, learning_starts=10, total_steps=20, eval_freq=20,
                skip_nonfinite=True)  # fmt: skip
    agent.learn(progress=False)
    assert "evaluation episode(s) ended early" in capsys.readouterr().err
    assert torch.isfinite(agent.log_alpha).all()
