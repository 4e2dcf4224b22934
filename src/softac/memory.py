"""Memory that cannot exist is refused before it is allocated.

Why: ``--buffer-size 1e12`` or ``--hidden-sizes 1000000000`` used to fail with "can't allocate
memory" after a long pause (or, with overcommit, much later, when the pages were touched). The
agent's largest allocations are known from its config before any is made: the replay buffer
(float32 rows) and the networks (weights, gradients, Adam's two moments, target copies, and the
activations of one minibatch). An estimate above the memory the machine (or the GPU) has free is
one line giving both numbers.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch

from softac.errors import SoftacError

FLOAT = 4  # bytes of a float32


def mlp_params(sizes: list[int]) -> int:
    return sum(i * o + o for i, o in itertools.pairwise(sizes))


def networks_bytes(cfg: Any, spec: Any) -> int:
    """One learner's network memory: an actor and ``n_critics`` critics of ``hidden_sizes``, each
    held five times (weights, gradients, two Adam moments, a target copy), and one minibatch of
    activations through them (forward and backward). An upper bound for the algorithms here."""
    hidden = list(cfg.hidden_sizes)
    nets = 1 + int(getattr(cfg, "n_critics", 1))
    params = mlp_params([spec.obs_dim, *hidden, 2 * spec.act_dim])
    params += (nets - 1) * mlp_params([spec.obs_dim + spec.act_dim, *hidden, 1])
    batch = int(getattr(cfg, "batch_size", 1))
    activations = 4 * nets * batch * sum(hidden)
    return FLOAT * (5 * params + activations)


def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2 memory limit (containers, CI), if there is one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def available(device: torch.device) -> tuple[int, int] | None:
    """(free, total) bytes for new allocations on ``device``, or None where it cannot be told."""
    if device.type == "cuda":
        gpu_free, gpu_total = torch.cuda.mem_get_info(device)
        return int(gpu_free), int(gpu_total)
    free, total = _meminfo("MemAvailable"), _meminfo("MemTotal")
    if free is None or total is None:
        return None
    room = _cgroup_room()
    return (min(free, room) if room is not None else free), total


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError("unreachable")


def check_fits(parts: dict[str, int], device: torch.device, reserved: dict[str, int] | None = None) -> None:
    """Refuse when the estimated bytes of ``parts`` (name → bytes the run will touch) exceed the free
    memory, or one allocation of ``reserved`` (name → bytes reserved at once, e.g. the whole replay
    buffer, whose pages are touched only as it fills) exceeds all of the device's memory."""
    room = available(device)
    if room is None:
        return
    where = "this GPU" if device.type == "cuda" else "this machine"
    for name, size in (reserved or {}).items():
        if size > room[1]:
            raise SoftacError(
                f"the {name} would need {human(size)}, more than all of {where}'s memory ({human(room[0])} "
                f"available of {human(room[1])}): lower --buffer-size"
            )
    need = sum(parts.values())
    if need <= room[0]:
        return
    what = " and ".join(f"the {name} ({human(b)})" for name, b in parts.items() if b > 0)
    raise SoftacError(
        f"{what} would need about {human(need)}, more than {where} has ({human(room[0])} available of "
        f"{human(room[1])}): lower --buffer-size or --hidden-sizes"
    )
