"""Fixtures. Helpers (tiny settings, custom Gymnasium environments registered on import, CLI
runners) live in helpers.py so test modules can import them; importing it here registers the
test environments before any test runs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY, TINY_FLAGS, run_cli

# Byte-code caching on, for this process and every process the tests start (the CLI runs, Ray's
# workers, the benchmark workers). Why: where PYTHONDONTWRITEBYTECODE is set (this project's
# machines set it), each of the ~170 Python processes the suite starts compiled softac's sources
# again: `import softac` took 3.1 s of CPU against 2.5 s with the cache (2026-12-07). The cache
# goes to the ``__pycache__`` directories beside the sources, which git ignores.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


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


# The longest tests: seconds each took inside a whole `pytest -n 2 --dist worksteal` run on the project's
# 2-core machine (2026-12-07, Inductor's cache warm), and the compiling tests' seconds with an empty cache,
# as CI's fresh clone has (each alone, serial). Only the dealing depends on these numbers.
LONG_TESTS = {
    "test_dqn_solves_cartpole_with_its_preset_in_400k_steps": 252,
    "test_td3_solves_pendulum_in_20k_steps": 202, "test_ddpg_solves_pendulum_in_15k_steps": 145,
    "test_crossq_learns_pendulum_faster_than_sacs_test_budget": 189,
    "test_discrete_sac_solves_cartpole_with_its_preset_in_40k_steps": 129,
    "test_simba_sac_solves_pendulum_in_fewer_steps_than_sacs_test": 76, "test_sac_solves_pendulum_in_15k_steps": 53,
    "test_killed_suite_resumes_to_the_uninterrupted_results": 47, "test_grid_sweep_makes_run_dirs_and_summary": 38,
    "test_cli_seeds_run_layout_and_each_seed_equals_its_single_run": 34,
    "test_ppo_learns_pendulum_with_its_preset": 33, "test_ppo_solves_cartpole_with_its_preset": 25,
    "test_suite_cells_as_local_ray_trials": 26, "test_robotics_suite_reports_both_variants_success": 24,
    "test_crossq_cli_run_reaches_updates_and_resumes_bit_identically": 24,
    "test_sigkill_at_random_times_then_resume_to_the_end": 22,
    "test_bench_baseline_takes_its_own_options_and_bad_json_is_one_line": 21,
    "test_a_signal_ends_the_ray_trials_and_says_which_checkpoint_each_cell_keeps": 40,  # each of two: 19-64 s
    "test_optuna_search_writes_best": 16, "test_resume_skips_finished_runs": 11,  # with the grid sweep's unit
    # Compiling, cold: each algorithm of test_accel's table 15-54 s (PPO's 12 s), the pixel encoder 38 s,
    # SimBa 29 s, the stacked learners 20 s.
    "test_compiled_update_equals_eager_update": 25, "test_the_compiled_update_equals_the_eager_one": 38,
    "test_compiled_simba_update_equals_eager_update": 29, "test_compiled_update_of_stacked_learners_equals_eager": 20,
}  # fmt: skip


def _unit_key(item: pytest.Item) -> str:
    """Tests that share a module-scoped fixture travel together: split across the two workers, each
    worker builds the fixture (a local Ray instance and a whole sweep: 36 s, paid twice when the
    sweep tests were dealt apart)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info is not None else ()
    shared = any(d[-1].scope == "module" for d in defs if d)
    return item.nodeid.split("::")[0] if shared else item.nodeid


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deal the longest tests to the workers in advance, longest first, each to the worker with the
    least so far, and put them at the front of that worker's share. Why: `--dist worksteal` first hands
    worker w the w-th contiguous chunk of this list, then an idle worker steals the *last* half of
    another's queue. With all the learning tests at the front of one chunk, the other worker stole only
    short tests and one worker ran every learning test in turn. A long test that shares a module-scoped
    fixture is dealt with the tests that share it (``_unit_key``), in their order."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(_unit_key(item), []).append(item)

    def cost(unit: list[pytest.Item]) -> int:
        return sum(LONG_TESTS.get(getattr(item, "originalname", item.name), 0) for item in unit)

    long = sorted((u for u in units.values() if cost(u)), key=lambda u: -cost(u))
    rest = [item for u in units.values() if not cost(u) for item in u]
    shares: list[list[list[pytest.Item]]] = [[] for _ in range(workers)]
    for unit in long:
        lightest = min(range(workers), key=lambda w: sum(cost(u) for u in shares[w]))
        shares[lightest].append(unit)
    # xdist's chunk sizes: of the n tests still unsent, the next worker gets n // (workers left).
    ordered: list[pytest.Item] = []
    for w, share in enumerate(shares):
        front = [item for unit in share for item in unit]
        size = (len(items) - len(ordered)) // (workers - w)
        take = max(0, size - len(front))
        ordered += front + rest[:take]
        rest = rest[take:]
    items[:] = ordered + rest
