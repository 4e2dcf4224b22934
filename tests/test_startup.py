"""The console script: Ctrl-C while softac is still importing is one line and exit 130, a bad
`softac eval` argument is one line, and a run that does not compile never imports torch's compiler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TINY_FLAGS, assert_one_line_error, cli_env, default_sigint, run_cli

from softac.logging import read_progress

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


def test_a_run_that_does_not_compile_never_imports_torchs_compiler(tmp_path: Path) -> None:
    """``import torch._dynamo`` costs about 1 s of CPU, as much again as the rest of a refusal's start-up;
    torch's optimizers import it on construction unless softac.optim constructs them around it. A train
    run (updates, a checkpoint, an evaluation), its resume and an eval, in one real process each."""
    run = tmp_path / "run"
    probe = (
        "import sys; from softac.cli import main; rc = main(sys.argv[1:]); "
        "print('dynamo', 'torch._dynamo' in sys.modules); sys.exit(rc)"
    )
    commands = [
        ["train", "--algo", "td3", "--env", "Pendulum-v1", "--total-steps", "150", "--learning-starts", "100",
         "--eval-freq", "150", "--checkpoint-freq", "150", "--run-dir", str(run), *TINY_FLAGS],
        ["train", "--resume", str(run), "--total-steps", "200", "--no-progress"],
        ["eval", str(run), "--episodes", "1"],
        ["train", "--algo", "td3", "--env", "Pendulum-v1", "--total-steps", "5000", "--run-dir", str(tmp_path / "no"),
         *TINY_FLAGS],  # refused: no update before learning starts
    ]  # fmt: skip
    for args, code in zip(commands, [0, 0, 0, 2], strict=True):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=cli_env(),
                              timeout=120, check=False)  # fmt: skip
        assert proc.returncode == code, (args, proc.stderr[-2000:])
        assert proc.stdout.splitlines()[-1] == "dynamo False", (args, proc.stdout[-500:])
    assert int(read_progress(run / "progress.csv")[-1]["updates"]) == 100  # it trained: 200 steps from 100
