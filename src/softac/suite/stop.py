"""SIGINT/SIGTERM to ``softac suite``: every running cell gets the signal once, checkpoints and stops
(``softac train``'s own handling), no further cell starts, and the suite records each cell's state
and says in one line what was saved. A second signal is passed on too: the cells exit at once, as
``softac train`` does on a second signal.

Each cell runs in a process group of its own, started through ``softac.suite.child`` (which ends it
if the suite dies), so a signal sent to the suite's whole group does not reach a cell twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import IO, Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The parent-death signal that ends a cell with the suite is Linux's; elsewhere a cell stays in the
# suite's group, where a group signal reaches it directly.
OWN_GROUP = sys.platform.startswith("linux")


class Stop:
    """The running cells' processes and the first signal received (None: none yet)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.procs: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
            print(f"\nsoftac: {signal.Signals(signum).name} received: the running cells save a checkpoint and stop "
                  "(signal again to stop them at once)", file=sys.stderr, flush=True)  # fmt: skip
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it ended since poll()
                    proc.send_signal(signum)

    def run(self, argv: list[str], env: dict[str, str], log: IO[str]) -> int:
        """Run one cell's command (its output to ``log``) and return its exit code; not started
        at all once a signal has arrived (the code of that signal then)."""
        if OWN_GROUP:
            argv = [argv[0], "-m", "softac.suite.child", str(os.getpid()), *argv[2:]]
        with self.lock:
            if self.signum is not None:
                return 128 + self.signum
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=OWN_GROUP)  # fmt: skip
            self.procs.add(proc)
        try:
            return proc.wait()
        finally:
            with self.lock:
                self.procs.discard(proc)
