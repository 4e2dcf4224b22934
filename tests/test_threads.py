"""The thread-count rule of ``softac.runtime.choose_threads`` (docs/speed.md, "Threads")."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from softac.runtime import _own_running, apply_threads, available_cores, choose_threads, others_running


@pytest.mark.parametrize(
    ("requested", "cores", "busy", "jobs", "expected"),
    [
        (0, 2, 0, 1, 2),  # a quiet 2-core machine: both cores
        (0, 2, 1, 1, 1),  # one CPU-bound neighbour: the one core it leaves
        (0, 2, 5, 1, 1),  # more neighbours than cores: never below one thread
        (0, 16, 3, 1, 13),  # the cores the neighbours leave free
        (0, 16, 0, 4, 4),  # four parallel jobs share 16 cores equally
        (0, 16, 14, 4, 2),  # ... and no more than the free cores
        (0, 2, 0, 3, 1),  # more jobs than cores: one thread each
        (3, 2, 1, 1, 3),  # --threads is used as given, load or not
    ],
)
def test_choose_threads(requested: int, cores: int, busy: int, jobs: int, expected: int) -> None:
    assert choose_threads(requested, cores, busy, jobs) == expected


def test_cores_and_load_are_read_from_this_machine() -> None:
    assert available_cores() == len(os.sched_getaffinity(0))
    assert others_running() >= 0


def test_own_runnable_threads_are_not_counted_as_neighbours() -> None:
    """A busy thread of this process (torch's spinning OpenMP workers after an op, here a thread
    in a GIL-free matrix product) is this process's, not a neighbour: seen by ``_own_running``,
    so the quiet machine of issue 23 is not read as half busy."""
    stop = threading.Event()
    a = torch.randn(512, 512)

    def spin() -> None:
        while not stop.is_set():
            torch.mm(a, a)  # releases the GIL: this thread stays runnable

    worker = threading.Thread(target=spin, daemon=True)
    worker.start()
    try:
        seen = max(_own_running() for _ in range(200))
    finally:
        stop.set()
        worker.join()
    assert seen >= 2


def test_apply_threads_sets_torch() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        n = apply_threads(0)
        assert 1 <= n <= available_cores() and torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)


def test_tf32_is_cuda_only_and_off_by_default() -> None:
    """--tf32 changes float32 matmul precision process-wide, so it must never switch on for a CPU run
    (whose equality tests are bit for bit) and is off unless asked for."""
    import torch

    from softac.algos.sac import SACConfig
    from softac.runtime import apply_tf32

    assert SACConfig().tf32 is False
    before = torch.backends.cuda.matmul.allow_tf32
    apply_tf32(True, torch.device("cpu"))
    assert torch.backends.cuda.matmul.allow_tf32 == before
