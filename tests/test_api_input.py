"""Hostile use of the Python API (issue 16, items 1, 9, 10, 13): every mistake is one SoftacError
naming what is wrong, nothing on disk is lost, and SB3's tooling can drive a softac model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import TINY

from softac import SAC, TD3, SoftacError


# -- item 1: save only ever replaces a softac checkpoint -------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_save_refuses_everything_but_a_checkpoint_directory(tmp_path: Path, sac_checkpoint: Path) -> None:
    agent = SAC("Pendulum-v1", hidden_sizes=(16, 16))
    plain = tmp_path / "d"
    plain.mkdir()
    (plain / "notes.txt").write_text("precious")
    afile = tmp_path / "f.txt"
    afile.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(plain, target_is_directory=True)
    run = tmp_path / "run"
    shutil.copytree(sac_checkpoint, run)  # a run directory: config.json, progress.csv, checkpoints/
    before = {p: _tree(p) for p in (plain, run)}
    for target in (plain, afile, link, run):
        with pytest.raises(SoftacError, match="not a softac checkpoint directory") as info:
            agent.save(target)
        assert "\n" not in str(info.value)
    assert {p: _tree(p) for p in (plain, run)} == before
    assert afile.read_text() == "precious" and link.is_symlink()
    # a softac checkpoint directory is replaced, and a new path is created
    agent.save(tmp_path / "ckpt")
    agent.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "buffer.safetensors", "model.safetensors", "state.json",
    ]  # fmt: skip


# -- item 10: config values are checked by type, naming the field ------------------------------
@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"hidden_sizes": 16}, "hidden_sizes must be a tuple of positive integers, got 16"),
        ({"hidden_sizes": (16, 16.5)}, "hidden_sizes"),
        ({"gamma": "0.9"}, "gamma must be a number, got '0.9'"),
        ({"fast_update": "no"}, "fast_update must be true or false, got 'no'"),
        ({"batch_size": True}, "batch_size must be an integer, got True"),
        ({"batch_size": 64.0}, "batch_size must be an integer"),
        ({"seed": None}, "seed must be an integer"),
        ({"env": None, "env_id": 3}, "env_id must be a string"),
        ({"env": 3}, "env must be an environment id, a gymnasium.Env"),
        ({"no_such_field": 1}, "unknown SACConfig field(s): no_such_field"),
    ],
)
def test_config_types_are_checked(kwargs: dict[str, Any], needle: str) -> None:
    kwargs = dict(kwargs)
    with pytest.raises(SoftacError) as info:
        SAC(kwargs.pop("env", "Pendulum-v1"), **kwargs)
    assert needle in str(info.value)


@pytest.mark.parametrize("steps", [60.7, "100", True])
def test_learn_total_steps_is_checked(steps: Any) -> None:
    agent = TD3("Pendulum-v1", **TINY)
    with pytest.raises(SoftacError, match="total_steps must be an integer"):
        agent.learn(steps, progress=False)
    with pytest.raises(SoftacError, match="total_steps must be an integer"):
        agent.learn(total_steps=steps, progress=False)
    assert agent.env_steps == 0


@pytest.mark.parametrize(("kwargs", "needle"), [({"progress": "no"}, "progress"), ({"overwrite": 1}, "overwrite")])
def test_learn_flags_are_checked(kwargs: dict[str, Any], needle: str) -> None:
    agent = TD3("Pendulum-v1", **TINY, total_steps=10)
    with pytest.raises(SoftacError, match=f"{needle} must be true or false"):
        agent.learn(**kwargs)
    assert agent.env_steps == 0


# -- item 13: predict takes SB3's signature; bad observations are one clear error ---------------
def test_predict_takes_sb3_signature() -> None:
    agent = SAC("Pendulum-v1", **TINY)
    obs = np.zeros((2, 3), dtype=np.float32)
    action, state = agent.predict(obs, state=None, episode_start=np.ones(2, dtype=bool), deterministic=True)
    assert action.shape == (2, 1) and state is None
    positional, _ = agent.predict(obs, None, None, True)
    np.testing.assert_array_equal(action, positional)
    np.testing.assert_array_equal(agent.predict(observation=obs)[0], action)


def test_sb3_evaluate_policy_drives_a_softac_model() -> None:
    evaluation = pytest.importorskip("stable_baselines3.common.evaluation")
    agent = SAC("Pendulum-v1", **TINY)
    env = gym.make("Pendulum-v1", max_episode_steps=20)
    mean, std = evaluation.evaluate_policy(agent, env, n_eval_episodes=2, deterministic=True, warn=False)
    assert np.isfinite(mean) and mean < 0 and np.isfinite(std)


@pytest.mark.parametrize(
    ("obs", "needle"),
    [
        ("abc", "observation must be an array of numbers, got str"),
        ({"x": 1.0}, "observation must be an array of numbers, got dict"),
        ([[0.0, 0.0, 0.0], [0.0]], "observation must be an array of numbers"),
        (np.zeros(5), "expects"),
        (np.array([0.0, np.nan, 0.0]), "non-finite"),
    ],
)
def test_predict_refuses_bad_observations(obs: Any, needle: str) -> None:
    agent = SAC("Pendulum-v1", **TINY)
    with pytest.raises(SoftacError) as info:
        agent.predict(obs)
    assert needle in str(info.value) and "\n" not in str(info.value)


# -- item 9: every field of state.json / config.json required and validated --------------------
def _only_checkpoint(run: Path) -> Path:
    (ckpt,) = sorted((run / "checkpoints").iterdir())
    return ckpt


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s["config"].pop("hidden_sizes"), "missing SACConfig field(s): hidden_sizes"),
        (lambda s: s["counters"].update(env_steps=-5), "'counters.env_steps'"),
        (lambda s: s["config"].update(batch_size=True), "batch_size must be an integer"),
    ],
)
def test_state_json_fields_are_required(sac_checkpoint: Path, tmp_path: Path, edit: Any, needle: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(sac_checkpoint, run)
    state_path = _only_checkpoint(run) / "state.json"
    state = json.loads(state_path.read_text())
    edit(state)
    state_path.write_text(json.dumps(state))
    with pytest.raises(SoftacError) as info:
        SAC.load(run)
    assert needle in str(info.value) and "\n" not in str(info.value)


