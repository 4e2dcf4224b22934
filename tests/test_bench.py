"""`softac bench` measures a real training window (updates included) and prints the table."""

from __future__ import annotations

import re
import subprocess
import sys


def test_bench_softac_only_prints_a_measured_median() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "softac.cli", "bench", "--env", "Pendulum-v1", "--no-sb3", "--rounds", "1",
         "--warmup", "256", "--steps", "100", "--softac-options", '{"hidden_sizes": [32, 32], "batch_size": 64}'],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"median softac: ([0-9.]+) steps/s", proc.stdout)
    assert match is not None, proc.stdout
    assert float(match.group(1)) > 0.0
    assert "1M-transition buffer" in proc.stdout
    # The `softac train` column: two whole processes, their difference (softac.cli.bench); with
    # 100 steps of a 32×32 network on a loaded machine the difference can drown in start-up noise,
    # which the column reports as nan rather than as a figure.
    cli = re.search(r"median softac train: ([0-9.]+|nan) steps/s", proc.stdout)
    assert cli is not None, proc.stdout
    assert cli.group(1) == "nan" or float(cli.group(1)) > 0.0


def test_cli_flags_are_the_train_command_s() -> None:
    from softac.cli.bench import cli_flags

    assert cli_flags({"device": "cuda", "cuda_graph": False, "compile_update": True, "seeds": [0, 1, 2],
                      "hidden_sizes": [32, 32], "batch_size": 64}) == [
        "--device", "cuda", "--no-cuda-graph", "--compile-update", "--seeds", "0,1,2", "--hidden-sizes", "32", "32",
        "--batch-size", "64",
    ]  # fmt: skip


def test_bench_baseline_takes_its_own_options_and_bad_json_is_one_line() -> None:
    """``--baseline-options`` go to the baseline side only (here this very checkout, with half the
    batch); malformed JSON is refused before anything runs."""
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    common = [sys.executable, "-m", "softac.cli", "bench", "--env", "Pendulum-v1", "--no-sb3", "--no-cli",
              "--rounds", "1", "--warmup", "256", "--steps", "100",
              "--softac-options", '{"hidden_sizes": [32, 32], "batch_size": 64}', "--baseline-src", src]  # fmt: skip
    proc = subprocess.run([*common, "--baseline-options", '{"batch_size": 32}'], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"median baseline: [0-9.]+ steps/s", proc.stdout), proc.stdout
    # They reach the baseline's config: an invalid value there fails the baseline side, by name.
    invalid = subprocess.run([*common, "--baseline-options", '{"batch_size": -1}'], capture_output=True, text=True,
                             timeout=300, check=False)  # fmt: skip
    assert invalid.returncode != 0 and "batch_size" in invalid.stderr, invalid.stderr
    bad = subprocess.run([*common, "--baseline-options", "{batch"], capture_output=True, text=True, timeout=60,
                         check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("softac: error: --baseline-options is not JSON")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_bench_times_dqn_whose_schedule_updates_every_few_steps() -> None:
    """DQN updates once per train_freq steps: the timed window holds the updates its schedule owes
    (before: an AssertionError traceback, the check demanding one update per step)."""
    proc = subprocess.run(
        [sys.executable, "-m", "softac.cli", "bench", "--algo", "dqn", "--env", "CartPole-v1", "--no-sb3", "--no-cli",
         "--rounds", "1", "--warmup", "256", "--steps", "200",
         "--softac-options", '{"hidden_sizes": [16, 16], "batch_size": 16, "utd_ratio": 0.25}'],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"median softac: ([0-9.]+) steps/s", proc.stdout)
    assert match is not None and float(match.group(1)) > 0.0, proc.stdout
