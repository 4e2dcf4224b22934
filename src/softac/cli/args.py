"""Argument parsing shared by the ``softac`` commands: config fields as flags, typed values, one
clear line for a bad argument (``SoftacError``, exit 2)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from softac.config import BaseConfig, Kwargs
from softac.errors import SoftacError
from softac.io.files import loads_json
from softac.runtime import MAX_LEARNERS, MAX_SEED, parse_seeds

# A negative number argparse takes for a flag: it knows only -5 and -.5 (`--gamma -inf` was "expected one argument").
_NEGATIVE = re.compile(r"^-(inf|infinity|nan|\d[\d_]*\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?)$", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if args is not None:
            out: list[str] = []
            for tok in args:
                prev = out[-1] if out else ""
                if _NEGATIVE.match(tok) and prev.startswith("--") and "=" not in prev:
                    out[-1] = f"{prev}={tok}"  # `--gamma=-inf`: the value, whatever it looks like
                else:
                    out.append(tok)
            args = out
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        raise SoftacError(f"{message} (see `{self.prog} --help`)")


def run_dir_arg(text: str) -> Path:
    """A directory path; an empty one (``--run-dir ""``) meant the current directory without a word."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a directory path, got an empty string")
    return Path(text)


def int_arg(text: str) -> int:
    """Integers also as 1e6 or 1_000_000."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not math.isfinite(value) or not value.is_integer():
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        return int(value)


def kwarg_arg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of --env-kwargs: VALUE as JSON if it parses (2.0, true, null, [1, 2], "x"),
    else as the string itself. Never evaluated as Python (rl-zoo3 ``eval``s it)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, loads_json(value)
    except ValueError as exc:
        if "nested too deeply" in str(exc):
            raise argparse.ArgumentTypeError(f"{key}: its JSON value is nested too deeply") from None
        return key, value


def allow_import_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-import", action="append", default=[], metavar="MODULE",
        help="allow the run's environment id (module:EnvId) to import MODULE; loading never imports a "
        "module a file names unless you name it here",
    )  # fmt: skip


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, cls: type[BaseConfig]) -> None:
    """One flag per field; defaults are suppressed so we can tell which flags were given."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} (every field of the config)")
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        default = f.default
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": f.name}
        if hint is bool or hint == (bool | None):
            group.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, **kwargs)
        elif hint == Kwargs:
            group.add_argument(flag_name(f.name), type=kwarg_arg, nargs="+", metavar="KEY=VALUE", **kwargs)
        elif hint == tuple[int, ...]:
            group.add_argument(flag_name(f.name), type=int_arg, nargs="+", metavar="N", **kwargs)
        elif hint is int:
            group.add_argument(flag_name(f.name), type=int_arg, metavar="N", **kwargs)
        elif hint is float or hint == (float | None):
            group.add_argument(flag_name(f.name), type=float, metavar="X", **kwargs)
        else:
            group.add_argument(flag_name(f.name), type=str, metavar="S", **kwargs)
    parser.add_argument("--env", dest="env_id", default=argparse.SUPPRESS, help="alias of --env-id")


def seeds_arg(text: str) -> tuple[int, ...]:
    """``0-7``, ``0,3,9`` or a mix (``0-3,8``) → distinct non-negative seeds, in the order given."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                if hi - lo >= MAX_LEARNERS or hi > MAX_SEED:  # checked before the list is built
                    raise argparse.ArgumentTypeError(
                        f"seed range {part!r}: at most {MAX_LEARNERS} seeds, each in [0, {MAX_SEED}]"
                    )
                out += range(lo, hi + 1)
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0-7 or 0,3,9, got {text!r}") from None
    try:
        return parse_seeds(out)
    except SoftacError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
