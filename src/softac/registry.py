"""The one registry of algorithms, at the ground floor (DESIGN.md principle 9).

Each algorithm module registers itself when it is imported (``softac.algos`` imports them all):
its name, config class, agent class, the action spaces it supports and its training family. The
CLI, the checkpoint loader and the benchmarks look algorithms up here, so none of them imports a
concrete algorithm and adding one touches no list anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softac.errors import SoftacError

FAMILIES = ("off-policy", "on-policy")


@dataclass(frozen=True)
class AlgoInfo:
    name: str  # the --algo value and the "algo" of config.json / state.json
    config_cls: type[Any]
    agent_cls: type[Any]
    action_spaces: tuple[str, ...]  # gymnasium space class names: "Box", "Discrete"
    family: str  # "off-policy" (collect → buffer → updates) or "on-policy" (rollout → epochs)
    summary: str = ""


_REGISTRY: dict[str, AlgoInfo] = {}


def register(info: AlgoInfo) -> None:
    if info.family not in FAMILIES:
        raise ValueError(f"unknown family {info.family!r} for {info.name}")
    if info.name in _REGISTRY and _REGISTRY[info.name] != info:
        raise ValueError(f"algorithm {info.name!r} registered twice")
    _REGISTRY[info.name] = info


def get(name: object) -> AlgoInfo:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise SoftacError(f"unknown algorithm {name!r}: choose one of {', '.join(names())}")
    return _REGISTRY[name]


def names() -> list[str]:
    return list(_REGISTRY)


def for_action_space(space_name: str) -> list[str]:
    """Algorithms that support a gymnasium action space class (for error messages)."""
    return [n for n, info in _REGISTRY.items() if space_name in info.action_spaces]
