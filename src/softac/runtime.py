"""Where and with which seeds an agent runs: the device named by the user, the seeds of its learners."""

from __future__ import annotations

from collections.abc import Iterable

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


# Issue 22: seeds of 2**64 and more ended in a traceback (numpy/torch seeding); ranges like
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
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in out):
        raise SoftacError(f"seeds must be a non-empty list of integers in [0, {MAX_SEED}], got {_short(out)}")
    if len(out) > MAX_LEARNERS:
        raise SoftacError(f"at most {MAX_LEARNERS} seeds fit in one process, got {len(out)}")
    if len(set(out)) != len(out):
        raise SoftacError(f"seeds must be distinct, got {list(out)}")
    return out
