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
