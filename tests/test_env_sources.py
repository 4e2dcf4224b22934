"""Environments: ids with keyword arguments, instances, factories and vector envs (issue 16, item 12),
and loading that never imports a module a file names (item 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import TINY, TINY_FLAGS, assert_one_line_error, cli_env, run_cli

from softac import SAC, TD3, SoftacError, cli

ZEN = "Beautiful is better than ugly"


def _pendulum(**kwargs: Any) -> gym.Env:
    return gym.make("Pendulum-v1", **kwargs)


# -- item 12: an instance is used as given, wrappers and keyword arguments included ---------------
def test_instance_is_trained_on_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = gym.wrappers.ClipReward(_pendulum(max_episode_steps=50, g=2.0), -5.0, 5.0)
    agent = SAC(env, **TINY, learning_starts=100, total_steps=200, eval_freq=200)
    assert agent.config.env_id == "Pendulum-v1" and agent.env_source.kind == "instance"
    agent.learn(run_dir=tmp_path / "run", progress=False)
    assert agent.episodes == [4]  # 200 steps of the instance's 50-step episodes, not Pendulum's 200
    assert env.unwrapped.g == 2.0  # type: ignore[attr-defined]
    # the evaluation environment is rebuilt from the instance's spec: keyword arguments and the
    # wrappers that record their arguments come along
    evaluation = agent.env_source.make()
    assert evaluation.unwrapped.g == 2.0 and evaluation.spec is not None  # type: ignore[attr-defined]
    assert evaluation.spec.max_episode_steps == 50
    assert any(w.name == "ClipReward" for w in evaluation.spec.additional_wrappers)
    # said once when the run started; recorded in the run's files; refused by the CLI
    err = capsys.readouterr().err
    assert err.count("cannot record") == 1 and "env=<a factory of it>" in err
    record = json.loads((tmp_path / "run" / "config.json").read_text())["env"]
    assert record == {"kind": "instance", "id": "Pendulum-v1", "resumable": False}
    for argv in (["eval", str(tmp_path / "run")], ["train", "--resume", str(tmp_path / "run"), "--total-steps", "300"]):
        code = cli.main(argv)
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "trained on an environment instance" in lines[0], lines
    with pytest.raises(SoftacError, match=r"load\(PATH, env="):
        SAC.load(tmp_path / "run")
    # ... and resumed in Python with the environment given again
    resumed = SAC.load(tmp_path / "run", env=lambda: _pendulum(max_episode_steps=50, g=2.0))
    resumed.learn(total_steps=300, run_dir=tmp_path / "run", progress=False)
    assert resumed.env_steps == 300 and resumed.episodes == [6]


def test_factory_serves_several_environments_and_seeds() -> None:
    made: list[gym.Env] = []

    def factory() -> gym.Env:
        made.append(_pendulum(max_episode_steps=20, g=3.0))
        return made[-1]

    agent = TD3(factory, **TINY, n_envs=2, seeds=[0, 1], learning_starts=40, total_steps=80, eval_freq=80)
    agent.learn(progress=False)
    assert agent.env_steps == 80 and agent.updates > 0
    assert agent.episodes == [4, 4]  # 80 steps over 2 envs in 20-step episodes, per seed
    assert all(e.unwrapped.g == 3.0 for e in made)  # type: ignore[attr-defined]


def test_vector_env_is_used_and_must_not_reset_itself() -> None:
    fns = [lambda: _pendulum(max_episode_steps=25) for _ in range(2)]
    with pytest.raises(SoftacError, match=r"autoreset_mode=gymnasium\.vector\.AutoresetMode\.DISABLED"):
        SAC(gym.vector.SyncVectorEnv(fns), **TINY)
    envs = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.DISABLED)
    agent = SAC(envs, **TINY, learning_starts=50, total_steps=100, eval_freq=100)
    assert agent.config.n_envs == 2
    agent.learn(progress=False)
    assert agent.episodes == [4]
    assert not envs.closed  # the user's vector env is theirs to close
    envs.reset(seed=0)
    envs.step(np.zeros((2, 1), dtype=np.float32))


def test_eval_env_instance_evaluates_and_stays_open() -> None:
    seen: list[float] = []

    class Recording(gym.Wrapper):  # type: ignore[type-arg]
        def reset(self, **kwargs: Any) -> Any:
            seen.append(self.env.unwrapped.g)  # type: ignore[attr-defined]
            return self.env.reset(**kwargs)

    evaluation = Recording(_pendulum(max_episode_steps=10, g=7.0))
    agent = SAC("Pendulum-v1", **{**TINY, "eval_episodes": 2}, eval_env=evaluation, learning_starts=20,
                total_steps=40, eval_freq=20)  # fmt: skip
    agent.learn(progress=False)
    assert seen == [7.0] * 4  # two evaluations of two episodes, all on the given instance
    evaluation.reset(seed=0)  # still the user's, not closed
    with pytest.raises(SoftacError, match="an eval_env instance is one environment"):
        SAC("Pendulum-v1", **TINY, seeds=[0, 1], eval_env=evaluation, total_steps=10).learn(progress=False)


def test_bad_environment_arguments_are_one_line() -> None:
    with pytest.raises(SoftacError, match=r"returned int, not a gymnasium\.Env"):
        SAC(lambda: 3, **TINY)
    with pytest.raises(SoftacError, match="an environment instance is one environment"):
        SAC(_pendulum(), **TINY, n_envs=2, total_steps=10).learn(progress=False)
    with pytest.raises(SoftacError, match="env_kwargs apply to an environment id"):
        SAC(_pendulum(), **TINY, env_kwargs={"g": 2.0})


def test_env_kwargs_on_the_command_line_are_recorded_and_reused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--env", "Pendulum-v1", "--env-kwargs", "g=2.5", "max_episode_steps=40", "--total-steps", "80",
            "--learning-starts", "40", "--eval-freq", "80", "--run-dir", str(run), *TINY_FLAGS]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["env_kwargs"] == {"g": 2.5, "max_episode_steps": 40}
    agent = SAC.load(run)
    assert agent.episodes == [2]  # 40-step episodes
    assert agent.env_source.make().unwrapped.g == 2.5  # type: ignore[attr-defined]
    assert cli.main(["train", "--resume", str(run), "--total-steps", "120", "--no-progress"]) == 0
    assert SAC.load(run).episodes == [3]
    capsys.readouterr()
    for bad, needle in ((["nope=1"], "could not be created with {'nope': 1}: TypeError"),
                        (["g"], "expected KEY=VALUE, got 'g'")):  # fmt: skip
        code = cli.main(["train", "--env-kwargs", *bad, "--run-dir", str(tmp_path / "bad"), *TINY_FLAGS])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not (tmp_path / "bad").exists()


# -- item 2: loading never imports a module a file names -----------------------------------------
def _edit_state(run: Path, edit: Any) -> None:
    for state_path in run.glob("checkpoints/*/state.json"):
        state = json.loads(state_path.read_text())
        edit(state)
        state_path.write_text(json.dumps(state))


def test_module_named_in_state_json_is_never_imported(run_copy: Path) -> None:
    def evil(state: dict[str, Any]) -> None:
        state["env_id"] = state["config"]["env_id"] = "this:Pendulum-v1"

    _edit_state(run_copy, evil)
    for args in (["eval", str(run_copy), "--episodes", "1"], ["train", "--resume", str(run_copy), "--total-steps",
                                                              "500", "--no-progress"]):  # fmt: skip
        proc = run_cli(*args)
        assert ZEN not in proc.stdout + proc.stderr  # `import this` prints the Zen of Python
        assert_one_line_error(proc, "would import the Python module 'this'", "--allow-import this")
    with pytest.raises(SoftacError, match="allow_import=\\['this'\\]"):
        SAC.load(run_copy)
    # named by the user, it is imported (and the Zen is printed: the proof that it ran)
    proc = run_cli("eval", str(run_copy), "--episodes", "1", "--allow-import", "this")
    assert proc.returncode == 0, proc.stderr
    assert ZEN in proc.stdout
    code = subprocess.run(
        [sys.executable, "-c", f"from softac import SAC; SAC.load({str(run_copy)!r}, allow_import=['this'])"],
        capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
    )  # fmt: skip
    assert code.returncode == 0 and ZEN in code.stdout, code.stderr


def test_module_named_in_config_json_of_a_run_without_checkpoint_is_never_imported(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    config = SAC("Pendulum-v1", **TINY).config.replace(env_id="this:Pendulum-v1").to_dict()
    (run / "config.json").write_text(json.dumps({"algo": "sac", "config": config, "env": {
        "kind": "id", "id": "this:Pendulum-v1", "resumable": True}}))  # fmt: skip
    proc = run_cli("train", "--resume", str(run), "--no-progress")
    assert ZEN not in proc.stdout + proc.stderr
    assert_one_line_error(proc, "--allow-import this")


def test_random_generator_kind_comes_from_a_whitelist(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def evil(state: dict[str, Any]) -> None:
        for rng in state["resume"]["collector"]["rng"]:
            rng["bit_generator"] = "default_rng"

    _edit_state(run_copy, evil)
    code = cli.main(["train", "--resume", str(run_copy), "--total-steps", "500", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "names the generator 'default_rng'" in err[-1] and "PCG64" in err[-1], err
