"""Issue 22, the hostile probe: nothing that is not softac's is deleted, a batched run's lock covers
its seeds, a resumed run never writes into another one, export writes only regular files, a
checkpoint is checked completely (every learner, every file, dtypes, counters), conflicting or
out-of-range inputs are one line. Real files and real processes throughout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import TINY, cli_env

from softac import SAC, SoftacError, cli
from softac.errors import EnvError
from softac.export import export_policy
from softac.io.files import read_tensors, write_safetensors
from softac.io.load import load_agent
from softac.io.lock import RunLock
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _train_args(run: Path, *extra: str) -> list[str]:
    return [
        "train", "--env", "Pendulum-v1", "--total-steps", "300", "--learning-starts", "100", "--eval-freq", "300",
        "--hidden-sizes", "32", "32", "--batch-size", "64", "--buffer-size", "4000", "--eval-episodes", "1",
        "--threads", "1", "--device", "cpu", "--no-progress", "--run-dir", str(run), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def batched_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("hostile") / "batch"
    agent = SAC("Pendulum-v1", **TINY, seeds=[0, 1], learning_starts=100, total_steps=200, eval_freq=200,
                checkpoint_freq=200)  # fmt: skip
    agent.learn(run_dir=run, progress=False)
    assert agent.updates > 0
    return run


# -- data loss ------------------------------------------------------------------------------------
def test_overwrite_refuses_a_users_own_config_and_progress(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "mine"
    run.mkdir()
    (run / "config.json").write_text('{"lr": 0.1}')
    (run / "progress.csv").write_text("epoch,loss\n1,0.5\n")
    before = _tree(run)
    code, err = _main(capsys, *_train_args(run, "--overwrite"))
    assert code == 2 and "not written by softac" in err and "config.json" in err, err
    assert _tree(run) == before


def test_overwrite_keeps_foreign_files_in_a_run_and_then_replaces_only_softacs(run_copy: Path, capsys: Any) -> None:
    user = {
        "checkpoints/myproject/model.pt": b"mine", "tb/otherexp/events": b"mine", "seed_42/config.json": b"{}",
    }  # fmt: skip
    for rel, data in user.items():
        (run_copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (run_copy / rel).write_bytes(data)
    (run_copy / "notes.txt").write_text("keep me")
    before = _tree(run_copy)
    code, err = _main(capsys, *_train_args(run_copy, "--overwrite"))
    assert code == 2 and "not written by softac" in err, err
    assert _tree(run_copy) == before  # nothing at all was deleted
    for rel in user:
        shutil.rmtree((run_copy / rel).parent)
    old_ckpts = list_checkpoints(run_copy)
    code, err = _main(capsys, *_train_args(run_copy, "--overwrite"))
    assert code == 0, err
    assert (run_copy / "notes.txt").read_text() == "keep me"  # not one of softac's names: left alone
    assert [p.name for p in list_checkpoints(run_copy)] == ["step_0000000300"] != [p.name for p in old_ckpts]


def test_empty_run_dir_is_refused(capsys: Any, tmp_path: Path) -> None:
    code, err = _main(capsys, *_train_args(tmp_path / "x")[:-2], "--run-dir", "")
    assert code == 2 and "empty" in err, err
    agent = SAC("Pendulum-v1", **TINY, learning_starts=10, total_steps=20)
    for bad in ("", 123):
        with pytest.raises(SoftacError, match="run_dir must be"):
            agent.learn(run_dir=bad, progress=False)  # type: ignore[arg-type]


def test_the_lock_of_a_batched_run_covers_its_seed_directories(batched_run: Path, tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "batch"
    shutil.copytree(batched_run, run)
    (run / ".lock").unlink(missing_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from softac.io.lock import RunLock; "
         "RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = _tree(run / "seed_0")
        with pytest.raises(SoftacError, match=f"in use by another softac process \\(PID {holder.pid}\\)"):
            RunLock(run / "seed_0").acquire()
        for args in (["train", "--resume", str(run / "seed_0"), "--total-steps", "400", "--no-progress"],
                     _train_args(run / "seed_0", "--overwrite")):  # fmt: skip
            code, err = _main(capsys, *args)
            assert code == 2 and "in use" in err and str(run) in err, err
        assert _tree(run / "seed_0") == before
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    RunLock(run / "seed_0").acquire().release()  # the kernel released the holder's lock


def test_resume_into_another_run_of_the_same_algo_and_env_is_refused(
    sac_checkpoint: Path, tmp_path: Path, capsys: Any
) -> None:
    other = tmp_path / "other"
    shutil.copytree(sac_checkpoint, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["config"]["seed"] = 9  # another run: same algorithm, same environment, another seed
    (other / "config.json").write_text(json.dumps(cfg))
    before = _tree(other)
    code, err = _main(capsys, "train", "--resume", str(sac_checkpoint), "--run-dir", str(other),
                      "--total-steps", "600", "--no-progress")  # fmt: skip
    assert code == 2 and "holds a different run" in err, err
    with pytest.raises(SoftacError, match="holds a different run"):
        SAC.load(sac_checkpoint).learn(600, run_dir=other, progress=False)
    # a run killed before its first checkpoint restarts only in its own directory
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(sac_checkpoint / "config.json", fresh / "config.json")
    code, err = _main(capsys, "train", "--resume", str(fresh), "--run-dir", str(other), "--no-progress")
    assert code == 2 and "already holds a run" in err, err
    assert _tree(other) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_export_writes_only_regular_files(sac_checkpoint: Path, tmp_path: Path) -> None:
    agent = SAC.load(sac_checkpoint)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "null.pt"
    link.symlink_to("/dev/null")
    for out in (fifo, link, Path("/dev/null")):
        with pytest.raises(SoftacError, match="not a regular file"):
            export_policy(agent, out, "torchscript", overwrite=True)
    assert link.is_symlink() and fifo.is_fifo()


# -- silent wrong results -------------------------------------------------------------------------
def _rewrite_state(ckpt: Path, edit: Any) -> None:
    state = json.loads((ckpt / "state.json").read_text())
    edit(state)
    (ckpt / "state.json").write_text(json.dumps(state))


def test_every_learner_of_a_batched_run_is_verified(batched_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "batch"
    shutil.copytree(batched_run, run)
    model = list_checkpoints(run / "seed_1")[-1] / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[-4] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(SoftacError, match=r"seed_1.*checksum mismatch"):
        load_agent(run)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s.update(files={}), "does not match its 'data' record"),
        (lambda s: s["files"].pop("buffer.safetensors"), "does not match its 'data' record"),
        (lambda s: s["counters"].update(updates=2**63), "invalid 'counters.updates'"),
        (lambda s: s["counters"].update(episodes=10**6), "inconsistent counters"),
        (lambda s: s.update(version="3"), r"'version' field of the wrong type .*'3', a str"),
    ],
)
def test_state_json_is_checked_completely(run_copy: Path, edit: Any, needle: str) -> None:
    _rewrite_state(list_checkpoints(run_copy)[-1], edit)
    with pytest.raises(SoftacError, match=needle):
        load_agent(run_copy)


def test_a_tensor_of_another_dtype_is_refused_not_cast(run_copy: Path) -> None:
    ckpt = list_checkpoints(run_copy)[-1]
    tensors = {n: t.clone() for n, t in read_tensors(ckpt / "model.safetensors").items()}  # not the mapped file
    name = next(n for n, t in tensors.items() if t.dtype == torch.float32)
    tensors[name] = tensors[name].double()
    digest = write_safetensors(ckpt / "model.safetensors", tensors)
    _rewrite_state(ckpt, lambda s: s["files"].update({"model.safetensors": digest}))
    with pytest.raises(SoftacError, match=f"{name} is stored as torch.float64"):
        load_agent(run_copy)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["model.safetensors", "buffer.safetensors"])
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero"])
def test_a_fifo_as_checkpoint_file_is_not_called_missing(run_copy: Path, name: str, kind: str) -> None:
    path = list_checkpoints(run_copy)[-1] / name
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(SoftacError, match="not a regular file"):
        load_agent(run_copy)


def test_conflicting_and_out_of_range_inputs_are_one_line(run_copy: Path, tmp_path: Path, capsys: Any) -> None:
    cases = [
        (_train_args(tmp_path / "a", "--seeds", "0-1", "--seed", "5"), "--seeds and --seed conflict"),
        (["train", "--resume", str(run_copy), "--overwrite"], "give one of them"),
        (_train_args(tmp_path / "b", "--seed", str(2**64)), "seed must be an integer"),
        (_train_args(tmp_path / "c", "--seeds", "0-99999999999999999999"), "at most 4096 seeds"),
        (_train_args(tmp_path / "d", "--total-steps", "1e400"), "expected an integer"),
    ]
    for argv, needle in cases:
        code, err = _main(capsys, *argv)
        assert code == 2 and needle in err and len(err.splitlines()) == 1, (argv, err)
    assert not any((tmp_path / n).exists() for n in "abcd")
    with pytest.raises(SoftacError, match="conflict"):
        SAC("Pendulum-v1", seeds=[0, 1], seed=5)


def test_api_types_are_checked(sac_checkpoint: Path, tmp_path: Path) -> None:
    for bad in (123, None):
        with pytest.raises(SoftacError, match="path must be a path"):
            SAC.load(bad)  # type: ignore[arg-type]
    agent = SAC.load(sac_checkpoint)
    with pytest.raises(SoftacError, match="path must be a path"):
        agent.save(123)  # type: ignore[arg-type]
    with pytest.raises(SoftacError, match="include_buffer must be true or false"):
        agent.save(tmp_path / "c", include_buffer="no")  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
    obs = np.zeros(3)
    with pytest.raises(SoftacError, match="deterministic must be true or false"):
        agent.predict(obs, deterministic="no")  # type: ignore[arg-type]
    with pytest.raises(SoftacError, match="real numbers"):
        agent.predict(obs + 1j)


def test_one_seed_given_with_seeds_gets_its_seed_directory(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "r"
    code, err = _main(capsys, *_train_args(run, "--seeds", "7", "--checkpoint-freq", "300"))
    assert code == 0, err
    assert json.loads((run / "runs.json").read_text())["seeds"] == [7]
    assert list_checkpoints(run / "seed_7") and not (run / "checkpoints").exists()
    code, err = _main(capsys, "train", "--resume", str(run), "--total-steps", "400", "--no-progress")
    assert code == 0, err
    assert [p.name for p in list_checkpoints(run / "seed_7")][-1] == "step_0000000400"
    assert not (run / "checkpoints").exists()  # the resume went on in seed_7/, not in the top


# -- hangs, crashes, unclear messages ---------------------------------------------------------------
def test_inputs_that_hung_or_crashed_are_one_line(tmp_path: Path, capsys: Any) -> None:
    nested = "x=" + "[" * 5000 + "]" * 5000
    cases = [
        (_train_args(tmp_path / "a", "--env-kwargs", "max_episode_steps=-1"), "max_episode_steps must be a positive"),
        (_train_args(tmp_path / "b", "--threads", "100000"), "threads must be an integer in [0, 1024]"),
        (_train_args(tmp_path / "c", "--env-kwargs", nested), "nested too deeply"),
        (_train_args(tmp_path / "d", "--gamma", "-inf"), "gamma must be a finite number"),
        (["bench", "--env", "Nope-v0"], "unknown environment 'Nope-v0'"),
        (
            [
                "sweep",
                "--algo",
                "sac",
                "--env",
                "Pendulum-v1",
                "--seeds",
                "0",
                "--cpus-per-trial",
                "nan",
                "--out",
                str(tmp_path / "e"),
            ],
            "--cpus-per-trial must be positive",
        ),
    ]
    for argv, needle in cases:
        code, err = _main(capsys, *argv)
        assert code == 2 and needle in err and len(err.splitlines()) == 1, (argv, err)
    assert not any((tmp_path / n).exists() for n in "abcde")


def test_deeply_nested_state_json_is_a_clear_error(run_copy: Path) -> None:
    ckpt = list_checkpoints(run_copy)[-1]
    (ckpt / "state.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(SoftacError, match=r"unreadable state.json.*nested too deeply"):
        load_agent(run_copy)


def test_max_episode_steps_from_state_json_is_refused(run_copy: Path) -> None:
    _rewrite_state(list_checkpoints(run_copy)[-1], lambda s: s["config"].update(env_kwargs={"max_episode_steps": -1}))
    with pytest.raises(SoftacError, match="max_episode_steps must be a positive integer"):
        load_agent(run_copy)


class _BadOutputEnv(gym.Env):  # type: ignore[type-arg]
    """Fine for ``bad_at`` steps, then returns what a buggy environment returns."""

    def __init__(self, what: str, bad_at: int = 150) -> None:
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.what, self.bad_at, self.n = what, bad_at, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action: np.ndarray) -> Any:
        self.n += 1
        obs: Any = np.zeros(3, np.float32)
        reward: Any = 0.0
        if self.n > self.bad_at:
            obs = {"obs": np.zeros(4, np.float32), "str": "abc"}.get(self.what, obs)
            reward = np.zeros(2) if self.what == "reward" else reward
        return obs, reward, False, self.n % 50 == 0, {}


@pytest.mark.parametrize(("what", "needle"), [
    ("obs", "observation has shape (4,)"), ("str", "not numbers"), ("reward", "reward must be one number"),
])  # fmt: skip
def test_an_environment_returning_the_wrong_things_is_an_env_error(what: str, needle: str) -> None:
    agent = SAC(lambda: _BadOutputEnv(what), **TINY, learning_starts=100, total_steps=400, eval_freq=400)
    with pytest.raises(EnvError, match=re.escape(needle)):
        agent.learn(progress=False)
    assert agent.updates > 0  # it got past learning_starts before the environment went wrong


def test_train_return_mean_after_resume_equals_the_uninterrupted_run(tmp_path: Path, capsys: Any) -> None:
    """A checkpoint between two evaluations (step 400; evaluations at 600, 1200): resuming from it
    must log the same training-return mean as the run that went straight through."""
    run = tmp_path / "straight"
    agent = SAC("Pendulum-v1", **TINY, learning_starts=100, total_steps=1200, eval_freq=600, checkpoint_freq=400,
                keep_checkpoints=5)  # fmt: skip
    agent.learn(run_dir=run, progress=False)
    assert agent.updates > 0
    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    for ckpt in list_checkpoints(resumed)[1:]:
        shutil.rmtree(ckpt)
    assert [p.name for p in list_checkpoints(resumed)] == ["step_0000000400"]
    code, err = _main(capsys, "train", "--resume", str(resumed), "--no-progress")
    assert code == 0, err

    def column(d: Path) -> list[str]:
        return [r["train_return_mean"] for r in read_progress(d / "progress.csv")]

    assert len(column(run)) == 2 and column(resumed) == column(run)


def _set_rng(resume: dict[str, Any], rng: Any) -> None:
    resume["collector"]["rng"] = rng


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda r: r.update(collector="x"), "invalid 'resume.collector' in state.json ('x')"),
    (lambda r: r.update(wall_time_s="abc"), "invalid 'resume.wall_time_s' in state.json ('abc')"),
    (lambda r: r.update(recent_returns=["x"]), "invalid 'resume.recent_returns'"),
    (lambda r: r["collector"]["rng"][0]["state"].update(state=2**200), "invalid 'resume.collector.rng'"),
    (lambda r: _set_rng(r, []), "invalid 'resume.collector.rng' in state.json ([])"),
    (lambda r: _set_rng(r, [{"bit_generator": "os.system"}]), "invalid 'resume.collector.rng'"),
    (lambda r: r["collector"].update(at_episode_boundary="yes"), "invalid 'resume.collector.at_episode_boundary'"),
    (lambda r: r.update(pending_evaluation=1), "invalid 'resume.pending_evaluation'"),
])  # fmt: skip
def test_invalid_resume_fields_are_one_line(run_copy: Path, edit: Any, needle: str, capsys: Any) -> None:
    """Refused when the checkpoint is read (before: a traceback when the run resumed)."""
    _rewrite_state(list_checkpoints(run_copy)[-1], lambda s: edit(s["resume"]))
    code, err = _main(capsys, "train", "--resume", str(run_copy), "--total-steps", "600", "--no-progress")
    assert code == 2 and needle in err and "use an earlier checkpoint" in err and len(err.splitlines()) == 1, err


def test_a_malformed_rng_host_tensor_is_one_line(run_copy: Path, capsys: Any) -> None:
    ckpt = list_checkpoints(run_copy)[-1]
    tensors = {n: t.clone() for n, t in read_tensors(ckpt / "model.safetensors").items()}
    tensors["rng/host"] = torch.zeros(3, dtype=torch.uint8)
    digest = write_safetensors(ckpt / "model.safetensors", tensors)
    _rewrite_state(ckpt, lambda s: s["files"].update({"model.safetensors": digest}))
    code, err = _main(capsys, "train", "--resume", str(run_copy), "--total-steps", "600", "--no-progress")
    assert code == 2 and "random-number state is invalid" in err and len(err.splitlines()) == 1, err


def test_overwrite_with_other_seeds_leaves_no_empty_seed_directory(batched_run: Path, tmp_path: Path,
                                                                  capsys: Any) -> None:  # fmt: skip
    """The replaced run's seed_0/ and seed_1/ go with their files: the new run's summary reads every
    seed directory, and an emptied one made it fail (two warning lines, no summary.csv)."""
    run = tmp_path / "batch"
    shutil.copytree(batched_run, run)
    (run / ".lock").unlink(missing_ok=True)
    agent = SAC("Pendulum-v1", **TINY, seeds=[3, 4], learning_starts=100, total_steps=200, eval_freq=200)
    agent.learn(run_dir=run, progress=False, overwrite=True)
    assert "could not write" not in capsys.readouterr().err
    assert sorted(p.name for p in run.glob("seed_*")) == ["seed_3", "seed_4"]
    assert (run / "summary.csv").read_text().startswith("step,n_seeds")
