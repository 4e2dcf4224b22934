"""``softac sweep``: parse and check the sweep specification, save it, hand it to Ray Tune."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softac.envs import check_import_allowed
from softac.errors import SoftacError
from softac.sweep.precheck import SweepTerminated, catch_sigterm, precheck, terminated
from softac.sweep.spec import (
    AXES,
    SPEC_FILE,
    SweepSpec,
    config_class,
    field_types,
    parse_seeds,
    read_spec,
    write_json_atomic,
)

INSTALL = 'softac sweep runs on Ray Tune, which is not installed: pip install "softac[ray]"'
# Flags that say where and how to run, not what: they may change on --resume.
RUN_FLAGS = {
    "address", "cpus_per_trial", "gpus_per_trial", "max_failures", "no_progress", "debug", "resume", "allow_import",
}  # fmt: skip


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser(parser_class: type[argparse.ArgumentParser], algo: str) -> argparse.ArgumentParser:
    p = parser_class(
        prog="softac sweep",
        description="Train environments × settings × seeds as Ray Tune trials (locally, or on a cluster with "
        "--address), or search hyper-parameters with Optuna. Each run is a normal softac run directory.",
    )
    a = p.add_argument
    a("--algo", default="sac", help="algorithm (default: sac)")
    a("--env", dest="envs", action="append", default=[], metavar="ENV_ID", help="environment (repeatable)")
    a("--seeds", default="0", help="seeds: a range 0-4 (both ends included) or a list 0,3,9 (default: 0)")
    a("--grid", action="append", default=[], metavar="NAME=V1,V2", help="values of one config field (repeatable; "
      "the cross product of all grids is run); hidden_sizes as 64x64")  # fmt: skip
    a("--out", type=Path, default=None, metavar="SWEEP", help="sweep directory (new, or empty)")
    a("--resume", type=Path, default=None, metavar="SWEEP", help="continue the sweep in SWEEP (skips finished runs)")
    a("--address", default=None, help="Ray cluster: auto (the `ray start` cluster on this machine), HOST:6379 or "
      "ray://HOST:10001 (default: a local Ray instance sized to this machine)")  # fmt: skip
    a("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves per trial, also its threads (default: 1)")
    a("--gpus-per-trial", type=float, default=0.0, help="GPUs per trial, fractions allowed (default: 0)")
    a("--max-failures", type=int, default=2, help="retries of a trial whose worker died (default: 2)")
    a("--search", choices=["optuna"], default=None, help="search hyper-parameters instead of a grid")
    a("--trials", type=int, default=20, help="trials of the search (default: 20)")
    a("--space", action="append", default=[], metavar="NAME=KIND:ARGS",
      help="searched field: loguniform:LO:HI, uniform:LO:HI, int:LO:HI, logint:LO:HI or choice:V1,V2 (repeatable)")
    a("--metric", default="eval_return_mean", help="progress.csv column to optimise, its final value averaged over "
      "the seeds (default: eval_return_mean; eval_success_rate where the environment reports success)")  # fmt: skip
    a("--mode", choices=["max", "min"], default="max", help="maximise or minimise --metric (default: max)")
    a("--pruner", choices=["none", "median", "asha"], default="none",
      help="stop weak trials after their first seeds (needs several --seeds; default: none)")
    a("--search-seed", type=int, default=0, help="seed of the Optuna sampler (default: 0)")
    a("--preset", choices=["auto", "none"], default="auto", help="auto (default): each run starts from the preset "
      "of --algo on its environment, as `softac train` does (`softac presets` lists them), the config flags and "
      "the grid overriding it; none: the config's plain defaults")  # fmt: skip
    a("--allow-import", action="append", default=[], metavar="MODULE", help="with --resume: allow the module:EnvId "
      "environments sweep.json names to import MODULE (loading never imports a module a file names)")  # fmt: skip
    a("--no-progress", action="store_true", help="no progress bar (one line per finished trial stays)")
    a("--debug", action="store_true", help="show tracebacks")
    group = p.add_argument_group("config fields, applied to every trial (values as for --grid)")
    for name, hint in field_types(algo).items():
        if name in AXES:
            continue
        kw: dict[str, Any] = {"dest": f"cfg_{name}", "default": argparse.SUPPRESS}
        if hint is bool or hint == (bool | None):
            group.add_argument(_flag(name), action=argparse.BooleanOptionalAction, **kw)
        else:
            many = hint == tuple[int, ...] or name == "env_kwargs"  # widths; KEY=VALUE pairs
            group.add_argument(_flag(name), nargs="+" if many else None, metavar="V", **kw)
    return p


def spec_from_args(args: argparse.Namespace) -> SweepSpec:
    config: dict[str, str] = {}
    for key, value in vars(args).items():
        if key.startswith("cfg_"):
            joint = " " if key == "cfg_env_kwargs" else "x"  # KEY=VALUE pairs; widths as 64x64
            config[key[4:]] = joint.join(value) if isinstance(value, list) else str(value).lower() if isinstance(
                value, bool) else value  # fmt: skip
    grid: dict[str, list[str]] = {}
    for text in args.grid:
        name, _, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not _ or not name:
            raise SoftacError(f"invalid --grid '{text}': use --grid NAME=V1,V2 (e.g. actor_lr=1e-4,3e-4)")
        if name in grid or name in config:
            raise SoftacError(f"{name} is given twice (in --grid and/or as a flag)")
        grid[name] = [v.strip() for v in values.split(",")]
    search = None
    if args.search:
        space = {}
        for text in args.space:
            name, eq, rule = text.partition("=")
            if not eq or not name.strip():
                raise SoftacError(f"invalid --space '{text}': use NAME=KIND:ARGS (e.g. actor_lr=loguniform:1e-5:1e-3)")
            space[name.strip().replace("-", "_")] = rule.strip()
        from softac.logging import CSV_FIELDS, SUCCESS_FIELDS

        # The success columns exist only where the environment reports success: a trial without one
        # fails with a line saying so (softac.sweep.trial.metric_problem).
        if args.metric not in [*CSV_FIELDS, *SUCCESS_FIELDS] or args.metric in ("step", "wall_time_s"):
            raise SoftacError(f"unknown --metric '{args.metric}': use a progress.csv column such as eval_return_mean")
        search = {"trials": args.trials, "metric": args.metric, "mode": args.mode, "space": space,
                  "pruner": args.pruner, "seed": args.search_seed}  # fmt: skip
    elif args.space:
        raise SoftacError("--space needs --search optuna")
    return SweepSpec(
        algo=args.algo, envs=list(args.envs), seeds=parse_seeds(args.seeds), config=config, grid=grid, search=search,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
        preset=args.preset,
    )  # fmt: skip


def _given(argv: Sequence[str]) -> set[str]:
    return {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}


def prepare(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> tuple[SweepSpec, Path, Any]:
    """Parse, check and save the sweep (nothing of Ray yet). Returns (spec, out, args)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", default="sac")
    pre.add_argument("--resume", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    if known.resume is not None:
        spec = read_spec(known.resume)
        args = build_parser(parser_class, spec.algo).parse_args(argv)
        for env_id in spec.envs:  # before anything builds one: gymnasium imports a module:EnvId's module
            if isinstance(env_id, str):  # anything else is refused by validate()
                check_import_allowed(env_id, args.allow_import, str(known.resume / SPEC_FILE))
        locked = sorted(_given(argv) - RUN_FLAGS)
        if locked:
            flags = ", ".join(_flag(k) for k in locked)
            raise SoftacError(f"--resume continues the sweep saved in {SPEC_FILE}; {flags} cannot be given with it")
        given = _given(argv)
        for name in ("cpus_per_trial", "gpus_per_trial", "max_failures"):
            if name in given:
                setattr(spec, name, getattr(args, name))
        spec.validate()
        precheck(spec, local=args.address is None)
        write_json_atomic(known.resume / SPEC_FILE, spec.to_json())
        return spec, known.resume, args
    config_class(known.algo)
    args = build_parser(parser_class, known.algo).parse_args(argv)
    if args.out is None:
        raise SoftacError("give the sweep directory with --out SWEEP (or --resume SWEEP)")
    spec = spec_from_args(args)
    spec.validate()
    precheck(spec, local=args.address is None)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        what = "holds a sweep: continue it with --resume" if (args.out / SPEC_FILE).exists() else "is not empty"
        raise SoftacError(f"{args.out} {what}; choose a new --out")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / SPEC_FILE, spec.to_json())
    return spec, args.out, args


def main(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> int:
    previous = catch_sigterm()
    try:
        return _main(argv, parser_class)
    except SweepTerminated:  # before the sweep started (checking, building the trials' agents)
        print("softac: sweep interrupted by SIGTERM before it started; nothing ran", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> int:
    try:
        import ray  # noqa: F401  (only to tell early that it is missing)
    except ImportError:
        raise SoftacError(INSTALL) from None
    spec, out, args = prepare(argv, parser_class)
    from softac.sweep.runner import run_sweep

    try:
        result = run_sweep(spec, out, address=args.address, progress=not args.no_progress)
    except KeyboardInterrupt as exc:
        name, code = ("SIGTERM", 143) if terminated(exc) else ("SIGINT", 130)
        print(f"softac: sweep interrupted by {name}; continue it with: softac sweep --resume {out}", file=sys.stderr)
        return code
    print(f"summary: {out / 'summary.csv'}, figure: {out / 'summary.png'}")
    if result["best"] is not None:
        best = result["best"]
        print(f"best {best['metric']} {best['value']:.2f}: {best['config']}  ({out / 'best.json'})")
    if result["failed"]:
        print(f"softac: {len(result['failed'])} trial(s) failed (lines above); the others finished", file=sys.stderr)
        return 1
    return 0
