"""The commands other than ``train``: ``softac eval|plot|presets|compare|sweep|export|bench``.
Each parses its own flags and returns an exit code; ``softac.cli.main`` turns errors into one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

from softac import preset_apply
from softac.cli.args import Parser, allow_import_flag, int_arg
from softac.errors import SoftacError
from softac.io.load import load_agent
from softac.train.signals import SignalFlag


def cmd_eval(argv: Sequence[str]) -> int:
    from softac.evaluate import EVAL_SEED_OFFSET, EvaluationStopped, evaluate

    p = Parser(prog="softac eval", description="Evaluate a saved policy deterministically.")
    p.add_argument("path", type=Path, help="run directory (newest checkpoint), checkpoint directory or batched run")
    p.add_argument("--episodes", type=int_arg, default=10, help="episodes to run (default: 10)")
    p.add_argument("--seed", type=int_arg, default=None, help="first episode's reset seed (default: as in training)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    allow_import_flag(p)
    args = p.parse_args(argv)
    if args.episodes <= 0:
        raise SoftacError(f"--episodes must be a positive integer, got {args.episodes}")
    if args.seed is not None and args.seed < 0:
        raise SoftacError(f"--seed must be a non-negative integer, got {args.seed}")
    with SignalFlag() as flag:
        agent = load_agent(args.path, device=args.device, allow_import=args.allow_import)
        envs = agent.env_source.evaluation_envs(agent.learners)
        seeds = [args.seed if args.seed is not None else s + EVAL_SEED_OFFSET for s in agent.seeds]
        success = np.full((agent.learners, args.episodes), np.nan)
        try:
            returns = evaluate(agent, envs, args.episodes, seeds, stop=flag.stopped, success=success)
        except EvaluationStopped:
            returns = None
        if returns is None or flag.signum is not None:
            assert flag.signum is not None
            print(f"softac: eval interrupted by {flag.name()} before its {args.episodes} episodes ended; no result "
                  "(eval writes nothing, so nothing was changed)", file=sys.stderr)  # fmt: skip
            return 128 + flag.signum
    for k, seed in enumerate(agent.seeds):
        who = f" (seed {seed})" if agent.learners > 1 else ""
        print(
            f"{agent.algo} on {agent.config.env_id} at step {agent.env_steps}{who}: mean return "
            f"{returns[k].mean():.2f} ± {returns[k].std():.2f} over {args.episodes} episodes"
            + success_text(success[k])
        )
    return 0


def success_text(flags: np.ndarray) -> str:
    """``; success rate 0.80 (8 of 10 episodes)`` for the episodes that reported a success flag
    (``softac.success``), or nothing when none did."""
    reported = flags[np.isfinite(flags)]
    if reported.size == 0:
        return ""
    return f"; success rate {reported.mean():.2f} ({reported.sum():g} of {reported.size} episodes)"


def cmd_plot(argv: Sequence[str]) -> int:
    from softac.analysis.plot import STATS, plot_runs, resolve_out

    p = Parser(prog="softac plot", description="Draw learning curves of any set of runs: one panel per "
                "environment, one line per algorithm; several seeds as their mean (or IQM) with a 95% "
                "bootstrap confidence band.")  # fmt: skip
    p.add_argument("run_dirs", type=Path, nargs="+", help="run directories and/or multi-seed directories (seed_*)")
    p.add_argument("--out", default=None, help="image path; no extension: .png; a directory: DIR/learning_curve(s).png "
                   "(default: DIR/learning_curve.png for one directory, else ./learning_curves.png)")  # fmt: skip
    p.add_argument("--stat", choices=STATS, default="mean", help="line of several seeds (default: mean)")
    p.add_argument("--title", default=None)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    out = resolve_out(args.out, args.run_dirs[0] if len(args.run_dirs) == 1 else None)
    print(plot_runs(args.run_dirs, out, args.title, stat=args.stat))
    return 0


def cmd_presets(argv: Sequence[str]) -> int:
    p = Parser(prog="softac presets", description="The per-(algorithm, environment) presets `softac train` "
                "applies by default, with their sources.")  # fmt: skip
    p.add_argument("--algo", default=None, help="only this algorithm's")
    p.add_argument("--env", default=None, help="only this environment's, with every value and the note")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    print(preset_apply.table(args.algo, args.env))
    return 0


def cmd_compare(argv: Sequence[str]) -> int:
    from softac.analysis.compare import main as compare_main

    return compare_main(argv, Parser)


def cmd_suite(argv: Sequence[str]) -> int:
    from softac.suite.cli import main as suite_main

    return suite_main(argv, Parser)


def cmd_sweep(argv: Sequence[str]) -> int:
    from softac.sweep.cli import main as sweep_main

    return sweep_main(argv, Parser)


def cmd_export(argv: Sequence[str]) -> int:
    from softac.export import FORMATS, export_policy, signature

    p = Parser(prog="softac export", description="Write the deterministic policy for use without softac.")
    p.add_argument("path", type=Path, help="run directory (newest checkpoint), checkpoint directory or batched run")
    p.add_argument("--format", choices=FORMATS, required=True, help="onnx (run with onnxruntime) or torchscript")
    p.add_argument("--out", type=Path, required=True, help="the file to write")
    p.add_argument("--seed", type=int_arg, default=None, help="which seed of a batched run (default: the first)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    allow_import_flag(p)
    args = p.parse_args(argv)
    agent = load_agent(args.path, device="cpu", allow_import=args.allow_import)
    if args.seed is not None and args.seed not in agent.seeds:
        seeds = ", ".join(map(str, agent.seeds))
        raise SoftacError(f"--seed {args.seed} is not a seed of {args.path} (seeds: {seeds})")
    k = agent.seeds.index(args.seed) if args.seed is not None else 0
    out = export_policy(agent, args.out, args.format, k, overwrite=args.overwrite)
    print(f"wrote {out}: the deterministic {agent.algo} policy of seed {agent.seeds[k]} at step {agent.env_steps} "
          f"({signature(agent)})")
    return 0


def cmd_bench(argv: Sequence[str]) -> int:
    from softac.bench import main as bench_main

    # Why: an unknown --env failed in the timing subprocess with its traceback; checked here first.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default=None)
    pre.add_argument("--worker", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.env and not known.worker and ":" not in known.env:
        try:
            gym.spec(known.env)
        except Exception as exc:  # gymnasium raises several error types for an unknown id
            raise SoftacError(f"unknown environment '{known.env}': {exc}") from None

    return bench_main(list(argv))
