"""The machine's memory, and the refusal: whether an estimate fits, and if not, the field to lower
and the largest value of it that fits."""

from __future__ import annotations

import copy
import dataclasses
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from softac.errors import SoftacError


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


def _address_space() -> tuple[int, int] | None:
    """(room left, limit) under this process's address-space limit (``ulimit -v``), if it has one:
    an allocation beyond it fails however much memory the machine has free."""
    try:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None
    return None if limit == resource.RLIM_INFINITY else (max(0, limit - used), limit)


def available(device: torch.device) -> tuple[int, int] | None:
    """(free, total) bytes for new allocations on ``device``, or None where it cannot be told."""
    if device.type == "cuda":
        gpu_free, gpu_total = torch.cuda.mem_get_info(device)
        return int(gpu_free), int(gpu_total)
    free, total = _meminfo("MemAvailable"), _meminfo("MemTotal")
    if free is None or total is None:
        return None
    cgroup, space = _cgroup_room(), _address_space()
    if cgroup is not None:
        free = min(free, cgroup)
    if space is not None:
        free, total = min(free, space[0]), min(total, space[1])
    return free, total


def place(device: torch.device) -> str:
    return "this GPU" if device.type == "cuda" else "this machine"


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB"):
        if n < 1000 or unit == "ZB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError("unreachable")


def fits(parts: dict[str, int], reserved: dict[str, int], room: tuple[int, int]) -> bool:
    """Whether ``parts`` (name → bytes the run will touch) fit the free memory ``room[0]`` and each
    of ``reserved`` (name → one allocation reserved whole, touched as it fills: the replay buffer)
    fits all of the device's memory ``room[1]``."""
    return sum(parts.values()) <= room[0] and all(size <= room[1] for size in reserved.values())


# -- the refusal ---------------------------------------------------------------------------------
# Config fields that size a structure (ties in a refusal go to the earlier).
SIZE_FIELDS = (
    "dist_bins", "n_step", "buffer_size", "n_envs", "n_steps", "critic_hidden_sizes", "hidden_sizes",
    "simba_width_critic", "simba_width_actor", "simba_blocks_critic", "simba_blocks_actor", "batch_size",
    "minibatch_size", "n_critics",
)  # fmt: skip
# config → (bytes by part the run touches, single allocations reserved whole): ``fits``' arguments.
Estimate = Callable[[Any], tuple[dict[str, int], dict[str, int]]]


def _set(cfg: Any, name: str, value: int, check: bool = True) -> Any:
    """``cfg`` with field ``name`` at ``value`` (a tuple of widths: each capped at it); with
    ``check``, None where the config refuses that value (``batch_size`` above ``buffer_size``,
    ``minibatch_size`` not dividing the rollout). Unchecked, only for the estimate to read."""
    old = getattr(cfg, name)
    new = tuple(min(h, value) for h in old) if isinstance(old, tuple) else value
    if not check:
        out = copy.copy(cfg)
        object.__setattr__(out, name, new)
        return out
    try:
        return cfg.replace(**{name: new})
    except SoftacError:
        return None


def _size(value: Any) -> int:
    return max(value) if isinstance(value, tuple) else int(value)


def _largest_fitting(cfg: Any, name: str, estimate: Estimate, room: tuple[int, int]) -> int | None:
    """The largest value of ``name`` below today's with which the run fits (the other fields as
    given) and that the config accepts, None if there is none. Memory grows with each size, so
    the largest fitting value is a bisection; the config's own rules (``dist_bins`` ≥ 2,
    ``minibatch_size`` dividing the rollout) are then met by stepping down from it."""
    lo, hi = 0, _size(getattr(cfg, name))  # lo fits (or is 0), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(*estimate(_set(cfg, name, mid, check=False)), room) else (lo, mid)
    for value in range(lo, max(0, lo - 4096), -1):
        if _set(cfg, name, value) is not None:
            return value
    return None


def _shown(name: str, value: Any) -> str:
    return f"{name}={' '.join(map(str, value)) if isinstance(value, tuple) else value}"


def check_fits(cfg: Any, estimate: Estimate, room: tuple[int, int] | None, where: str = "this machine") -> None:
    """Refuse, in one line, a config whose structures (``estimate``) do not fit ``room`` = (free,
    total) bytes: what needs the most, the field to lower and the largest value of it that fits.
    The field named is, of those whose lowering alone makes the run fit, the one furthest above its
    default (the value the user most likely mistyped: ``dist_bins`` 10,000,000 against 101, not a
    ``batch_size`` of 256 that would also fit at 2)."""
    if room is None:
        return
    parts, reserved = estimate(cfg)
    if fits(parts, reserved, room):
        return
    too_big = [name for name, size in reserved.items() if size > room[1]]
    if too_big:
        head = (f"the {too_big[0]} would need {human(reserved[too_big[0]])}, more than all of {where}'s memory "
                f"({human(room[0])} available of {human(room[1])})")  # fmt: skip
    else:
        need = sum(parts.values())
        top = sorted(((b, n) for n, b in parts.items() if b >= need / 20), reverse=True)[:3]
        head = (f"{' and '.join(f'the {n} ({human(b)})' for b, n in top)} would need about {human(need)}, more "
                f"than {where} has ({human(room[0])} available of {human(room[1])})")  # fmt: skip
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    ranked = []  # (how far above its default, name)
    for name in (n for n in SIZE_FIELDS if n in fields):
        default = fields[name].default
        ranked.append((_size(getattr(cfg, name)) / max(1, _size(default)), -SIZE_FIELDS.index(name), name))
    for _, _, name in sorted(ranked, reverse=True):
        value = _largest_fitting(cfg, name, estimate, room)
        if value is not None:
            now, fit = getattr(cfg, name), getattr(_set(cfg, name, value), name)
            raise SoftacError(f"{head}: lower {name} (now {_shown(name, now)}); {_shown(name, fit)} fits")
    names = " and ".join(n for _, _, n in sorted(ranked, reverse=True)[:2]) or "the sizes"
    raise SoftacError(f"{head}: no single size lowered alone makes it fit; lower {names}, or use a machine with "
                      "more memory")


def check_growth(before: Any, cfg: Any, estimate: Estimate, room: tuple[int, int] | None, where: str) -> None:
    """A run extended past the budget it was checked with (``learn(total_steps)``, ``--resume
    --total-steps``) touches more of what it reserved (the replay buffer's rows): what it adds
    must fit the memory free now. Refused naming the largest ``total_steps`` that fits."""
    if room is None:
        return
    held = sum(estimate(before)[0].values())

    def growth(c: Any) -> int:
        return sum(estimate(c)[0].values()) - held

    if growth(cfg) <= room[0]:
        return
    lo, hi = before.total_steps, cfg.total_steps  # lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if growth(_set(cfg, "total_steps", mid, check=False)) <= room[0] else (lo, mid)
    raise SoftacError(f"total_steps={cfg.total_steps} would fill {human(growth(cfg))} more of the replay buffer than "
                      f"the run holds now, more than {where} has ({human(room[0])} available of {human(room[1])}): "
                      f"total_steps={lo} fits")  # fmt: skip
