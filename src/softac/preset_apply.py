"""Applying the presets of ``softac.presets`` to a run: which preset, the values it sets, what the
user overrode, and the record kept in ``config.json``.

The order is defaults < preset < what the user gave: a preset replaces the config's defaults for
the fields it names, and every field given explicitly (a CLI flag, a keyword argument) replaces
the preset's value. The CLI applies the preset of (algorithm, environment) by default
(``--preset auto``); the Python API only when asked (``DQN("CartPole-v1", preset="auto")``), so
a script's config never changes under it when a preset is added or edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from softac.errors import SoftacError
from softac.presets import ALLOWED_FIELDS, Preset, get_preset, list_presets

CHOICES = ("auto", "none")


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class AppliedPreset:
    """A preset as applied to one run."""

    name: str  # "ALGO/ENV_ID"
    source: str
    values: Mapping[str, Any]  # every value of the preset (those overridden included)
    overridden: tuple[str, ...]  # fields given explicitly, whose preset value was not used

    def record(self) -> dict[str, Any]:
        """What ``config.json`` keeps under "preset" (the config itself holds the resolved values)."""
        return {
            "name": self.name, "source": self.source,
            "values": {k: _json(v) for k, v in self.values.items()}, "overridden": list(self.overridden),
        }  # fmt: skip

    def line(self) -> str:
        """One line for the start of a run: the preset, its source, the values it set."""
        used = ", ".join(f"{k}={_show(v)}" for k, v in self.values.items() if k not in self.overridden)
        text = f"softac: preset {self.name} ({self.source}): {used}"
        if self.overridden:
            text += f"; overridden by your settings: {', '.join(self.overridden)}"
        return text


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return repr(value) if isinstance(value, str) else str(value)


def resolve(
    algo: str, env_id: str, choice: str | None, given: Mapping[str, Any]
) -> tuple[dict[str, Any], AppliedPreset | None]:
    """The config values to use (the preset's, then ``given`` over them) and the preset applied.
    ``choice``: "auto" (the preset of (algo, env_id) if there is one) or "none"/None (no preset)."""
    if choice is None or choice == "none":
        return dict(given), None
    if choice != "auto":
        raise SoftacError(f"preset must be one of {', '.join(map(repr, CHOICES))}, got {choice!r}")
    preset = get_preset(algo, env_id) if algo in ALLOWED_FIELDS else None
    if preset is None:
        return dict(given), None
    overridden = tuple(k for k in preset.params if k in given)
    applied = AppliedPreset(f"{algo}/{env_id}", preset.source, preset.params, overridden)
    return {**preset.params, **given}, applied


def table(algo: str | None = None, env_id: str | None = None) -> str:
    """``softac presets``: one row per preset (algorithm, environment, budget, source); with
    ``env_id`` each matching preset's values and note in full."""
    if algo is not None and algo not in ALLOWED_FIELDS:
        raise SoftacError(f"no presets for algorithm {algo!r}: presets exist for {', '.join(sorted(ALLOWED_FIELDS))}")
    presets = [p for p in list_presets(algo) if env_id is None or p.env_id == env_id]
    if not presets:
        raise SoftacError(f"no preset for {algo or 'any algorithm'} on {env_id}")
    if env_id is not None:
        return "\n\n".join(_full(p) for p in presets)
    rows = [("algo", "env", "total_steps", "source")]
    rows += [(p.algo, p.env_id, str(p.params.get("total_steps", "")), p.source) for p in presets]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)), r[3]]) for r in rows]
    lines.append("(`softac presets --algo ALGO --env ENV` shows a preset's values and note; `softac train` "
                 "applies the preset of its --algo and --env unless --preset none)")  # fmt: skip
    return "\n".join(lines)


def _full(p: Preset) -> str:
    values = "\n".join(f"  {k} = {_show(v)}" for k, v in sorted(p.params.items()))
    note = f"\n  note: {p.note}" if p.note else ""
    return f"{p.algo}/{p.env_id}  ({p.source})\n{values}{note}"
