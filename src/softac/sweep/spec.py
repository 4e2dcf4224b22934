"""What a sweep is: its specification (``SWEEP/sweep.json``), parsed and checked before Ray starts.

Value syntax, shared by config flags, ``--grid`` and ``--space``: integers as ``256`` or ``1e6``,
floats as ``3e-4``, booleans as ``true``/``false``, ``hidden_sizes`` as ``64x64`` (widths joined
by ``x``; ``64x64,256x256`` is a grid of two), ``none`` for an optional float.

- ``--grid NAME=V1,V2,...`` (repeatable): the cross product of all grids is the set of settings.
  A setting's directory name joins its values: ``actor_lr=1e-4+batch_size=128`` (``default``
  without a grid); a trial is ``SWEEP/<env>/<setting>/seed_<k>/``.
- ``--space NAME=KIND:ARGS`` (with ``--search optuna``): ``loguniform:LOW:HIGH``,
  ``uniform:LOW:HIGH`` (float fields), ``int:LOW:HIGH``, ``logint:LOW:HIGH`` (integer fields,
  both ends included), ``choice:V1,V2,...`` (any field). A trial is
  ``SWEEP/<env>/trial_<tune trial id>/seed_<k>/``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import softac.algos  # noqa: F401  (registers every algorithm)
from softac import registry
from softac.errors import SoftacError
from softac.io.files import loads_json
from softac.logging import SUCCESS_FIELDS
from softac.preset_apply import resolve as resolve_preset
from softac.runtime import MAX_LEARNERS, MAX_SEED
from softac.sweep.values import check_env, check_reports_success, env_kwargs_value

SPEC_FILE = "sweep.json"
SPEC_VERSION = 1
AXES = {"env_id": "--env", "seed": "--seeds"}  # config fields that are sweep axes, not values
SPACE_KINDS = ("loguniform", "uniform", "int", "logint", "choice")


def config_class(algo: str) -> Any:
    """The config dataclass of an algorithm, from the registry."""
    if algo not in registry.names():
        raise SoftacError(f"unknown --algo '{algo}': choose one of {', '.join(registry.names())}")
    return registry.get(algo).config_cls


def field_types(algo: str) -> dict[str, Any]:
    cls = config_class(algo)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_value(algo: str, name: str, text: str) -> Any:
    """A config value from its text (see the module docstring); a clear error otherwise."""
    types = field_types(algo)
    if name in AXES:
        raise SoftacError(f"{name} is a sweep axis: give it with {AXES[name]}, not as a value")
    if name not in types:
        close = [n for n in types if n.startswith(name[:4])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise SoftacError(f"unknown {algo} config field '{name}'{hint}")
    hint, raw = types[name], text.strip()
    if name == "env_kwargs":
        return env_kwargs_value(raw)
    try:
        if hint is bool or hint == (bool | None):
            if hint is not bool and raw.lower() == "none":
                return None
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if hint is int:
            value = float(raw)
            if not value.is_integer():
                raise ValueError
            return int(value)
        if hint is float or hint == (float | None):
            if hint is not float and raw.lower() == "none":
                return None
            return float(raw)
        if hint == tuple[int, ...]:
            return tuple(int(h) for h in re.split(r"[x ]", raw))
        return raw
    except (ValueError, OverflowError):
        kind = {bool: "true or false", bool | None: "true, false or none", int: "an integer",
                tuple[int, ...]: "widths like 64x64"}.get(hint, "a number")  # fmt: skip
        raise SoftacError(f"invalid value for {name}: {text!r} (expected {kind})") from None


def parse_seeds(text: str) -> list[int]:
    """``0-4`` (both ends included), ``0,3,9`` or a mix such as ``0-2,7``."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise SoftacError(f"invalid --seeds '{text}': use a range like 0-4 or a list like 0,3,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        # Why: 0-99999999999999999999 built the list until memory ran out; same bounds as train's.
        if hi > MAX_SEED or len(seeds) + hi - lo + 1 > MAX_LEARNERS:
            raise SoftacError(f"--seeds '{text}': at most {MAX_LEARNERS} seeds, each in [0, {MAX_SEED}]")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise SoftacError(f"--seeds '{text}' names a seed twice")
    return seeds


def _split_assignment(text: str, flag: str) -> tuple[str, str]:
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise SoftacError(f"invalid {flag} '{text}': use {flag} NAME=VALUES (e.g. actor_lr=1e-4,3e-4)")
    return name.strip().replace("-", "_"), values.strip()


@dataclass
class SweepSpec:
    """Everything a sweep needs; JSON round-trips through ``SWEEP/sweep.json``."""

    algo: str
    envs: list[str]
    seeds: list[int]
    config: dict[str, str] = field(default_factory=dict)  # fixed fields, as text
    grid: dict[str, list[str]] = field(default_factory=dict)  # as text, in the order given
    search: dict[str, Any] | None = None  # {"trials", "metric", "mode", "space", "pruner", "seed"}
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    # "auto": each run starts from the preset of (algo, its environment), as `softac train` does;
    # the fixed config and the grid override it. "none" is the default here (not in the CLI) so that
    # a sweep.json written before presets existed resumes with the values it started with.
    preset: str = "none"
    version: int = SPEC_VERSION

    # -- checks ---------------------------------------------------------------------------------
    def given_values(self) -> dict[str, Any]:
        """The fixed config fields as given, and the trial's thread count."""
        values = {k: parse_value(self.algo, k, v) for k, v in self.config.items()}
        # Why: threads=0 means "one per core of the machine", and every trial on the machine would
        # take all of them; a trial gets the CPUs Ray reserves for it.
        values.setdefault("threads", max(1, int(self.cpus_per_trial)))
        return values

    def run_values(self, env_id: str, setting: dict[str, Any]) -> dict[str, Any]:
        """Every field a run on ``env_id`` with ``setting`` sets: the preset's (with ``preset``
        "auto"), then the fixed config, then the setting; ``total_steps`` always."""
        values, _ = resolve_preset(self.algo, env_id, self.preset, {**self.given_values(), **setting})
        values.setdefault("total_steps", config_class(self.algo)().total_steps)
        return values

    def settings(self) -> list[tuple[str, dict[str, Any]]]:
        """(directory name, values) of every grid setting, in the cross-product order."""
        axes = []
        for name, texts in self.grid.items():
            parsed = [parse_value(self.algo, name, t) for t in texts]
            if len(set(map(repr, parsed))) != len(parsed):
                raise SoftacError(f"--grid {name} names the same value twice")
            axes.append([(name, t, v) for t, v in zip(texts, parsed, strict=True)])
        out = []
        for combo in itertools.product(*axes):
            label = "+".join(f"{n}={t}" for n, t, _ in combo).replace(os.sep, "_") or "default"
            out.append((label, {n: v for n, _, v in combo}))
        return out

    def check_config(self, values: dict[str, Any], where: str) -> None:
        cls = config_class(self.algo)
        for env_id in self.envs:
            try:
                cls(**{**self.run_values(env_id, values), "env_id": env_id}).validate()
            except SoftacError as exc:
                raise SoftacError(f"{where}: {exc}") from None

    def validate(self) -> None:
        """Every problem a trial would hit at its start that does not depend on the machine, found
        now (before Ray starts); ``softac.sweep.precheck`` builds the trials' agents on top."""
        config_class(self.algo)
        if not self.envs:
            raise SoftacError("give at least one --env")
        if not self.seeds:
            raise SoftacError("give at least one seed with --seeds")
        for env_id in self.envs:
            check_env(self.algo, env_id)
        if self.preset not in ("auto", "none"):
            raise SoftacError(f"--preset must be auto or none, got {self.preset!r}")
        finite = all(math.isfinite(v) for v in (self.cpus_per_trial, self.gpus_per_trial))  # nan passed `<= 0`
        if not finite or self.cpus_per_trial <= 0 or self.gpus_per_trial < 0 or self.max_failures < 0:
            raise SoftacError("--cpus-per-trial must be positive, --gpus-per-trial and --max-failures non-negative")
        for name, texts in self.grid.items():
            if not texts or any(not t.strip() for t in texts):
                raise SoftacError(f"--grid {name} has an empty value; give VALUES separated by commas")
        if self.search is None:
            for label, values in self.settings():
                self.check_config(values, f"setting {label}")
            return
        if self.grid:
            raise SoftacError("--grid and --search do not mix: give the searched fields with --space")
        if len(self.envs) != 1:
            raise SoftacError("--search tunes on one environment (returns of different tasks have different scales)")
        if self.search["trials"] <= 0:
            raise SoftacError(f"--trials must be a positive integer, got {self.search['trials']}")
        if not self.search["space"]:
            raise SoftacError("--search needs at least one --space NAME=KIND:ARGS")
        for name, text in self.search["space"].items():
            for value in space_bounds(self.algo, name, text):
                self.check_config({name: value}, f"--space {name}={text}")
        if self.search["metric"] in SUCCESS_FIELDS:  # probed last: it runs the environment for an episode
            env_id = self.envs[0]
            check_reports_success(env_id, self.run_values(env_id, {}).get("env_kwargs"), self.search["metric"])

    # -- files ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepSpec:
        if data.get("version") != SPEC_VERSION:
            raise SoftacError(f"sweep.json has version {data.get('version')}; this softac reads {SPEC_VERSION}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise SoftacError(f"sweep.json is not a softac sweep specification ({exc})") from None


def space_bounds(algo: str, name: str, text: str) -> list[Any]:
    """The values a ``--space`` entry can reach at its ends (or all of a choice), checked."""
    kind, _, args = text.partition(":")
    hint = field_types(algo).get(name)
    if kind not in SPACE_KINDS:
        raise SoftacError(f"--space {name}={text}: unknown kind '{kind}'; use one of {', '.join(SPACE_KINDS)}")
    if kind == "choice":
        values = [parse_value(algo, name, v) for v in args.split(",")] if args else []
        if not values:
            raise SoftacError(f"--space {name}={text}: give choice:V1,V2,...")
        return values
    ends = args.split(":")
    if len(ends) != 2:
        raise SoftacError(f"--space {name}={text}: use {kind}:LOW:HIGH")
    lo, hi = (parse_value(algo, name, e) for e in ends)
    wanted = int if kind in ("int", "logint") else float
    if hint not in ((int,) if wanted is int else (float, float | None)) or lo is None or hi is None:
        other = "int:LOW:HIGH or logint:LOW:HIGH" if hint is int else "uniform:LOW:HIGH or loguniform:LOW:HIGH"
        raise SoftacError(f"--space {name}={text}: {name} is not a {wanted.__name__} field; use {other} or choice")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise SoftacError(f"--space {name}={text}: LOW must be smaller than HIGH")
    if kind.startswith("log") and lo <= 0:
        raise SoftacError(f"--space {name}={text}: a log scale needs LOW > 0")
    return [lo, hi]


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_spec(sweep_dir: Path) -> SweepSpec:
    path = Path(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise SoftacError(f"{sweep_dir} has no {SPEC_FILE}; is it a softac sweep directory?")
    try:
        data = loads_json(path.read_text())
    except (OSError, ValueError) as exc:
        raise SoftacError(f"cannot read {path}: {exc}") from None
    return SweepSpec.from_json(data)
