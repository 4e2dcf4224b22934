"""What a suite's cells would refuse, refused before any cell starts and before the suite directory
is written: the budget, jobs and threads, the device, a ``--ray`` address, and the ``softac train``
flags after ``--``. Each softac cell's agent is built here as its ``softac train`` process builds it
(its preset, seeds, budget, device and flags: the config's range checks, the memory check, the
device check), as ``softac sweep`` does for its trials; nothing is trained and nothing is written."""

from __future__ import annotations

import argparse
import os
import re
import socket
from pathlib import Path
from typing import Any

import torch

from softac import preset_apply, registry
from softac.cli.args import Parser, add_config_flags, allow_import_flag
from softac.errors import SoftacError
from softac.runtime import resolve_device
from softac.suite.spec import EXTERNAL, EXTERNAL_FLAGS, VARIANTS, Cell

# Flags the suite sets for every cell; after -- they would contradict it (the train parser takes the last).
OWN = {"algo": "the cell's variant (--algos)", "env_id": "the cell's task (--envs)", "seed": "--seeds",
       "seeds": "--seeds", "total_steps": "--budget", "run_dir": "the suite's runs/ directory",
       "resume": "--resume", "overwrite": "a new --out", "device": "--device", "threads": "--threads"}  # fmt: skip
SB3_FLAGS = ("--eval-freq", "--eval-episodes", "--learning-starts", "--batch-size", "--hidden-sizes", "--tf32",
             "--checkpoint-freq", "--env-kwargs")  # fmt: skip
_HOST_PORT = re.compile(r"^(?:ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def check_numbers(budget: int, jobs: int, n_threads: int | None) -> None:
    for name, value in (("--budget", budget), ("--jobs", jobs), ("--threads", n_threads)):
        if value is not None and value < 1:
            raise SoftacError(f"{name} must be a positive integer, got {value}")


def check_ray(address: str | None) -> None:
    """``local``, ``auto`` or ``[ray://]HOST:PORT`` reachable now: refused in one line before Ray is
    imported (a bad address printed 20 lines of Ray's warnings, then its traceback)."""
    if address is None or address == "local":
        return
    if address == "auto":  # Ray's own lookup: $RAY_ADDRESS, else the cluster `ray start` left on this machine
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            # Where `ray start` records it (ray._common.utils.get_default_system_temp_dir).
            tmp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
            if not Path(tmp, "ray", "ray_current_cluster").is_file():
                raise SoftacError("--ray auto: no Ray cluster runs on this machine (start one with `ray start --head`, "
                                  "set RAY_ADDRESS, or use --ray local)")  # fmt: skip
            return
    m = _HOST_PORT.match(address)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise SoftacError(f"--ray {address!r} is not an address: give local, auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    host, port = m.group(1).strip("[]"), int(m.group(2))
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise SoftacError(f"cannot reach a Ray cluster at --ray {address} ({exc}): start it with `ray start "
                          "--head`, or use --ray local") from None  # fmt: skip


def check_device(device: str) -> str:
    """Refuse a device no cell could use (no CUDA, a GPU index this machine lacks); the device to
    build the prechecked agents on."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SoftacError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")  # fmt: skip
    return "cpu" if dev.type == "cuda" else device


def _train_parser(algo: str) -> argparse.ArgumentParser:
    """``softac train``'s flags for ``algo`` (the subset a suite's cells take after ``--``)."""
    p = Parser(prog="softac suite ... --", description="softac train flags for every cell", allow_abbrev=False)
    p.add_argument("--preset", choices=preset_apply.CHOICES, default=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    for flag, dest in (("--algo", "algo"), ("--run-dir", "run_dir"), ("--resume", "resume"), ("--seeds", "seeds")):
        p.add_argument(flag, dest=dest, default=argparse.SUPPRESS)
    p.add_argument("--overwrite", action="store_true", default=argparse.SUPPRESS)
    allow_import_flag(p)
    add_config_flags(p, registry.get(algo).config_cls)
    return p


def _given(algo: str, extra: list[str]) -> tuple[dict[str, Any], str]:
    """The config fields the flags after -- set for ``algo``, and the preset they ask for."""
    args = vars(_train_parser(algo).parse_args(extra))
    for dest, instead in OWN.items():
        if dest in args:
            flag = "--env" if dest == "env_id" else "--" + dest.replace("_", "-")
            raise SoftacError(f"{flag} after -- is set by the suite for each cell: use {instead} instead")
    preset = str(args.pop("preset", "auto"))
    fields = {f for f in registry.get(algo).config_cls.__dataclass_fields__}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if k in fields}
    return given, preset


def check_cells(cells: list[Cell], seeds: list[int], budget: int, device: str, n_threads: int,
                extra: list[str]) -> None:  # fmt: skip
    """Build every softac cell's agent as its process will (SoftacError naming the cell); check an
    external cell's flags against those it takes, and what its start refuses (``sb3_cell.check``). On
    a CUDA device the agents are built on the CPU (the device itself checked without allocating): a
    CUDA context in the suite process would hold GPU memory for as long as its cells run."""
    build_on = check_device(device)
    for cell in cells:
        where = f"cell {cell.variant} on {cell.env_id}"
        if cell.variant in EXTERNAL:
            bad = [t for t in extra if t.startswith("--") and t.split("=")[0] not in SB3_FLAGS]
            if bad:
                raise SoftacError(f"{where} does not take {' '.join(bad)} (a softac train flag SB3 has no counterpart "
                                  f"of): drop it, or run {cell.variant} in a suite of its own")  # fmt: skip
            from softac.suite.sb3_cell import check as check_sb3  # imported only for an SB3 cell

            try:  # its environment, settings and (sb3-sac-her) learning_starts against one episode
                check_sb3(cell.env_id, extra, "--her" in EXTERNAL_FLAGS.get(cell.variant, ()))
            except SoftacError as exc:
                raise SoftacError(f"{where}: {exc}") from None
            continue
        algo, overrides = VARIANTS[cell.variant]
        try:
            given, preset = _given(algo, extra)
            fields = {**overrides, **given, "total_steps": budget, "device": build_on, "threads": n_threads}
            registry.get(algo).agent_cls(cell.env_id, seeds=tuple(seeds), preset=preset, **fields)
        except SoftacError as exc:
            raise SoftacError(f"{where}: {exc}") from None
