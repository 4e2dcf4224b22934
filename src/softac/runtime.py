"""Where and with which seeds an agent runs: the device named by the user, the seeds of its
learners, and how many CPU threads torch may use for it."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from softac.errors import SoftacError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SoftacError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SoftacError(f"device '{name}' requested but CUDA is not available: use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SoftacError(f"device '{name}' is not supported: use cpu or cuda")
    return device


# Why: seeds of 2**64 and more ended in a traceback (numpy/torch seeding); ranges like
# 0-99999999999999999999 ran out of memory while the list was built. Same bound as config.MAX_SEED.
MAX_SEED = 2**32 - 1
MAX_LEARNERS = 4096


def _short(seeds: tuple[object, ...]) -> str:
    text = repr(list(seeds[:8]))
    return text if len(seeds) <= 8 else text[:-1] + ", ...]"


def parse_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    try:
        out = tuple(seeds)
    except TypeError:
        raise SoftacError(f"seeds must be a list of non-negative integers, got {seeds!r}") from None
    integral = all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in out)
    if not out or not integral or not all(0 <= s <= MAX_SEED for s in out):
        raise SoftacError(f"seeds must be a non-empty list of integers in [0, {MAX_SEED}], got {_short(out)}")
    out = tuple(int(s) for s in out)  # np.arange(4) gives NumPy integers: plain ints from here on
    if len(out) > MAX_LEARNERS:
        raise SoftacError(f"at most {MAX_LEARNERS} seeds fit in one process, got {len(out)}")
    if len(set(out)) != len(out):
        raise SoftacError(f"seeds must be distinct, got {list(out)}")
    return out


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: taskset, cgroups' cpusets, a job
    scheduler's allocation), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def others_running() -> int:
    """Runnable threads of other processes right now: the 4th field of /proc/loadavg ("r/t")
    counts every runnable thread on the machine, this process's included. A reading at one
    instant, not an average: the 1-minute load would still count a job that ended 30 s ago.

    This process's own runnable threads are taken off, not just the calling one: right after any
    parallel torch op its OpenMP workers still spin (runnable) for a while, and counting them
    made a quiet 2-core machine look half busy, so the run chose one thread."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):  # not Linux, or an unreadable /proc
        return 0
    return max(0, running - max(1, _own_running()))


def _own_running() -> int:
    """This process's threads in state R (running or runnable), from /proc/self/task/*/stat."""
    count = 0
    try:
        tasks = list(Path("/proc/self/task").iterdir())
    except OSError:
        return 1
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        # "pid (comm) S ...": comm may hold spaces or parentheses, the state follows the last ')'.
        if stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "R":
            count += 1
    return count


def choose_threads(requested: int, cores: int, busy: int, jobs: int = 1) -> int:
    """Torch's intra-op thread count (docs/speed.md, "Threads").

    ``requested`` > 0 (``--threads``) is used as given. Otherwise each of ``jobs`` processes
    sharing the ``cores`` gets an equal share, and no more than the cores the ``busy`` other
    runnable threads leave free, at least 1. Why not one thread per core: torch's intra-op pool
    splits each op into equal parts and waits for the slowest at every op's end, so one core
    taken by another process stalls every op for a scheduler time slice (with one
    CPU-bound neighbour on 2 cores softac kept 32 % of its speed at 2 threads). One thread
    fewer than the cores costs at most the parallel part of an update; a stalled barrier costs
    most of it."""
    if requested > 0:
        return requested
    share = max(1, cores // max(1, jobs))
    return max(1, min(share, cores - busy))


def apply_threads(requested: int, jobs: int = 1) -> int:
    """Set torch's intra-op threads by ``choose_threads`` for this process; returns the count."""
    n = choose_threads(requested, available_cores(), others_running(), jobs)
    torch.set_num_threads(n)
    return n


def apply_tf32(enabled: bool, device: torch.device) -> None:
    """``--tf32``: CUDA float32 matmuls on TF32 tensor cores. Process-wide (torch has no per-module
    switch), so another agent in this process gets TF32 too; `softac train` and the suite run one
    configuration per process. Never turned off here: an agent without it does not undo another's."""
    if enabled and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
