"""A run's ``.lock`` is removed after a clean exit (issue 22), without ever letting two processes
hold the lock of one run directory (softac.io.lock: unlinked while held, re-checked on acquire)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import TINY

from softac import SAC
from softac.io.lock import LOCK, RunLock, _still_named

flock = pytest.importorskip("fcntl", reason="runs are locked with flock only where it exists")


def test_a_finished_run_leaves_no_lock(tmp_path: Path) -> None:
    run = tmp_path / "run"
    SAC("Pendulum-v1", **TINY, learning_starts=50, total_steps=100, eval_freq=100).learn(run_dir=run, progress=False)
    assert (run / "progress.csv").is_file()  # the run did write its directory
    assert not (run / LOCK).exists()


def test_release_removes_the_file_and_a_waiter_on_the_old_file_does_not_count(tmp_path: Path) -> None:
    first = RunLock(tmp_path).acquire()
    # A process that opened the file just before the holder released it...
    stale = os.open(tmp_path / LOCK, os.O_RDWR)
    try:
        assert _still_named(stale, tmp_path / LOCK)
        first.release()
        assert not (tmp_path / LOCK).exists()
        # ... can now flock the removed file, but it no longer names the run's lock: acquire retries.
        flock.flock(stale, flock.LOCK_EX | flock.LOCK_NB)
        assert not _still_named(stale, tmp_path / LOCK)
        second = RunLock(tmp_path).acquire()  # a fresh file: not blocked by the stale descriptor
        assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())
        second.release()
    finally:
        os.close(stale)


def test_nested_release_keeps_the_lock_until_the_outer_one(tmp_path: Path) -> None:
    outer = RunLock(tmp_path).acquire()
    RunLock(tmp_path).__enter__().release()  # nested: the trainer inside `train --resume`'s lock
    assert (tmp_path / LOCK).exists()
    outer.release()
    assert not (tmp_path / LOCK).exists()
