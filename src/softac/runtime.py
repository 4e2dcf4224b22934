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


def parse_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    try:
        out = tuple(seeds)
    except TypeError:
        raise SoftacError(f"seeds must be a list of non-negative integers, got {seeds!r}") from None
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in out):
        raise SoftacError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(out)) != len(out):
        raise SoftacError(f"seeds must be distinct, got {list(out)}")
    return out
