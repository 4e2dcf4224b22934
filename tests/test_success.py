"""Success rates (``softac.success``): an environment that reports ``info["is_success"]`` (Fetch) or
``info["success"]`` (the mazes) gets ``eval_success_rate`` and ``train_success_rate`` in
progress.csv, in ``softac eval``, ``softac compare`` and ``softac plot``; one that does not gets
nothing new. Success of an episode is the flag at its last step (as SB3's Monitor)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import TINY, capture_figure, fake_run

from softac import PPO, SAC, cli
from softac.analysis.plot import plot_runs
from softac.io.rundir import list_checkpoints
from softac.logging import csv_fields, read_progress

EPISODE = 5  # every episode of the test environment lasts 5 steps (its TimeLimit truncates)


class GoalEnv(gym.Env):
    """A goal-like environment with a known success pattern: each reset draws the episode's outcome
    ``flag`` ∈ {0, 1} from the env's own generator (so a seed fixes it and exact resume keeps it);
    the step that ends the episode (step 5, truncated by the TimeLimit) reports ``flag`` and every
    step before it reports ``1 − flag``, so only the last-step definition gives ``flag``.

    ``key``: "is_success" (Fetch) or "success" (mazes); ``bad``: after ``bad_from`` resets, the last
    step reports this value instead (a string, a list, NaN, None); with ``bad_in_eval``, in the
    evaluation episodes only."""

    def __init__(self, key: str = "is_success", bad: Any = None, bad_from: int | None = None,
                 bad_in_eval: bool = False) -> None:  # fmt: skip
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.key, self.bad, self.bad_from, self.bad_in_eval = key, bad, bad_from, bad_in_eval
        self.t, self.flag, self.resets, self.evaluating = 0, 0, 0, False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.evaluating = seed is not None and seed >= 100_000  # softac.evaluate.EVAL_SEED_OFFSET
        self.t, self.resets = 0, self.resets + 1
        self.flag = int(self.np_random.integers(2))
        return np.array([0.0, self.flag], dtype=np.float32), {}

    def step(self, action: np.ndarray) -> Any:
        self.t += 1
        last = self.t == EPISODE
        value: Any = float(self.flag if last else 1 - self.flag)
        if last and ((self.bad_from is not None and self.resets > self.bad_from) or
                     (self.bad_in_eval and self.evaluating)):  # fmt: skip
            value = self.bad
        obs = np.array([self.t / EPISODE, self.flag], dtype=np.float32)
        return obs, -float(action[0] ** 2), False, False, {self.key: value}


def _register(env_id: str, **kwargs: Any) -> str:
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=GoalEnv, max_episode_steps=EPISODE, kwargs=kwargs,
                     disable_env_checker=True)  # fmt: skip
    return env_id


GOAL = _register("SoftacTest/Goal-v0")
MAZE = _register("SoftacTest/GoalMaze-v0", key="success")

SETTINGS: dict[str, Any] = {**TINY, "learning_starts": 100, "eval_freq": 100, "eval_episodes": 4, "log_freq": 100}


def _flags(seed: int, resets: int) -> list[int]:
    """The outcomes an env reset first with ``seed`` and then without one draws (the collector's
    pattern for training; each evaluation episode is reset with its own seed)."""
    env = GoalEnv()
    flags = [env.reset(seed=seed)[0][1]]
    flags += [env.reset()[0][1] for _ in range(resets - 1)]
    return [int(f) for f in flags]


def _expected(seed: int, n_envs: int, total: int, eval_every: int, eval_episodes: int) -> list[dict[str, float]]:
    """Each evaluation row's two rates, computed here from the environment alone."""
    per_env = [_flags(seed + i, total // EPISODE) for i in range(n_envs)]
    rows = []
    for step in range(eval_every, total + 1, eval_every):
        # the training episodes that ended in (step − eval_every, step]: every env ends one each 5 env-steps
        first, last = (step - eval_every) // n_envs // EPISODE, step // n_envs // EPISODE
        train = [f for flags in per_env for f in flags[first:last]]
        evals = [_flags(seed + 100_000 + e, 1)[0] for e in range(eval_episodes)]
        rows.append({"eval_success_rate": float(np.mean(evals)), "train_success_rate": float(np.mean(train))})
    return rows


def _rates(run_dir: Path) -> list[dict[str, float]]:
    return [{k: float(r[k]) for k in ("eval_success_rate", "train_success_rate")}
            for r in read_progress(run_dir / "progress.csv")]  # fmt: skip


@pytest.mark.parametrize(("env_id", "n_envs"), [(GOAL, 1), (MAZE, 2)])
def test_success_columns_hold_the_last_step_flags(env_id: str, n_envs: int, tmp_path: Path) -> None:
    """Fetch's key with one env (softac's single-env path, a plain info dict) and the mazes' key with
    two (Gymnasium's SyncVectorEnv, infos stacked with ``_key`` masks): the same values."""
    run_dir = tmp_path / "run"
    agent = SAC(env_id, **SETTINGS, n_envs=n_envs, total_steps=300, seed=7)
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates > 0
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    base = csv_fields("off-policy")
    assert header == [*base[:6], "eval_success_rate", *base[6:7], "train_success_rate", *base[7:]]
    expected = _expected(7, n_envs, 300, 100, 4)
    assert _rates(run_dir) == expected
    # the pattern is not degenerate: both outcomes occur, so a wrong definition would show
    assert 0 < np.mean([r["train_success_rate"] for r in expected]) < 1


def test_batched_seeds_each_log_their_own_success(tmp_path: Path) -> None:
    """Two seeds stepped in one vector env (learner-major): each seed's directory holds its own rates."""
    run_dir = tmp_path / "run"
    agent = SAC(GOAL, **SETTINGS, total_steps=200, seeds=[3, 8])
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates > 0
    for seed in (3, 8):
        assert _rates(run_dir / f"seed_{seed}") == _expected(seed, 1, 200, 100, 4), seed


def test_no_success_no_column(tmp_path: Path) -> None:
    """Pendulum reports no success: progress.csv's columns are exactly the family's, as before."""
    run_dir = tmp_path / "run"
    SAC("Pendulum-v1", **{**SETTINGS, "eval_episodes": 1}, total_steps=200).learn(run_dir=run_dir, progress=False)
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert header == csv_fields("off-policy")
    assert "success" not in (run_dir / "progress.csv").read_text()


def test_on_policy_runs_log_success_too(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    settings = {"hidden_sizes": (16, 16), "n_steps": 50, "minibatch_size": 25, "n_epochs": 2, "eval_freq": 100,
                "eval_episodes": 4, "threads": 1, "device": TINY["device"]}  # fmt: skip
    agent = PPO(GOAL, **settings, total_steps=200, seed=3)
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates > 0
    assert _rates(run_dir) == _expected(3, 1, 200, 100, 4)


def test_cli_eval_train_and_resume_keep_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run interrupted at a checkpoint taken between two evaluations (its training flags since the
    last row are part of the checkpoint) and resumed writes the progress.csv of a run that never
    stopped, success columns included; ``softac train`` and ``softac eval`` print the rate."""
    flags = ["--algo", "sac", "--env", GOAL, "--learning-starts", "100", "--eval-freq", "100", "--eval-episodes", "4",
             "--checkpoint-freq", "150", "--keep-checkpoints", "5", "--log-freq", "50", "--seed", "7",
             "--hidden-sizes", "32", "32", "--batch-size", "64", "--buffer-size", "4000", "--threads", "1",
             "--no-progress"]  # fmt: skip
    straight = tmp_path / "straight"
    assert cli.main(["train", *flags, "--total-steps", "300", "--run-dir", str(straight)]) == 0
    rates = _expected(7, 1, 300, 100, 4)
    assert "step 300: eval return" in capsys.readouterr().out
    assert _rates(straight) == rates
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    for ckpt in list_checkpoints(resumed)[1:]:  # as if killed just before the step-300 checkpoint
        shutil.rmtree(ckpt)
    assert [p.name for p in list_checkpoints(resumed)] == ["step_0000000150"]
    assert cli.main(["train", "--resume", str(resumed), "--total-steps", "300", "--no-progress"]) == 0
    a, b = read_progress(straight / "progress.csv"), read_progress(resumed / "progress.csv")
    assert list(a[0]) == list(b[0])
    for key in ("step", "updates", "episodes", "eval_return_mean", "eval_success_rate", "train_success_rate",
                "train_return_mean", "loss_critic"):  # fmt: skip
        assert [r[key] for r in a] == [r[key] for r in b], key
    capsys.readouterr()
    assert cli.main(["eval", str(straight), "--episodes", "6"]) == 0
    out = capsys.readouterr().out
    wins = sum(_flags(7 + 100_000 + e, 1)[0] for e in range(6))
    assert f"success rate {wins / 6:.2f} ({wins} of 6 episodes)" in out


@pytest.mark.parametrize("bad", ["yes", [1.0], float("nan"), None, 2.0])
def test_a_flag_that_is_not_a_number_is_one_line(bad: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From the 31st episode on (step 150, after the step-100 checkpoint and evaluation row), the
    environment reports a bad flag: one line, exit 2, the checkpoint and the row written kept."""
    env_id = _register(f"SoftacTest/GoalBad{len(gym.registry)}-v0", bad=bad, bad_from=30)
    run_dir = tmp_path / "run"
    argv = ["train", "--algo", "sac", "--env", env_id, "--learning-starts", "50", "--eval-freq", "100",
            "--checkpoint-freq", "100", "--total-steps", "300", "--run-dir", str(run_dir), "--hidden-sizes", "32",
            "32", "--batch-size", "32", "--threads", "1", "--no-progress", "--eval-episodes", "1"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert f"(step 154) reported info['is_success'] = {bad!r}" in err[0], err[0]
    assert "must be a number in [0, 1]" in err[0], err[0]
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_0000000100"]
    assert [r["step"] for r in read_progress(run_dir / "progress.csv")] == ["100"]


def test_a_bad_flag_in_an_evaluation_is_one_line_and_no_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env_id = _register("SoftacTest/GoalBadEval-v0", bad="done", bad_in_eval=True)
    run_dir = tmp_path / "run"
    argv = ["train", "--algo", "sac", "--env", env_id, "--learning-starts", "50", "--eval-freq", "100",
            "--total-steps", "200", "--run-dir", str(run_dir), "--hidden-sizes", "32", "32", "--batch-size", "32",
            "--threads", "1", "--no-progress", "--eval-episodes", "1"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert f"the evaluation environment {env_id} (learner 0, episode 0) reported info['is_success'] = 'done'" in err[0]
    assert read_progress(run_dir / "progress.csv") == []  # no row with a made-up rate


def _fake(root: Path, name: str, seed: int, returns: list[float], success: list[float] | None) -> Path:
    """A run directory written by hand (no training): one evaluation every 100 steps."""
    run = fake_run(root, name, "sac", GOAL, seed, returns)
    if success is not None:
        lines = ["step,eval_return_mean,eval_return_std,eval_success_rate,wall_time_s"]
        lines += [f"{100 * (i + 1)},{r},0,{s},{i}" for i, (r, s) in enumerate(zip(returns, success, strict=True))]
        (run / "progress.csv").write_text("\n".join(lines) + "\n")
    return run


def test_compare_tables_the_final_success_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    finals_a, finals_b = [1.0, 0.8, 0.9], [0.2, 0.1, 0.3]
    for i, (fa, fb) in enumerate(zip(finals_a, finals_b, strict=True)):
        _fake(tmp_path / "a", f"seed_{i}", i, [-5.0, -4.0 + i], [0.5, fa])
        _fake(tmp_path / "b", f"seed_{i}", i, [-5.0, -3.0 - i], [0.5, fb])
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(out) if line.startswith("final success rate on SoftacTest/Goal-v0"))
    assert "last evaluation of each run (step 200)" in out[at]
    assert out[at + 2].split()[:3] == ["a", "3", "0.90"]  # the mean of 1.0, 0.8, 0.9, then its interval
    assert out[at + 3].split()[:3] == ["b", "3", "0.20"]
    assert out[at + 4].startswith("P(a > b) = 1.000")  # every run of a beats every run of b
    # the returns' table above it is as before: a's final returns −4, −3, −2 (mean −3), b's −3, −4, −5 (mean −4)
    assert out[2].split()[:3] == ["a", "3", "-3.00"] and out[3].split()[:3] == ["b", "3", "-4.00"]
    # a group with a run that reports no success: returns only
    _fake(tmp_path / "c", "seed_0", 0, [-5.0, -1.0], None)
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 0
    assert "success" not in capsys.readouterr().out


def test_plot_draws_success_under_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_fake(tmp_path, f"s{i}", i, [-5.0, -3.0], s) for i, s in enumerate(([0.0, 1.0], [0.5, 0.5]))]
    pendulum = fake_run(tmp_path, "p", "td3", "Pendulum-v1", 0, [-900.0, -300.0])
    seen = capture_figure(monkeypatch)
    out = plot_runs([*runs, pendulum], tmp_path / "curves.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    panels = dict(seen["axes"])
    assert set(panels) == {GOAL, f"{GOAL}: success rate", "Pendulum-v1", ""}  # Pendulum's success axis is off
    assert panels[f"{GOAL}: success rate"] == {"SAC (mean of seeds [0, 1], 95% CI)": [0.25, 0.75]}
    assert panels[GOAL] == {"SAC (mean of seeds [0, 1], 95% CI)": [-5.0, -3.0]}
    seen.clear()
    plot_runs([pendulum], tmp_path / "p.png")  # no success anywhere: one row, as before
    assert [title for title, _ in seen["axes"]] == ["Pendulum-v1"]


def test_bar_and_plot_of_a_trained_run_show_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    SAC(GOAL, **SETTINGS, total_steps=200, seed=7).learn(run_dir=run_dir, progress=True)
    assert "success=0.75" in capsys.readouterr().err.splitlines()[-1]  # the bar's last state: eval=..., success=
    seen = capture_figure(monkeypatch)
    assert cli.main(["plot", str(run_dir)]) == 0
    panels = dict(seen["axes"])
    rates = [r["eval_success_rate"] for r in _expected(7, 1, 200, 100, 4)]
    assert panels[f"{GOAL}: success rate"] == {"SAC (seed 7)": rates}
