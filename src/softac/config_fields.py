"""How a config field is declared and checked: its metadata (help text, range check, choices), the
type check that converts a value to the field's canonical type, and ``env_kwargs``' JSON-only
values. Kept apart from :mod:`softac.config` (the fields themselves) so each file reads as one job."""

from __future__ import annotations

import math
import numbers
import types
import typing
from dataclasses import field
from typing import Any

from softac.errors import SoftacError

# Why: seeds ≥ 2**64 and ints ≥ 2**63 crashed in torch/numpy; every integer field is bounded.
MAX_SEED, MAX_INT = 2**32 - 1, 2**62
# Range checks by name: a predicate and the error message ({name}, {kind}, {value} filled in).
_CHECKS: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "positive": (lambda v: v > 0, "{name} must be a positive {kind}, got {value!r}"),
    "non-negative": (lambda v: v >= 0, "{name} must be a non-negative {kind}, got {value!r}"),
    "probability": (lambda v: 0.0 <= v <= 1.0, "{name} must be in [0, 1], got {value!r}"),
    "fraction": (lambda v: 0.0 < v <= 1.0, "{name} must be in (0, 1], got {value!r}"),
    # Adam's β: a moment that keeps no past (β = 1) never moves from its zero start (torch refuses it).
    "beta": (lambda v: 0.0 <= v < 1.0, "{name} must be in [0, 1), got {value!r}"),
    "seed": (lambda v: 0 <= v <= MAX_SEED, "{name} must be an integer in [0, 4294967295], got {value!r}"),
    "threads": (lambda v: 0 <= v <= 1024, "{name} must be an integer in [0, 1024] (0: one per core), got {value!r}"),
    "any": (lambda v: True, ""),
}


def _f(default: Any, help: str, check: str = "any", choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "check": check, "choices": choices})


def is_integer(value: Any) -> bool:
    """An integer as the API takes counts and sizes: any ``numbers.Integral`` (``int``, NumPy's and
    PyTorch-free integer scalars such as ``np.int64(150)``, which ``learn`` refused), never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _type_name(hint: Any) -> str:
    """What a field takes, as the error line says it ("gamma must be a number")."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if hint is str:
        return "a string"
    return "a tuple of positive integers"


# ``env_kwargs``: keyword arguments for ``gymnasium.make``, held as sorted (key, value) pairs so the
# frozen config stays hashable; ``to_dict`` writes them as a JSON object. Values are JSON data
# (numbers, strings, true/false, null, lists): they are passed to the environment's constructor,
# never evaluated (rl-zoo3 ``eval``s its --env-kwargs; a file or a flag must not run code here).
Kwargs = tuple[tuple[str, Any], ...]
_JSON_SCALARS = (str, int, float, bool, type(None))
# Runs that plan this many gradient updates compile their update by default on the CPU
# (``BaseConfig.compiles``). Measured on the project's 2-core machine (2026-12-04): SAC's
# HalfCheetah update takes 7.5 ms compiled against 11.6 ms eager (256×256, batch 256, 2 threads),
# and compiling costs ≈ 26 s the first time and ≈ 7 s once Inductor's on-disk cache holds the
# graph. 50,000 updates save ≈ 200 s for those ≤ 26 s; a 100k-step SAC run (99,000 updates)
# compiles, a 20k-step Pendulum run or PPO's 100k-step CartPole preset (7,820 updates) does not.
COMPILE_AUTO_UPDATES = 50_000


def _json_value(value: Any, depth: int = 0) -> Any:
    # NumPy scalars (``max_episode_steps=np.int64(500)``) as the plain numbers JSON records.
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
        value = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, float, int)):
        value = float(value)
    if isinstance(value, _JSON_SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not finite")
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise ValueError(f"{value} is out of range (at most 2**62 in size)")
        return value
    if isinstance(value, (list, tuple)):
        if depth >= 16:  # Why: deep nesting ended in a RecursionError traceback
            raise ValueError("lists nested more than 16 deep")
        return tuple(_json_value(v, depth + 1) for v in value)
    raise ValueError(f"{value!r} is not a number, string, true/false, null or list")


def _check_kwargs(name: str, value: Any) -> Kwargs:
    pairs = value.items() if isinstance(value, dict) else value
    try:
        out = []
        for pair in pairs:
            key, item = pair
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"{key!r} is not a keyword name")
            out.append((key, _json_value(item)))
    except (TypeError, ValueError) as exc:
        raise SoftacError(f"{name} must map keyword names to JSON values ({exc})") from None
    steps = dict(out).get("max_episode_steps")  # Why: -1 made evaluation never end (a hang)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0):
        raise SoftacError(f"{name}: max_episode_steps must be a positive integer (or null), got {steps!r}")
    keys = [k for k, _ in out]
    if len(set(keys)) != len(keys):
        raise SoftacError(f"{name} names a keyword twice: {', '.join(sorted(keys))}")
    return tuple(sorted(out))


def kwargs_to_json(pairs: Kwargs) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return [plain(x) for x in v] if isinstance(v, tuple) else v

    return {k: plain(v) for k, v in pairs}


def _check_type(name: str, hint: Any, value: Any) -> Any:
    """The value converted to the field's canonical type, or a SoftacError naming the field."""
    if hint == Kwargs:
        return _check_kwargs(name, value)
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    ok = False
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = is_integer(value)
        value = int(value) if ok else value
    elif hint is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif typing.get_origin(hint) is tuple:
        ok = isinstance(value, (tuple, list)) and all(is_integer(v) for v in value)
        value = tuple(int(v) for v in value) if ok else value
    if not ok:
        raise SoftacError(f"{name} must be {_type_name(hint)}, got {value!r} ({type(value).__name__})")
    return value


def check_sizes(name: str, value: tuple[int, ...]) -> None:
    """A tuple of layer widths (``hidden_sizes``, ``critic_hidden_sizes``): at least one, each a
    positive integer below 2**62. The error names the field given, whichever it is."""
    if not value or any(h <= 0 for h in value):
        raise SoftacError(f"{name} must be one or more positive integers, got {' '.join(map(str, value)) or 'none'}")
    if any(h > MAX_INT for h in value):
        raise SoftacError(f"{name} must be integers below 2**62, got {' '.join(map(str, value))}")


def check_first_rows(cfg: Any) -> None:
    """The first update finds a row to learn from. With n-step returns a transition enters the
    replay buffer only after n_step steps of its episode (or at the episode's end, which only comes
    sooner), so after n_step − 1 steps of every environment no update may be owed
    (``cfg.updates_owed``, the agent's own schedule); otherwise the run would stop part-way with
    "cannot update from an empty replay buffer". Refused naming both fixes."""
    n, starts = cfg.n_step, cfg.learning_starts
    if n <= 1 or cfg.updates_owed(n - 1, starts) == 0:
        return
    lo, hi = starts, (n - 1) * cfg.n_envs  # owed at lo, none at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if cfg.updates_owed(n - 1, mid) == 0 else (mid, hi)
    short, long = 1, n  # none owed with n_step = short, some with long
    while long - short > 1:
        mid = (short + long) // 2
        short, long = (mid, long) if cfg.updates_owed(mid - 1, starts) == 0 else (short, mid)
    envs = f" of each of its {cfg.n_envs} environments" if cfg.n_envs > 1 else ""
    raise SoftacError(
        f"n_step {n} with learning_starts {starts}: the first update would come before the first n-step row is "
        f"stored (after {n} steps of an episode{envs}), and the run would stop with 'cannot update from an empty "
        f"replay buffer': use learning_starts={hi} or more, or n_step={short} or less"
    )
