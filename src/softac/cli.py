"""``softac train|eval|plot|compare|sweep|bench``. Every config field is a flag, generated from the
dataclasses of the registered algorithms (``softac.registry``).

Exit codes: 0 success, 2 bad input (one line on stderr; ``--debug`` shows the traceback),
3 training diverged, 130/143 interrupted by SIGINT/SIGTERM after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import softac.algos  # noqa: F401  (registers every algorithm)
from softac import preset_apply, registry
from softac.algos.base import parse_seeds
from softac.config import BaseConfig
from softac.errors import DivergenceError, SoftacError
from softac.io.load import load_agent
from softac.io.rundir import batched_seeds
from softac.logging import read_progress
from softac.train import Interrupted

# Fields that only say how to run, not what is learned: these may change when a run is resumed.
RUN_FIELDS = {
    "total_steps", "eval_freq", "eval_episodes", "log_freq", "checkpoint_freq", "keep_checkpoints",
    "device", "threads", "fast_update", "compile_update", "cuda_graph",
}  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise SoftacError(f"{message} (see `{self.prog} --help`)")


def _int(text: str) -> int:
    """Integers also as 1e6 or 1_000_000."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        return int(value)


def _flag(name: str) -> str:
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
        if hint is bool:
            group.add_argument(_flag(f.name), action=argparse.BooleanOptionalAction, **kwargs)
        elif hint == tuple[int, ...]:
            group.add_argument(_flag(f.name), type=_int, nargs="+", metavar="N", **kwargs)
        elif hint is int:
            group.add_argument(_flag(f.name), type=_int, metavar="N", **kwargs)
        elif hint is float or hint == (float | None):
            group.add_argument(_flag(f.name), type=float, metavar="X", **kwargs)
        else:
            group.add_argument(_flag(f.name), type=str, metavar="S", **kwargs)
    parser.add_argument("--env", dest="env_id", default=argparse.SUPPRESS, help="alias of --env-id")


def _algo_of(argv: Sequence[str]) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", default=None)
    known, _ = pre.parse_known_args(argv)
    algo = str(known.algo) if known.algo else "sac"
    if algo not in registry.names():
        raise SoftacError(f"unknown --algo '{algo}': choose one of {', '.join(registry.names())}")
    return algo


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
                out += range(lo, hi + 1)
            else:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0-7 or 0,3,9, got {text!r}") from None
    try:
        return parse_seeds(out)
    except SoftacError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_train_parser(algo: str) -> argparse.ArgumentParser:
    info = registry.get(algo)
    p = _Parser(prog="softac train", description="Train an agent; every config field is a flag.")
    p.add_argument("--algo", choices=registry.names(), default="sac", help="algorithm (default: sac)")
    p.add_argument("--run-dir", type=Path, default=None, help="output directory (default: runs/ALGO-ENV-sSEED-TIME)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR", help="continue the run in DIR")
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
    if args.resume is not None:
        locked = sorted(set(given) - RUN_FIELDS)
        if locked or args.seeds is not None or args.preset is not None:
            extra = (["--seeds"] if args.seeds is not None else []) + (["--preset"] if args.preset is not None else [])
            flags = ", ".join([_flag(k) for k in locked] + extra)
            raise SoftacError(f"--resume continues a run with its saved config; {flags} cannot be changed")
        explicit_algo = args.algo if "--algo" in argv or any(a.startswith("--algo=") for a in argv) else None
        agent = load_agent(args.resume, device=given.get("device"), expect={"algo": explicit_algo})
        agent.config = agent.config.replace(**given)
        run_dir = args.run_dir or args.resume
        if (args.resume / "state.json").is_file():  # a checkpoint directory inside runs/X/checkpoints
            run_dir = args.run_dir or args.resume.parent.parent
        print(f"softac: resuming {agent.algo} on {agent.config.env_id} at step {agent.env_steps} in {run_dir}",
              file=sys.stderr)  # fmt: skip
        agent.learn(run_dir=run_dir, progress=not args.no_progress)  # type: ignore[attr-defined]
    else:
        agent = info.agent_cls(seeds=args.seeds, preset=args.preset or "auto", **given)
        config = agent.config
        if agent.preset is not None:
            print(agent.preset.line(), flush=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        seed_tag = f"s{config.seed}" if args.seeds is None else f"seeds{args.seeds[0]}-{args.seeds[-1]}"
        run_dir = args.run_dir or Path("runs") / f"{algo}-{config.env_id}-{seed_tag}-{stamp}"
        agent.learn(run_dir=run_dir, progress=not args.no_progress, overwrite=args.overwrite)
    _print_result(Path(run_dir))
    return 0


def _print_result(run_dir: Path) -> None:
    seeds = batched_seeds(run_dir)
    dirs = [run_dir] if seeds is None else [run_dir / f"seed_{s}" for s in seeds]
    for d in dirs:
        rows = read_progress(d / "progress.csv") if (d / "progress.csv").is_file() else []
        if rows:
            last = rows[-1]
            mean, std = float(last["eval_return_mean"]), float(last["eval_return_std"])
            print(f"step {last['step']}: eval return {mean:.1f} ± {std:.1f}  (run directory: {d})")


def cmd_eval(argv: Sequence[str]) -> int:
    from softac.envs import make_env
    from softac.evaluate import EVAL_SEED_OFFSET, evaluate

    p = _Parser(prog="softac eval", description="Evaluate a saved policy deterministically.")
    p.add_argument("path", type=Path, help="run directory (newest checkpoint), checkpoint directory or batched run")
    p.add_argument("--episodes", type=_int, default=10, help="episodes to run (default: 10)")
    p.add_argument("--seed", type=_int, default=None, help="first episode's reset seed (default: as in training)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    if args.episodes <= 0:
        raise SoftacError(f"--episodes must be a positive integer, got {args.episodes}")
    if args.seed is not None and args.seed < 0:
        raise SoftacError(f"--seed must be a non-negative integer, got {args.seed}")
    agent = load_agent(args.path, device=args.device)
    envs = [make_env(agent.config.env_id) for _ in agent.seeds]
    seeds = [args.seed if args.seed is not None else s + EVAL_SEED_OFFSET for s in agent.seeds]
    returns = evaluate(agent, envs, args.episodes, seeds)
    for k, seed in enumerate(agent.seeds):
        who = f" (seed {seed})" if agent.learners > 1 else ""
        print(
            f"{agent.algo} on {agent.config.env_id} at step {agent.env_steps}{who}: mean return "
            f"{returns[k].mean():.2f} ± {returns[k].std():.2f} over {args.episodes} episodes"
        )
    return 0


def cmd_plot(argv: Sequence[str]) -> int:
    from softac.plot import STATS, plot_runs, resolve_out

    p = _Parser(prog="softac plot", description="Draw learning curves of any set of runs: one panel per "
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
    p = _Parser(prog="softac presets", description="The per-(algorithm, environment) presets `softac train` "
                "applies by default, with their sources.")  # fmt: skip
    p.add_argument("--algo", default=None, help="only this algorithm's")
    p.add_argument("--env", default=None, help="only this environment's, with every value and the note")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    print(preset_apply.table(args.algo, args.env))
    return 0


def cmd_compare(argv: Sequence[str]) -> int:
    from softac.compare import main as compare_main

    return compare_main(argv, _Parser)


def cmd_sweep(argv: Sequence[str]) -> int:
    from softac.sweep.cli import main as sweep_main

    return sweep_main(argv, _Parser)


def cmd_bench(argv: Sequence[str]) -> int:
    from softac.bench import main as bench_main

    return bench_main(list(argv))


COMMANDS = {
    "train": cmd_train, "eval": cmd_eval, "plot": cmd_plot, "compare": cmd_compare, "sweep": cmd_sweep,
    "bench": cmd_bench, "presets": cmd_presets,
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not argv:
        argv = ["train"]  # `softac` alone trains SAC on Pendulum-v1
    if argv[0] in ("-h", "--help"):
        print(f"usage: softac {{{','.join(COMMANDS)}}} [options]  (softac COMMAND --help for each)")
        return 0
    command = argv[0]
    try:
        if command not in COMMANDS:
            raise SoftacError(f"unknown command '{command}': use one of {', '.join(COMMANDS)}")
        return COMMANDS[command](argv[1:])
    except (SoftacError, DivergenceError) as exc:
        if debug:
            raise
        print(f"softac: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"softac: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # Why: Ctrl-C outside the training loop's signal guard (building the agent, `softac eval`,
        # drawing the figure) printed a KeyboardInterrupt traceback; exit 130 with one line instead.
        if debug:
            raise
        print("softac: interrupted (nothing was saved by this command)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
