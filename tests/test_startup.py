"""The console script (issue 16, item 8): Ctrl-C while softac is still importing is one line and exit
130, and a bad `softac eval` argument is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_one_line_error, cli_env, default_sigint, run_cli

SCRIPT = Path(sys.executable).with_name("softac")


def test_console_script_points_at_the_interruptible_entry() -> None:
    if not SCRIPT.exists():
        pytest.skip("the softac console script is not installed next to this Python")
    assert "from softac_entry import main" in SCRIPT.read_text()


def test_interrupt_while_importing_is_one_line_and_130() -> None:
    """Deterministic: the interrupt is raised by the import of torch itself (an import hook), so it
    lands exactly where a Ctrl-C during start-up lands."""
    code = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "import softac_entry\n"
        "sys.exit(softac_entry.main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "eval", "x"], capture_output=True, text=True, env=cli_env(),
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == ["softac: interrupted while starting (nothing was done)"]


def _low_priority_with_default_sigint() -> None:
    os.nice(19)
    default_sigint()


def test_real_ctrl_c_during_start_up() -> None:
    if not SCRIPT.exists() or not Path("/proc/self/maps").exists():
        pytest.skip("needs the installed console script and /proc")
    # A loaded machine can deschedule this test until the child has finished starting (it then exits 2
    # on /nonexistent before any signal: 2026-12-04, beside `make train`); such a try shows nothing
    # either way and is made again, five times at most.
    # The child runs at the lowest priority (nice 19) so that this loop, not the child, gets the CPU
    # when both want it: inside the whole suite on 2026-12-06 the child won three tries of three.
    for _ in range(5):
        proc = subprocess.Popen([str(SCRIPT), "eval", "/nonexistent"], stderr=subprocess.PIPE, text=True,
                                env=cli_env(), preexec_fn=_low_priority_with_default_sigint)  # fmt: skip
        maps = Path(f"/proc/{proc.pid}/maps")
        deadline = time.monotonic() + 60
        # SIGINT once torch's shared library is mapped: torch's Python import is then under way.
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if "libtorch" in maps.read_text():
                    break
            except OSError:
                pass
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if not (proc.returncode == 2 and "does not exist" in err):
            break
    else:
        # Every try finished starting before the signal landed (or torch's C initialisation, which
        # cannot raise KeyboardInterrupt, swallowed it): nothing is shown either way. Alone the test
        # lands its signal at the first try; inside the whole suite on a loaded 2-core machine it
        # did not in five (2026-12-06).
        pytest.skip("the machine was too loaded for a signal to land during start-up in five tries")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "softac: interrupted while starting (nothing was done)"
    ]


def test_eval_negative_seed_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("eval", str(tmp_path), "--seed", "-1"), "--seed must be a non-negative integer")
