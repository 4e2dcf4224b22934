"""Fixtures. Helpers (tiny settings, custom Gymnasium environments registered on import, CLI
runners) live in helpers.py so test modules can import them; importing it here registers the
test environments before any test runs."""

from __future__ import annotations

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the minutes-long learning tests first. With `pytest -n 2 --dist worksteal` the first
    worker starts them while the second runs short tests and then steals the last learning test,
    so they overlap instead of running one after another on one worker (12.5 min measured with
    `--dist load`, which hands each worker a contiguous chunk holding all three)."""
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/test_learning.py") else 1)
