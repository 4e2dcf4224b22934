"""Checkpoints say what is wrong: values outside their natural range, truncated files, missing files,
a damaged config.json, a user's files inside checkpoints, progress.csv after a resume, signals
during `softac eval`, and integer-like counts from NumPy."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY
from safetensors.torch import load_file, save_file

from softac import DQN, PPO, SAC, CrossQ, SoftacError, cli
from softac.data.normaliser import ObservationNormaliser
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress


def _ckpt(run: Path) -> Path:
    return list_checkpoints(run)[-1] if not (run / "state.json").is_file() else run


def _rehash(ckpt: Path, name: str) -> None:
    """Record the file's new SHA-256 in state.json: the edit passes the checksum, as a converted or
    hand-edited checkpoint would."""
    state = json.loads((ckpt / "state.json").read_text())
    state["files"][name] = hashlib.sha256((ckpt / name).read_bytes()).hexdigest()
    (ckpt / "state.json").write_text(json.dumps(state))


def _edit(ckpt: Path, tensor: str, value: float, index: int = 0) -> None:
    tensors = load_file(ckpt / "model.safetensors")
    t = tensors[tensor].clone()
    t.reshape(-1)[index] = value
    tensors[tensor] = t
    save_file(tensors, ckpt / "model.safetensors")
    _rehash(ckpt, "model.safetensors")


def _saved(tmp_path: Path, cls: Any, **kw: Any) -> Path:
    """A checkpoint of a fresh agent (the optimizers' state exists before the first update)."""
    if cls is PPO:
        settings = {k: v for k, v in TINY.items() if k not in ("batch_size", "buffer_size")}
        settings |= {"n_steps": 64, "minibatch_size": 32}
    else:
        settings = {**TINY, "buffer_size": 1000}
    agent = cls("Pendulum-v1", **settings, **kw)
    return Path(agent.save(tmp_path / "ckpt"))


# -- values outside their natural range --------------------------------------------------------
DOMAIN_CASES = [
    (SAC, {"normalize_obs": True}, "extra/obs_norm/var", -1.0, 1, "running variance"),
    (SAC, {"normalize_obs": True}, "extra/obs_norm/count", -5.0, 0, "running count"),
    (SAC, {}, "optim/actor/0/step", -3.0, 0, "optimizer step counter"),
    (SAC, {}, "optim/critic/2/step", 2.5, 0, "whole number"),
    (SAC, {}, "optim/critic/0/exp_avg_sq", -1e-3, 7, "second moment"),
    (SAC, {}, "extra/log_alpha", 500.0, 0, "log α"),
    (PPO, {}, "net/actor_critic/log_std", 200.0, 0, "log standard deviation"),
    (PPO, {}, "net/actor_critic/log_std", -1e4, 0, "log standard deviation"),
    (PPO, {"normalize_reward": True}, "extra/reward_norm/var", -2.0, 0, "running variance"),
    (CrossQ, {"critic_hidden_sizes": (32, 32)}, "net/critic/net.ra_var_1", -0.5, 3, "running variance"),
    (CrossQ, {"critic_hidden_sizes": (32, 32)}, "net/actor/trunk.renorm_steps", -1.0, 0, "step count"),
]


@pytest.mark.parametrize(("cls", "kw", "tensor", "value", "index", "needle"), DOMAIN_CASES)
def test_a_value_outside_its_domain_names_the_file_and_tensor(
    tmp_path: Path, cls: Any, kw: dict[str, Any], tensor: str, value: float, index: int, needle: str
) -> None:
    ckpt = _saved(tmp_path, cls, **kw)
    cls.load(ckpt)  # intact: loads
    _edit(ckpt, tensor, value, index)
    with pytest.raises(SoftacError) as info:
        cls.load(ckpt)
    msg = str(info.value)
    assert str(ckpt / "model.safetensors") in msg and tensor in msg and needle in msg and "\n" not in msg
    assert "learning rate" not in msg and "environment" not in msg


ROW_CASES = [
    (DQN, "CartPole-v1", {}, 4, 7.0, "action [7.0], which must be a whole number in [0, 2)"),  # was an IndexError
    (DQN, "CartPole-v1", {}, 4, 0.5, "whole number"),
    (DQN, "CartPole-v1", {}, 6, 0.5, "termination flag d 0.5, which must be 0 or 1"),
    (SAC, "Pendulum-v1", {}, 3, 5.0, "action [5.0], which must be in [-1, 1]"),
    (SAC, "Pendulum-v1", {}, 5, -1.0, "termination flag d"),
    (SAC, "Pendulum-v1", {"n_step": 3}, -1, 1.5, "discount γ^m 1.5"),
]


@pytest.mark.parametrize(("cls", "env", "kw", "column", "value", "needle"), ROW_CASES)
def test_a_stored_row_outside_its_range_names_the_buffer_file(
    tmp_path: Path, cls: Any, env: str, kw: dict[str, Any], column: int, value: float, needle: str
) -> None:
    agent = cls(env, **{**TINY, "buffer_size": 1000}, learning_starts=50, **kw)
    agent.learn(100, progress=False)
    ckpt = Path(agent.save(tmp_path / "ckpt"))
    tensors = load_file(ckpt / "buffer.safetensors")
    tensors["storage"][7, column] = value
    save_file(tensors, ckpt / "buffer.safetensors")
    _rehash(ckpt, "buffer.safetensors")
    with pytest.raises(SoftacError) as info:
        cls.load(ckpt)
    msg = str(info.value)
    assert str(ckpt / "buffer.safetensors") in msg and "stored row 7" in msg and needle in msg, msg


def test_a_negative_variance_on_resume_is_one_line_not_a_divergence(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The named case, through the CLI: before, the run "diverged" and blamed the learning rate."""
    _edit(_ckpt(run_copy), "optim/actor/1/exp_avg_sq", -1.0)
    code = cli.main(["train", "--resume", str(run_copy), "--total-steps", "600", "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines[-1].startswith("softac: error: checkpoint file") and "exp_avg_sq" in lines[-1]
    assert "diverged" not in lines[-1]


def test_the_normaliser_refuses_statistics_outside_their_range() -> None:
    norm = ObservationNormaliser((1,), (3,))
    good = norm.state_tensors()
    for key, value in (("var", -1.0), ("count", -1.0), ("var", float("nan"))):
        bad = {**good, key: good[key].clone().fill_(value)}
        with pytest.raises(ValueError, match=key):
            norm.load_state(bad)
    norm.load_state(good)


# -- truncated and missing files -----------------------------------------------------------------
@pytest.mark.parametrize("file", ["model.safetensors", "buffer.safetensors"])
@pytest.mark.parametrize("keep", [lambda n: n - 40, lambda n: n // 2, lambda n: 60, lambda n: 5, lambda n: 0])
def test_a_truncated_file_is_called_truncated(
    run_copy: Path, file: str, keep: Callable[[int], int], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ckpt(run_copy) / file
    data = path.read_bytes()
    path.write_bytes(data[: keep(len(data))])
    for target in (run_copy, _ckpt(run_copy)):
        with pytest.raises(SoftacError) as info:
            SAC.load(target)
        assert "truncated" in str(info.value) and "pickle" not in str(info.value) and str(path) in str(info.value)
    assert cli.main(["eval", str(run_copy)]) == 2
    assert "truncated" in capsys.readouterr().err


def test_a_pickle_is_still_called_a_pickle(run_copy: Path) -> None:
    path = _ckpt(run_copy) / "model.safetensors"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(SoftacError, match=r"pickle/torch\.save"):
        SAC.load(run_copy)


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("batched") / "run"
    agent = SAC("Pendulum-v1", **TINY, seeds=[0, 1], learning_starts=100, total_steps=200, eval_freq=200,
                checkpoint_freq=200)  # fmt: skip
    agent.learn(run_dir=run, progress=False)
    return run


def test_a_missing_runs_json_is_named(batched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(batched, run)
    (run / "runs.json").unlink()
    for argv in (["eval", str(run)], ["train", "--resume", str(run), "--total-steps", "400", "--no-progress"]):
        assert cli.main(argv) == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"{run / 'runs.json'} is missing" in line and "seed_0" in line and "not a softac run" not in line
    assert SAC.load(run / "seed_1").seeds == (1,)  # one seed's directory still loads on its own


def test_a_missing_seed_directory_and_state_json_are_named(batched: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(batched, run)
    shutil.rmtree(run / "seed_1")
    with pytest.raises(SoftacError, match=r"lists seed 1, but .*seed_1 is missing"):
        SAC.load(run)
    ckpt = list_checkpoints(run / "seed_0")[-1]
    (ckpt / "state.json").unlink()
    with pytest.raises(SoftacError, match=r"has no state\.json"):
        SAC.load(ckpt)
    with pytest.raises(SoftacError, match=r"step_0000000200 has no state\.json"):
        SAC.load(run / "seed_0")


# -- config.json on --resume: the checkpoint is the truth in the run's own directory --------------
@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda p, good: p.write_text(json.dumps({**good, "algo": "td3"})), "names another run (td3"),
        (lambda p, good: p.write_text(json.dumps({**good, "config": {**good["config"], "env_id": "CartPole-v1"}})),
         "names another run (sac on CartPole-v1"),
        (lambda p, good: p.write_text(json.dumps({**good, "config": {**good["config"], "seed": 99}})), "seed 99"),
        (lambda p, good: p.unlink(), "is missing"),
        (lambda p, good: p.write_text("{"), "is not valid JSON"),
    ],
)  # fmt: skip
def test_config_json_damage_in_the_runs_own_directory_is_rewritten(
    run_copy: Path, damage: Any, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = run_copy / "config.json"
    good = json.loads(path.read_text())
    damage(path, good)
    agent = SAC.load(run_copy)
    agent.learn(total_steps=agent.env_steps + 1, run_dir=run_copy, progress=False)
    err = capsys.readouterr().err
    assert any(problem in line and "rewriting it from the checkpoint" in line for line in err.splitlines()), err
    assert json.loads(path.read_text())["config"] == {**good["config"], "total_steps": agent.env_steps}


def test_config_json_that_is_a_directory_is_refused_and_kept(run_copy: Path) -> None:
    path = run_copy / "config.json"
    path.unlink()
    path.mkdir()
    (path / "mine.txt").write_text("user data")
    agent = SAC.load(run_copy)
    with pytest.raises(SoftacError, match="not a regular file"):
        agent.learn(total_steps=agent.env_steps + 1, run_dir=run_copy, progress=False)
    assert (path / "mine.txt").read_text() == "user data"


# -- never delete what softac did not write --------------------------------------------------------
def test_save_over_a_checkpoint_holding_a_users_directory_refuses(tmp_path: Path) -> None:
    agent = SAC("Pendulum-v1", **{**TINY, "buffer_size": 1000})
    ckpt = Path(agent.save(tmp_path / "ckpt"))
    agent.save(ckpt)  # softac's own checkpoint: replaced
    (ckpt / "notes").mkdir()
    (ckpt / "notes" / "a.txt").write_text("mine")
    with pytest.raises(SoftacError, match="also holds notes"):
        agent.save(ckpt)
    assert (ckpt / "notes" / "a.txt").read_text() == "mine"
    assert SAC.load(ckpt).env_steps == 0  # the checkpoint itself is intact


def test_pruning_keeps_a_users_file_inside_an_old_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"

    def drop_a_file(info: Any) -> bool:  # the user's file, put into the first checkpoint as it appears
        if info.num_timesteps == 100:
            (info.checkpoints[0] / "plot.png").write_bytes(b"mine")
        return True

    class Drop:
        on_checkpoint = staticmethod(drop_a_file)

    agent = SAC("Pendulum-v1", **TINY, learning_starts=50, total_steps=300, checkpoint_freq=100, keep_checkpoints=1,
                eval_freq=300)  # fmt: skip
    agent.learn(run_dir=run, progress=False, callback=Drop())
    assert [p.name for p in list_checkpoints(run)] == ["step_0000000300"]
    kept = run / "checkpoints" / "step_0000000100"
    assert [p.name for p in kept.iterdir()] == ["plot.png"] and (kept / "plot.png").read_bytes() == b"mine"


# -- progress.csv after a resume equals the uninterrupted run's ------------------------------------
@pytest.mark.parametrize("seeds", [None, [0, 1]])
def test_progress_after_a_resume_has_every_column(tmp_path: Path, seeds: list[int] | None) -> None:
    # log_freq > eval_freq: the evaluation rows read the metrics logged before them, which a
    # resumed run had lost (its first row's loss, α, entropy and Q columns were empty)
    kw = {**TINY, "learning_starts": 200, "eval_freq": 200, "log_freq": 300, "checkpoint_freq": 400}
    kw |= {"seeds": seeds} if seeds else {"seed": 1}
    SAC("Pendulum-v1", **kw, total_steps=800).learn(run_dir=tmp_path / "a", progress=False)
    SAC("Pendulum-v1", **kw, total_steps=400).learn(run_dir=tmp_path / "b", progress=False)
    SAC.load(tmp_path / "b").learn(total_steps=800, run_dir=tmp_path / "b", progress=False)
    for sub in ["."] if not seeds else [f"seed_{s}" for s in seeds]:
        a, b = (read_progress(tmp_path / r / sub / "progress.csv") for r in ("a", "b"))
        drop = ("wall_time_s", "steps_per_s")
        assert [{k: v for k, v in r.items() if k not in drop} for r in b] == [
            {k: v for k, v in r.items() if k not in drop} for r in a
        ]
        assert b[2]["loss_critic"] != "" and b[2]["alpha"] != ""  # step 600, the first row after the resume


# -- softac eval and signals ------------------------------------------------------------------------
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_eval_is_one_line(
    sac_checkpoint: Path, sig: signal.Signals, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    before = signal.getsignal(sig)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), sig))  # the evaluation below lasts hours
    timer.start()
    try:
        assert cli.main(["eval", str(sac_checkpoint), "--episodes", "100000"]) == code
    finally:
        timer.cancel()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"eval interrupted by {sig.name}" in lines[0], lines
    assert signal.getsignal(sig) == before  # the handlers are put back


# -- integer-like numbers ---------------------------------------------------------------------------
def test_numpy_integers_are_accepted_for_counts(tmp_path: Path) -> None:
    settings = {**TINY, "hidden_sizes": (np.int64(32), np.int32(32)), "batch_size": np.int64(64)}
    agent = SAC("Pendulum-v1", **settings, seeds=np.arange(2), learning_starts=np.int64(100), gamma=np.float32(0.99))
    agent.learn(np.int64(150), run_dir=tmp_path / "run", progress=False)
    assert (agent.env_steps, agent.seeds, agent.config.hidden_sizes) == (150, (0, 1), (32, 32))
    assert type(agent.config.total_steps) is int and type(agent.seeds[0]) is int
    assert json.loads((tmp_path / "run" / "runs.json").read_text())["config"]["batch_size"] == 64
    kwargs = SAC("Pendulum-v1", env_kwargs={"max_episode_steps": np.int64(50)}, buffer_size=1000).config.env_kwargs
    assert kwargs == (("max_episode_steps", 50),) and type(kwargs[0][1]) is int
    for bad in (True, 1.5, "150", np.float64(150.0)):
        with pytest.raises(SoftacError, match="total_steps must be an integer"):
            agent.learn(bad, progress=False)  # type: ignore[arg-type]
