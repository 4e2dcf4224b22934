"""SIGINT/SIGTERM during training: finish the step, save, exit 130/143; a second signal exits at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint was saved (exit code 128 + signal number)."""

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        self.checkpoint = checkpoint
        # The command that continues the run, where the caller knows it (``softac train`` does): a
        # user who pressed Ctrl-C should not have to look up how to resume.
        self.resume_with: str | None = None
        where = f"checkpoint saved to {checkpoint}" if checkpoint else "no run directory, nothing saved"
        super().__init__(f"interrupted by {signal.Signals(signum).name}; {where}")

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} — to continue it: {self.resume_with}" if self.resume_with and self.checkpoint else text


class SignalGuard:
    """First SIGINT/SIGTERM: finish the current step, save, exit 130/143. Second: exit at once
    (the atomic write means the previous checkpoint is intact whatever is in flight)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum
        print(
            f"\nsoftac: {signal.Signals(signum).name} received, saving a checkpoint "
            "(signal again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class SignalFlag:
    """SIGINT/SIGTERM for a command that writes nothing (``softac eval``): the first signal is
    recorded for the command to stop at its next check and say so in one line (exit 128 + signal
    number); a second exits at once. Why: Python's default SIGTERM ended a long evaluation with no
    word at all."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            os._exit(128 + signum)
        self.signum = signum

    def stopped(self) -> bool:
        return self.signum is not None

    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""
