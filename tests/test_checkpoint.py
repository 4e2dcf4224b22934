"""Checkpoints: corrupted/foreign files are refused with a clear error (never unpickled), saves are
atomic, and a run directory is never silently overwritten."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, assert_one_line_error, fill_buffer, run_cli, state_tensors

import softac.io.rundir as rundir_mod
import softac.io.state as ckpt_mod
from softac import DDPG, SAC, TD3, SoftacError, cli
from softac.io.files import read_tensors, write_safetensors
from softac.io.load import load_agent
from softac.io.rundir import list_checkpoints, step_checkpoint_path
from softac.io.state import save_checkpoint


def _ckpt(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    assert len(found) == 1
    return found[0]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    # Not `.lock`: it holds the PID of the last process that locked the run (softac.io.lock), not
    # the run's content, and a refused process may have held the lock while it checked the run.
    files = [p for p in root.rglob("*") if p.is_file() and p.name != ".lock"]
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


# -- (c) corrupted checkpoints ------------------------------------------------------------------
def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "file", "needle"),
    [
        (_flip_bytes, "model.safetensors", "corrupted or truncated"),
        (_truncate, "model.safetensors", "truncated"),
        (_empty, "model.safetensors", "truncated"),
        (Path.unlink, "model.safetensors", "is missing"),
        (_flip_bytes, "buffer.safetensors", "corrupted or truncated"),
        (_truncate, "buffer.safetensors", "truncated"),
        (_truncate, "state.json", "unreadable state.json"),
        (_empty, "state.json", "unreadable state.json"),
    ],
)
def test_damaged_checkpoint_is_refused(run_copy: Path, damage: Any, file: str, needle: str) -> None:
    ckpt = _ckpt(run_copy)
    SAC.load(ckpt)  # intact: loads
    damage(ckpt / file)
    for target in (ckpt, run_copy):
        with pytest.raises(SoftacError) as info:
            SAC.load(target)
        msg = str(info.value)
        assert needle in msg and str(ckpt) in msg
        assert "\n" not in msg


def test_missing_state_json_is_refused(run_copy: Path) -> None:
    ckpt = _ckpt(run_copy)
    (ckpt / "state.json").unlink()
    for target in (ckpt, run_copy):
        with pytest.raises(SoftacError, match=r"has no state\.json"):  # the missing file is named
            SAC.load(target)


def test_foreign_state_json_is_refused(run_copy: Path) -> None:
    ckpt = _ckpt(run_copy)
    (ckpt / "state.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(SoftacError, match="is not a softac checkpoint"):
        SAC.load(ckpt)
    state = {"format": "softac-checkpoint", "version": 99}
    (ckpt / "state.json").write_text(json.dumps(state))
    with pytest.raises(SoftacError, match="format version 99"):
        SAC.load(ckpt)


def _main_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """``softac ARGV`` in-process (the console script's own main()): exit 2, one stderr line."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("softac: error:"), (code, err)
    return err[0]


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop("files"),
        lambda s: s.pop("counters"),
        lambda s: s["counters"].pop("updates"),
        lambda s: s.update(data=None),
        lambda s: s.update(obs_dim="3"),
        lambda s: s["config"].update(hidden_sizes="abc"),
        lambda s: s["config"].update(gamma=7.0),
    ],
)
def test_incomplete_state_json_is_a_clear_error(run_copy: Path, edit: Any) -> None:
    ckpt = _ckpt(run_copy)
    state = json.loads((ckpt / "state.json").read_text())
    edit(state)
    (ckpt / "state.json").write_text(json.dumps(state))
    with pytest.raises(SoftacError) as info:
        SAC.load(ckpt)
    assert str(ckpt) in str(info.value) or "gamma" in str(info.value)


def test_corrupted_checkpoint_cli_exit_2(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _flip_bytes(_ckpt(run_copy) / "model.safetensors")
    assert_one_line_error(run_cli("eval", str(run_copy), "--episodes", "1"), "corrupted or truncated")
    before = _snapshot(run_copy)
    line = _main_error(capsys, "train", "--resume", str(run_copy), "--total-steps", "800", "--no-progress")
    assert "corrupted or truncated" in line
    assert _snapshot(run_copy) == before  # a refused resume writes nothing


# -- (d) pickles are refused, never loaded ------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


def test_pickle_payload_is_refused_and_never_executed(run_copy: Path, tmp_path: Path) -> None:
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Payload(control)))
    assert control.exists(), "the payload must work when unpickled, else this test proves nothing"

    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker), protocol=pickle.HIGHEST_PROTOCOL)
    ckpt = _ckpt(run_copy)
    for name in ("model.safetensors", "buffer.safetensors"):
        shutil.copytree(ckpt, tmp_path / name)
        target = tmp_path / name
        (target / name).write_bytes(payload)
        # even with a matching checksum in state.json (an attacker can rewrite it)
        state = json.loads((target / "state.json").read_text())
        state["files"][name] = hashlib.sha256(payload).hexdigest()
        (target / "state.json").write_text(json.dumps(state))
        with pytest.raises(SoftacError, match="pickle"):
            SAC.load(target)
        assert not marker.exists()
    # a torch.save file (a zip of pickles) is refused the same way
    torch.save({"x": torch.zeros(3)}, ckpt / "model.safetensors")
    with pytest.raises(SoftacError, match="pickle"):
        SAC.load(run_copy)
    # and a pickle given directly as the path
    (tmp_path / "model.pt").write_bytes(payload)
    with pytest.raises(SoftacError, match="pickle"):
        SAC.load(tmp_path / "model.pt")
    assert not marker.exists()


def test_pickle_payload_cli_exit_2(
    run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned-cli"
    (_ckpt(run_copy) / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    assert "pickle" in _main_error(capsys, "eval", str(run_copy))
    assert "pickle" in _main_error(capsys, "train", "--resume", str(run_copy), "--total-steps", "900")
    assert not marker.exists()


def test_protocol_0_pickle_is_refused(run_copy: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned0"
    (_ckpt(run_copy) / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker), protocol=0))
    with pytest.raises(SoftacError):
        SAC.load(run_copy)
    assert not marker.exists()


# -- (e) wrong algorithm, not a run, existing run, unwritable directory --------------------------
def test_checkpoint_of_another_algorithm_is_refused(
    sac_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SoftacError, match="holds a sac checkpoint, not td3"):
        TD3.load(sac_checkpoint)
    with pytest.raises(SoftacError, match="not ddpg"):
        DDPG.load(sac_checkpoint)
    with pytest.raises(SoftacError, match="algo 'sac', not 'td3'"):
        load_agent(sac_checkpoint, expect={"algo": "td3"})
    td3 = TD3("Pendulum-v1", **TINY)
    td3.save(tmp_path / "td3")
    with pytest.raises(SoftacError, match="not sac"):
        SAC.load(tmp_path / "td3")
    line = _main_error(
        capsys, "train", "--resume", str(sac_checkpoint), "--algo", "td3", "--total-steps", "800"
    )
    assert "'sac', not 'td3'" in line


def test_resume_of_a_non_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli("train", "--resume", str(tmp_path / "empty"), "--no-progress")
    assert_one_line_error(proc, "not a softac run or checkpoint directory")
    assert list((tmp_path / "empty").iterdir()) == []
    assert cli.main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_existing_run_dir_is_protected(
    cli_sac_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "existing"
    shutil.copytree(cli_sac_run, run)
    before = _snapshot(run)
    args = ["train", "--total-steps", "400", "--learning-starts", "200", "--eval-freq", "200",
            "--run-dir", str(run), *TINY_FLAGS]  # fmt: skip
    proc = run_cli(*args)
    assert_one_line_error(proc, "already holds a run", "--resume", "--overwrite")
    assert _snapshot(run) == before  # not a byte or a timestamp changed

    # the Python API refuses the same way
    with pytest.raises(SoftacError, match="already holds a run"):
        TD3("Pendulum-v1", **TINY, total_steps=300, learning_starts=100).learn(run_dir=run, progress=False)
    assert _snapshot(run) == before

    assert cli.main([*args, "--overwrite"]) == 0  # in-process: the same main() as the console script
    assert [p.name for p in list_checkpoints(run)] == ["step_0000000400"]
    rows = (run / "progress.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["200", "400"]  # the old run's rows are gone
    assert json.loads((run / "config.json").read_text())["config"]["total_steps"] == 400


def test_resume_into_a_different_run_is_refused(sac_checkpoint: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    td3 = TD3("Pendulum-v1", **TINY, total_steps=200, learning_starts=100, eval_freq=200)
    td3.learn(run_dir=other, progress=False)
    assert td3.updates == 100
    before = _snapshot(other)
    agent = SAC.load(sac_checkpoint)
    with pytest.raises(SoftacError, match="holds a different run"):
        agent.learn(total_steps=600, run_dir=other, progress=False)
    assert _snapshot(other) == before


def test_unwritable_run_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    with pytest.raises(SoftacError, match="not writable"):
        TD3("Pendulum-v1", **TINY, total_steps=200, learning_starts=100).learn(
            run_dir=afile / "run", progress=False
        )
    code = cli.main(["train", "--total-steps", "200", "--run-dir", str(afile / "run"), *TINY_FLAGS])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not writable" in err[0]
    assert afile.read_text() == "not a directory"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_run_dir_is_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(SoftacError, match="not writable"):
            TD3("Pendulum-v1", **TINY, total_steps=200, learning_starts=100).learn(run_dir=ro, progress=False)
    finally:
        ro.chmod(0o700)


# -- (f) atomic saves -----------------------------------------------------------------------------
def _failing_writer(fail_on: str, exc: BaseException) -> Any:
    original = ckpt_mod.write_safetensors

    def writer(path: Path, tensors: dict[str, torch.Tensor], metadata: Any = None) -> str:
        if path.name == fail_on:
            with path.open("wb") as f:  # a partial file, then the failure
                f.write(b"\x00" * 1000)
            raise exc
        return original(path, tensors, metadata)

    return writer


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), OSError(28, "No space left on device")])
def test_failed_save_keeps_previous_checkpoint(
    run_copy: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    old = _ckpt(run_copy)
    agent = SAC.load(run_copy)
    reference = state_tensors(agent)
    before = _snapshot(old)
    agent.learn(total_steps=500, progress=False)  # change the weights (no run dir: nothing saved)
    assert agent.updates == 300
    monkeypatch.setattr(ckpt_mod, "write_safetensors", _failing_writer("buffer.safetensors", exc))
    for path in (step_checkpoint_path(run_copy, 500), old):  # a new step, and replacing the old one
        with pytest.raises((SoftacError, RuntimeError)):
            save_checkpoint(agent, 0, path)
        assert list_checkpoints(run_copy) == [old]
        assert _snapshot(old) == before
        leftovers = [p.name for p in old.parent.iterdir() if p != old]
        assert leftovers == []  # no .tmp / .old directory left behind
    monkeypatch.undo()
    assert_bit_identical(state_tensors(SAC.load(run_copy)), reference)


def test_failed_save_during_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    calls = {"n": 0}
    original = ckpt_mod.write_safetensors

    def writer(path: Path, tensors: dict[str, torch.Tensor], metadata: Any = None) -> str:
        if path.name == "buffer.safetensors":
            calls["n"] += 1
            if calls["n"] == 2:  # the second checkpoint fails mid-way
                path.write_bytes(b"\x01" * 100)
                raise OSError(28, "No space left on device")
        return original(path, tensors, metadata)

    monkeypatch.setattr(ckpt_mod, "write_safetensors", writer)
    agent = TD3("Pendulum-v1", **TINY, learning_starts=100, total_steps=400, eval_freq=200,
                checkpoint_freq=200)  # fmt: skip
    with pytest.raises(SoftacError, match="No space left on device"):
        agent.learn(run_dir=run_dir, progress=False)
    monkeypatch.undo()
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000000200"]
    loaded = TD3.load(run_dir)
    assert loaded.env_steps == 200 and loaded.updates == 100
    # and the run resumes from it
    loaded.learn(total_steps=400, run_dir=run_dir, progress=False)
    assert loaded.updates == 300
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000000200", "step_0000000400"]


def test_stale_temporary_directories_are_ignored_and_cleaned(run_copy: Path) -> None:
    ckpt_dir = run_copy / "checkpoints"
    half = ckpt_dir / "step_0000000900.tmp-12345"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"\x00" * 10)
    bare = ckpt_dir / "step_0000000950"  # a directory without state.json is not a checkpoint
    bare.mkdir()
    assert [p.name for p in list_checkpoints(run_copy)] == ["step_0000000400"]
    agent = SAC.load(run_copy)
    assert agent.env_steps == 400
    agent.learn(total_steps=600, run_dir=run_copy, progress=False)
    assert agent.updates == 400
    assert not half.exists()
    assert [p.name for p in list_checkpoints(run_copy)] == ["step_0000000400", "step_0000000600"]


def test_checkpoint_files_are_plain_safetensors(sac_checkpoint: Path) -> None:
    from safetensors.numpy import load_file

    ckpt = _ckpt(sac_checkpoint)
    state = json.loads((ckpt / "state.json").read_text())
    assert state["algo"] == "sac" and state["counters"]["env_steps"] == 400
    for name, digest in state["files"].items():
        assert hashlib.sha256((ckpt / name).read_bytes()).hexdigest() == digest
    tensors = load_file(str(ckpt / "model.safetensors"))
    assert "extra/log_alpha" in tensors and "net/critic/net.weights.0" in tensors
    assert tensors["net/critic/net.weights.0"].shape == (2, 3 + 1, 32)  # one learner: its two critics
    buffer = load_file(str(ckpt / "buffer.safetensors"))["storage"]
    assert buffer.shape == (400, 3 + 1 + 2 + 3) and np.isfinite(buffer).all()


def test_save_refuses_non_finite_weights(tmp_path: Path) -> None:
    agent = TD3("Pendulum-v1", **TINY)
    with torch.no_grad():
        agent.critic.net.weights[0][0, 0, 0] = float("nan")
    with pytest.raises(SoftacError, match=r"critic/net\.weights\.0 holds NaN/inf"):
        agent.save(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_safetensors_whose_header_length_starts_with_0x80_is_not_mistaken_for_a_pickle(tmp_path: Path) -> None:
    """The header length is the file's first 8 bytes (little endian): 128 mod 256 starts with 0x80,
    the pickle opcode. Such files must load (they once were refused as pickles)."""
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"x" * 67: torch.arange(3.0)})
    assert path.read_bytes()[0] == 0x80  # the name length was chosen for this
    assert torch.equal(read_tensors(path)["x" * 67], torch.arange(3.0))


def test_ddpg_checkpoint_round_trips(tmp_path: Path) -> None:
    agent = DDPG("Pendulum-v1", **{**TINY, "hidden_sizes": (48, 48)})
    fill_buffer(agent, 64)
    agent.update()
    agent.save(tmp_path / "ddpg")
    assert_bit_identical(state_tensors(agent), state_tensors(DDPG.load(tmp_path / "ddpg")))


def test_pruning_killed_midway_never_leaves_a_listed_broken_checkpoint(
    run_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = SAC.load(run_copy)
    for step in (500, 600):
        agent.env_steps = step
        save_checkpoint(agent, 0, step_checkpoint_path(run_copy, step))
    assert len(list_checkpoints(run_copy)) == 3
    real_rmtree = shutil.rmtree

    def killed_rmtree(path: Any, ignore_errors: bool = False, **kwargs: Any) -> None:
        """rmtree that dies after deleting one file (as under SIGKILL)."""
        Path(path, "model.safetensors").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir_mod.shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        rundir_mod.prune_checkpoints(run_copy, keep=2)
    monkeypatch.setattr(rundir_mod.shutil, "rmtree", real_rmtree)
    listed = list_checkpoints(run_copy)
    assert [p.name for p in listed] == ["step_0000000500", "step_0000000600"]
    for ckpt in listed:  # every listed checkpoint is whole
        assert SAC.load(ckpt).env_steps == int(ckpt.name[5:])
    rundir_mod.prune_checkpoints(run_copy, keep=2)  # the next prune removes the half-deleted one
    assert sorted(p.name for p in (run_copy / "checkpoints").iterdir()) == ["step_0000000500", "step_0000000600"]
