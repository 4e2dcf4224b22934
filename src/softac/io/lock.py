"""One process per run directory: an OS advisory lock on ``RUN/.lock``.

Why ``flock`` on a file rather than a PID file alone: the kernel releases the lock when the process
exits for any reason (a crash, ``kill -9``), so a stale lock can never block a resume, and two
processes can never both hold it (checking a PID file and then writing it would race). The file
also holds the PID of the holder, only to name it in the refusal. A batched run directory (one
``seed_<s>/`` per learner) is locked once, at its top; a lock on one of its ``seed_<s>/`` takes the
top's lock first (``--run-dir R/seed_0 --overwrite`` deleted a live learner's checkpoints
while ``--seeds 0-1 --run-dir R`` ran). The lock is advisory: it keeps softac
processes apart, which is what interleaved progress.csv rows and checkpoints came from.

A clean release removes the file (a finished run left ``.lock`` behind). It is unlinked
while still locked, and a process that wins the flock checks that the path still names the file
it locked (else it locked a removed file and tries again): without that check, a process that
opened the file just before the removal and one that created a new file could both hold "the"
lock.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from types import TracebackType

from softac.errors import SoftacError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked (documented in the README)
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
_BATCH = "runs.json"  # softac.io.rundir.BATCH (rundir imports files; the lock stays at the bottom)
_SEED = re.compile(r"^seed_\d+$")
# Locks this process holds, by path, with a count: ``softac train --resume`` takes the lock before
# it reads the run (so that it never reads a checkpoint the other process is pruning) and the
# trainer takes it again; two flocks of one file conflict even within one process.
_held: dict[Path, int] = {}


def _still_named(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file open as ``fd`` (same device and inode)."""
    try:
        named = path.stat()
    except OSError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self.fd: int | None = None
        self.nested = False
        top = run_dir.resolve().parent
        self.outer = RunLock(top) if _SEED.match(run_dir.resolve().name) and (top / _BATCH).is_file() else None

    def acquire(self) -> RunLock:
        if self.outer is not None:
            self.outer.acquire()
            try:
                return self._acquire()
            except BaseException:
                self.outer.release()
                raise
        return self._acquire()

    def _acquire(self) -> RunLock:
        key = self.path.resolve()
        if key in _held:
            _held[key] += 1
            self.nested = True
            return self
        fd = self._open_locked()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the PID is only for the message; the lock itself is held
        self.fd = fd
        _held[key] = 1
        return self

    def _open_locked(self) -> int:
        """The lock file, open and flocked. Why the inode check: ``release`` removes the file (a
        run's ``.lock`` stayed behind after a clean exit), so a process that opened the
        old file just before it was removed holds a lock on nothing; it tries again on the new one."""
        for _ in range(100):
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # O_CLOEXEC (Python's default): subprocesses that exec (AsyncVectorEnv workers under
                # spawn/forkserver) do not keep the lock after this process has gone.
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise SoftacError(f"run directory {self.path.parent} is not writable: {exc.strerror or exc}") from None
            if fcntl is None:
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise SoftacError(
                    f"run directory {self.path.parent} is in use by another softac process (PID {holder}); "
                    "wait for it to finish or stop it, then try again"
                ) from None
            if _still_named(fd, self.path):
                return fd
            os.close(fd)
        raise SoftacError(f"could not lock run directory {self.path.parent}: its .lock keeps changing")

    def release(self) -> None:
        key = self.path.resolve()
        if self.nested or self.fd is not None:
            _held[key] -= 1
            if _held[key] == 0:
                del _held[key]
        self.nested = False
        if self.fd is not None:
            if fcntl is not None and key not in _held:
                with contextlib.suppress(OSError):
                    self.path.unlink()  # while still held: see _open_locked
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None
        if self.outer is not None:
            self.outer.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
