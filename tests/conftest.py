"""Fixtures. Helpers (tiny settings, custom Gymnasium environments registered on import, CLI
runners) live in helpers.py so test modules can import them; importing it here registers the
test environments before any test runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, run_cli


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default=None,
        help="device the tests train on: cpu (default) or cuda; also SOFTAC_TEST_DEVICE",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    import helpers

    device = config.getoption("--device") or helpers.DEVICE
    if device != "cpu" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {device}: CUDA is not available on this machine")
    helpers.set_device(device)


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _restore_torch_rng() -> Any:
    """Tests that load checkpoints set the global torch RNG; keep tests independent."""
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


@pytest.fixture(scope="session")
def cli_sac_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished CLI SAC run shared by the read-only CLI tests (eval, plot, --run-dir clash)."""
    run_dir = tmp_path_factory.mktemp("cli") / "sac"
    proc = run_cli(
        "train", "--algo", "sac", "--env", "Pendulum-v1", "--total-steps", "600", "--learning-starts", "200",
        "--eval-freq", "300", "--checkpoint-freq", "300", "--run-dir", str(run_dir), *TINY_FLAGS,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "step 600: eval return" in proc.stdout and str(run_dir) in proc.stdout
    assert "Traceback" not in proc.stderr
    return run_dir


@pytest.fixture(scope="session")
def sac_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SAC run directory made through the Python API (one checkpoint at step 400)."""
    from softac import SAC

    run_dir = tmp_path_factory.mktemp("api") / "sac"
    agent = SAC(
        "Pendulum-v1", **TINY, learning_starts=200, total_steps=400, eval_freq=400, checkpoint_freq=400
    )
    agent.learn(run_dir=run_dir, progress=False)
    assert agent.updates > 0
    return run_dir


@pytest.fixture
def run_copy(sac_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the session's SAC run (the tests that use it damage or edit it)."""
    dst = tmp_path / "run"
    shutil.copytree(sac_checkpoint, dst)
    return dst


# The longest tests: seconds each took inside a whole `pytest -n 2 --dist worksteal` run of a fresh
# clone on the project's 2-core machine (2026-12-06; a test whose budget was cut since: scaled to it).
# Only their order depends on these numbers.
LONG_TESTS = {
    "test_dqn_solves_cartpole_with_its_preset_in_400k_steps": 167,
    "test_crossq_learns_pendulum_faster_than_sacs_test_budget": 187,
    "test_ddpg_solves_pendulum_in_20k_steps": 159, "test_td3_solves_pendulum_in_20k_steps": 152,
    "test_discrete_sac_solves_cartpole_with_its_preset_in_40k_steps": 92,
    "test_simba_sac_solves_pendulum_in_fewer_steps_than_sacs_test": 62, "test_sac_solves_pendulum_in_15k_steps": 43,
    "test_cli_seeds_run_layout_and_each_seed_equals_its_single_run": 35,
    "test_killed_suite_resumes_to_the_uninterrupted_results": 31, "test_grid_sweep_makes_run_dirs_and_summary": 27,
    "test_ppo_solves_cartpole_with_its_preset": 24, "test_ppo_learns_pendulum_with_its_preset": 23,
    "test_sigkill_at_random_times_then_resume_to_the_end": 22, "test_suite_cells_as_local_ray_trials": 19,
    "test_bench_baseline_takes_its_own_options_and_bad_json_is_one_line": 19,
    "test_robotics_suite_reports_both_variants_success": 28,  # alone, load 3-4
}  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deal the longest tests to the workers in advance, longest first, each to the worker with the
    least so far, and put them at the front of that worker's share. Why: `--dist worksteal` first hands
    worker w the w-th contiguous chunk of this list, then an idle worker steals the *last* half of
    another's queue. With all the learning tests at the front of one chunk, the other worker stole only
    short tests and one worker ran every learning test in turn."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cost = {item.nodeid: LONG_TESTS.get(getattr(item, "originalname", item.name), 0) for item in items}
    long = sorted((item for item in items if cost[item.nodeid]), key=lambda item: -cost[item.nodeid])
    rest = [item for item in items if not cost[item.nodeid]]
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for item in long:
        lightest = min(range(workers), key=lambda w: sum(cost[i.nodeid] for i in shares[w]))
        shares[lightest].append(item)
    # xdist's chunk sizes: of the n tests still unsent, the next worker gets n // (workers left).
    ordered: list[pytest.Item] = []
    for w, share in enumerate(shares):
        size = (len(items) - len(ordered)) // (workers - w)
        take = max(0, size - len(share))
        ordered += share + rest[:take]
        rest = rest[take:]
    items[:] = ordered + rest
