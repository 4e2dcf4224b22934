"""``softac train``: train an agent, or continue a run (``--resume DIR``). Every config field is a
flag, generated from the dataclasses of the registered algorithms (``softac.registry``)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import softac.algos  # noqa: F401  (registers every algorithm)
from softac import preset_apply, registry
from softac.analysis.stats import aggregate
from softac.cli.args import Parser, add_config_flags, allow_import_flag, flag_name, run_dir_arg, seeds_arg
from softac.envs import module_of
from softac.errors import SoftacError
from softac.io.load import load_agent, restart_agent
from softac.io.lock import RunLock
from softac.io.rundir import NoCheckpoint, batched_seeds, holds_run
from softac.logging import read_progress
from softac.train import Interrupted
from softac.train.carry import pending_evaluation
from softac.train.plan import no_update_reason

# Fields that only say how to run, not what is learned: these may change when a run is resumed.
RUN_FIELDS = {
    "total_steps", "eval_freq", "eval_episodes", "log_freq", "checkpoint_freq", "keep_checkpoints",
    "device", "threads", "fast_update", "compile_update", "cuda_graph",
}  # fmt: skip


def _algo_of(argv: Sequence[str]) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", default=None)
    known, _ = pre.parse_known_args(argv)
    algo = str(known.algo) if known.algo else "sac"
    if algo not in registry.names():
        raise SoftacError(f"unknown --algo '{algo}': choose one of {', '.join(registry.names())}")
    return algo


def build_train_parser(algo: str) -> argparse.ArgumentParser:
    info = registry.get(algo)
    p = Parser(prog="softac train", description="Train an agent; every config field is a flag.")
    p.add_argument("--algo", choices=registry.names(), default="sac", help="algorithm (default: sac)")
    p.add_argument(
        "--run-dir", type=run_dir_arg, default=None, help="output directory (default: runs/ALGO-ENV-sSEED-TIME)"
    )
    p.add_argument("--resume", type=run_dir_arg, default=None, metavar="DIR", help="continue the run in DIR")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --run-dir")
    p.add_argument(
        "--seeds", type=seeds_arg, default=None, metavar="S",
        help="train several seeds in one process, e.g. 0-7 or 0,3,9: one learner each, updated together; "
        "the run directory gets one seed_<s>/ per seed plus summary.csv",
    )  # fmt: skip
    p.add_argument(
        "--preset", choices=preset_apply.CHOICES, default=None,
        help="auto (default): start from the preset of --algo on --env where there is one (`softac presets` "
        "lists them), every flag given overriding its value; none: the config's plain defaults",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    allow_import_flag(p)
    add_config_flags(p, info.config_cls)
    return p


def cmd_train(argv: Sequence[str]) -> int:
    algo = _algo_of(argv)
    info = registry.get(algo)
    args = build_train_parser(algo).parse_args(argv)
    fields = {f.name for f in dataclasses.fields(info.config_cls)}
    given = {k: v for k, v in vars(args).items() if k in fields}
    if "hidden_sizes" in given:
        given["hidden_sizes"] = tuple(given["hidden_sizes"])
    # Conflicting inputs are refused: ignoring one of them (as was done) let the other silently win.
    if args.seeds is not None and "seed" in given:
        raise SoftacError("--seeds and --seed conflict: give --seeds S (several learners) or --seed S (one), not both")
    if args.resume is not None and args.overwrite:
        raise SoftacError("--resume continues a run and --overwrite replaces one: give one of them, not both")
    if args.resume is not None:
        resumed = _resume(args, given, argv)
        if resumed is None:
            return 0
        run_dir = resumed
    else:
        agent = info.agent_cls(seeds=args.seeds, preset=args.preset or "auto", **given)
        agent.seed_dirs = args.seeds is not None  # --seeds 7: DIR/seed_7/ as --help says (io.rundir.seed_layout)
        config = agent.config
        _refuse_no_update(agent, given)
        if agent.preset is not None:
            print(agent.preset.line(), flush=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        seed_tag = f"s{config.seed}" if args.seeds is None else f"seeds{args.seeds[0]}-{args.seeds[-1]}"
        run_dir = args.run_dir or Path("runs") / f"{algo}-{config.env_id}-{seed_tag}-{stamp}"
        try:
            agent.learn(run_dir=run_dir, progress=not args.no_progress, overwrite=args.overwrite)
        except Interrupted as exc:
            exc.resume_with = f"softac train --resume {shlex.quote(str(run_dir))}"
            raise
    _print_result(Path(run_dir))
    return 0


def _refuse_no_update(agent: Any, given: dict[str, Any]) -> None:
    """A run that would make no gradient update is refused unless the user gave both numbers (then
    the training shell warns): see ``softac.train.plan``."""
    cfg = agent.config
    if no_update_reason(cfg) is None:  # first: an on-policy config has no learning_starts
        return
    needed = {"total_steps", "learning_starts"} | ({"utd_ratio"} if cfg.total_steps > cfg.learning_starts else set())
    if needed <= set(given):
        return
    preset = agent.preset.values if agent.preset is not None else {}

    def value(name: str) -> str:
        where = "" if name in given else f", from the {agent.preset.name} preset" if name in preset else ", the default"
        return f"{flag_name(name)} {getattr(cfg, name)}{where}"

    if cfg.total_steps <= cfg.learning_starts:
        what = f"{value('total_steps')} ends before learning starts ({value('learning_starts')})"
        fix = f"--total-steps above {cfg.learning_starts} or --learning-starts below {cfg.total_steps}"
    else:
        what = f"{value('utd_ratio')} owes no update after learning starts ({value('learning_starts')})"
        fix = "a larger --utd-ratio or --total-steps"
    names = [flag_name(n) for n in ("total_steps", "learning_starts", "utd_ratio") if n in needed]
    anyway = ", ".join(names[:-1]) + " and " + names[-1]
    raise SoftacError(f"this run would make no gradient update: {what}; pass {fix} (or give {anyway} explicitly "
                      "to run it anyway)")  # fmt: skip


def _resume(args: argparse.Namespace, given: dict[str, Any], argv: Sequence[str]) -> Path | None:
    """``--resume``: continue the run, restart one that never reached a checkpoint (its run
    directory), or say that a finished one has nothing to do (None: exit 0 at once, so that a
    scheduler's retries are idempotent)."""
    # --env naming the run's own environment is allowed (and is consent to import its module).
    env_id = given.pop("env_id", None)
    locked = sorted(set(given) - RUN_FIELDS)
    if locked or args.seeds is not None or args.preset is not None:
        extra = (["--seeds"] if args.seeds is not None else []) + (["--preset"] if args.preset is not None else [])
        flags = ", ".join([flag_name(k) for k in locked] + extra)
        raise SoftacError(f"--resume continues a run with its saved config; {flags} cannot be changed")
    allow = [*args.allow_import, *filter(None, [module_of(env_id) if env_id else None])]
    explicit_algo = args.algo if "--algo" in argv or any(a.startswith("--algo=") for a in argv) else None
    expect = {"algo": explicit_algo, "env_id": env_id}
    run_dir: Path = args.run_dir or args.resume
    if (args.resume / "state.json").is_file():  # a checkpoint directory inside runs/X/checkpoints
        run_dir = args.run_dir or args.resume.parent.parent
    # Locked before the run is read: a second process must be refused at once, not read a
    # checkpoint that the first one is pruning. Only what is already a run is locked (a lock file
    # in a directory that is not a run would be a change to it).
    lock = RunLock(run_dir).acquire() if holds_run(run_dir) else None
    try:
        return _resume_locked(args, given, allow, expect, run_dir)
    finally:
        if lock is not None:
            lock.release()


def _resume_locked(
    args: argparse.Namespace, given: dict[str, Any], allow: list[str], expect: dict[str, Any], run_dir: Path
) -> Path | None:
    explicit_algo = expect["algo"]
    overwrite = False
    try:
        agent = load_agent(args.resume, device=given.get("device"), expect=expect, allow_import=allow)
    except NoCheckpoint:
        if not (args.resume / "config.json").is_file() and batched_seeds(args.resume) is None:
            raise
        agent = restart_agent(args.resume, given.get("device"), allow)
        if explicit_algo is not None and agent.algo != explicit_algo:
            raise SoftacError(f"{args.resume} holds a {agent.algo} run, not {explicit_algo}") from None
        print(f"softac: note: {args.resume} has no checkpoint (it stopped before its first); restarting it from "
              "step 0 with its saved config", file=sys.stderr)  # fmt: skip
        # Only the run being restarted may be replaced: --run-dir elsewhere must be empty or new.
        overwrite = run_dir.resolve() == args.resume.resolve()
    agent.config = agent.config.replace(**given)
    # A signal during the final evaluation leaves it owed: the resume does it (softac.train.carry).
    if agent.env_steps >= agent.config.total_steps and not pending_evaluation(agent.resume_state):
        print(f"softac: {args.resume} is already at step {agent.env_steps} of {agent.config.total_steps}: nothing "
              "to do (pass a larger --total-steps to extend it)", file=sys.stderr)  # fmt: skip
        return None
    if not overwrite:
        print(f"softac: resuming {agent.algo} on {agent.config.env_id} at step {agent.env_steps} in {run_dir}",
              file=sys.stderr)  # fmt: skip
    try:
        agent.learn(run_dir=run_dir, progress=not args.no_progress, overwrite=overwrite)  # type: ignore[attr-defined]
    except Interrupted as exc:
        exc.resume_with = f"softac train --resume {shlex.quote(str(run_dir))}"
        raise
    return run_dir


def _print_result(run_dir: Path) -> None:
    """One line per seed, and for several seeds one line across them: the mean of the final
    evaluation returns with its 95% bootstrap interval over seeds (``softac.analysis.stats.aggregate``)."""
    seeds = batched_seeds(run_dir)
    dirs = [run_dir] if seeds is None else [run_dir / f"seed_{s}" for s in seeds]
    finals: list[tuple[int, float]] = []
    for d in dirs:
        rows = read_progress(d / "progress.csv") if (d / "progress.csv").is_file() else []
        if rows:
            last = rows[-1]
            mean, std = float(last["eval_return_mean"]), float(last["eval_return_std"])
            rate = last.get("eval_success_rate")
            success = f", success rate {float(rate):.2f}" if rate not in (None, "", "nan") else ""
            finals.append((int(last["step"]), mean))
            print(f"step {last['step']}: eval return {mean:.1f} ± {std:.1f}{success}  (run directory: {d})")
    if len(finals) > 1:
        agg = aggregate([r for _, r in finals])
        steps = sorted({s for s, _ in finals})
        at = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}-{steps[-1]}"
        ci = f"[{agg['mean_ci_low']:.1f}, {agg['mean_ci_high']:.1f}]"
        print(f"{agg['n']} seeds at {at}: final eval return mean {agg['mean']:.1f}, 95% CI {ci} (bootstrap over "
              f"seeds; every evaluation: {run_dir / 'summary.csv'})")  # fmt: skip
