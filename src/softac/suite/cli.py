"""``softac suite NAME --out DIR ...`` and ``softac suite report DIR [--out REPORT_DIR]``."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softac.cli.args import seeds_arg
from softac.errors import SoftacError
from softac.suite import record
from softac.suite.precheck import check_cells, check_numbers, check_ray
from softac.suite.report import write_report
from softac.suite.results import write_results
from softac.suite.runner import run_cells, threads
from softac.suite.spec import EXTERNAL, SUITES, VARIANTS, Cell, expand
from softac.suite.stop import Stop


def _csv(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:  # `--algos ,` launched the whole default suite
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def ray_cells(address: str) -> Any:
    """``softac.suite.ray_cells``, imported only for --ray: Ray is an optional extra and slow to import."""
    try:
        from softac.suite import ray_cells as module
    except ImportError:
        raise SoftacError(f"--ray {address} needs Ray Tune: pip install 'softac[ray]'") from None
    return module


def _report(argv: Sequence[str], parser_cls: type[argparse.ArgumentParser]) -> int:
    p = parser_cls(prog="softac suite report", description="Render a suite's results.csv")
    p.add_argument("dir", type=Path, help="the suite directory (its results.csv)")
    p.add_argument("--out", type=Path, default=None, help="report directory of its own (default: DIR/report)")
    p.add_argument("--markdown", action="store_true", help="also print the README table (table.md) to stdout")
    p.add_argument("--step", type=int, default=None,
                   help="read every cell at this step (cells short of it are left out and named)")  # fmt: skip
    a = p.parse_args(argv)
    if a.step is not None and a.step <= 0:
        raise SoftacError(f"--step must be a positive number of environment steps, got {a.step}")
    out = write_report(a.dir, a.out, step=a.step)
    if a.markdown:
        print((out.parent / "table.md").read_text(), end="")
    print(f"report: {out}", file=sys.stderr if a.markdown else sys.stdout)
    return 0


def _parser(parser_cls: type[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    what = (
        "Run a named benchmark suite (each cell: softac train --seeds); flags after -- go to every "
        "softac train; `softac suite report DIR` renders the results"
    )
    p = parser_cls(prog="softac suite", description=what)
    p.add_argument("name", help=f"the suite: {', '.join(SUITES)}")
    p.add_argument("--out", type=Path, required=True,
                   help="the suite directory: new or empty (the suite marks it as its own), or, with --resume, "
                   "one it made")  # fmt: skip
    variants = ", ".join((*VARIANTS, *EXTERNAL))
    p.add_argument("--algos", type=_csv, default=None, metavar="A,B",
                   help=f"algorithm variants (default: the suite's; any of {variants})")  # fmt: skip
    p.add_argument("--envs", type=_csv, default=None, metavar="E1,E2", help="tasks of the suite (default: all of them)")
    p.add_argument("--seeds", type=seeds_arg, default=tuple(range(10)), metavar="S",
                   help="seeds of every cell, e.g. 0-4 or 0,3,9 (default: 0-9), learners of one process")  # fmt: skip
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="environment steps per run (default: the suite's, e.g. 100000 for mujoco-100k)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="cells run side by side (default: 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for every cell (default: cpu)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per cell (default: cores // --jobs; 1 is faster for small nets)")  # fmt: skip
    p.add_argument("--resume", action="store_true",
                   help="continue the suite already in --out (its recorded arguments must be repeated)")  # fmt: skip
    p.add_argument("--extend", action="store_true",
                   help="with --resume: add the --algos/--envs given to the suite's own (its other arguments "
                   "repeated); its cells and rows are all kept")  # fmt: skip
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the cells as Ray Tune trials on this cluster (HOST:PORT or auto; 'local': a new "
                   "instance here)")  # fmt: skip
    return p


def main(argv: Sequence[str], parser_cls: type[argparse.ArgumentParser]) -> int:
    if argv and argv[0] == "report":
        return _report(argv[1:], parser_cls)
    command = list(argv)
    extra: list[str] = []
    if "--" in argv:
        i = list(argv).index("--")
        argv, extra = list(argv[:i]), list(argv[i + 1 :])
    a = _parser(parser_cls).parse_args(argv)
    # Everything is checked before the suite directory is written or a cell starts.
    cells, skipped = expand(a.name, a.algos, a.envs)
    budget = SUITES[a.name][1] if a.budget is None else a.budget
    check_numbers(budget, a.jobs, a.threads)
    if not cells:
        why = "; ".join(f"{k}: {w}" for k, w in skipped.items()) or "no cell matches"
        raise SoftacError(f"nothing to run in suite {a.name} ({why})")
    check_ray(a.ray)
    n_threads = a.threads or threads(a.jobs)
    asked = {"suite": a.name, "algos": a.algos if a.algos is not None else list(SUITES[a.name][2]),
             "envs": a.envs if a.envs is not None else list(SUITES[a.name][0]), "seeds": list(a.seeds),
             "budget": budget, "device": a.device, "extra": extra, "cells": [c.key for c in cells],
             "skipped": skipped}  # fmt: skip
    if a.extend and not a.resume:
        raise SoftacError("--extend adds cells to the suite in --out: pass --resume with it")
    existing = record.check_out(a.out, a.resume)
    if existing and a.extend:
        cells, skipped = _extended(a, asked)
    if existing:
        record.check_resume(a.out, asked, extending=a.extend)
        record.check_paths(a.out, [c.key for c in cells])
    elif a.extend:
        raise SoftacError(f"--extend: {a.out} holds no suite to extend; drop --extend to start one there")
    check_cells(cells, list(a.seeds), budget, a.device, n_threads, extra)
    if not existing or a.extend:
        record.create(a.out, asked)
    for key, why in skipped.items():
        print(f"cell {key}: skipped ({why})")
    stop = Stop()
    if a.ray is None:
        stop.install()
        try:
            states = run_cells(a.out, cells, list(a.seeds), budget, a.device, a.jobs, extra, a.threads, stop)
        finally:
            stop.restore()
    else:
        states = ray_cells(a.ray).run_cells_ray(a.out, cells, list(a.seeds), budget, a.device, n_threads, extra,
                                                a.ray, stop)  # fmt: skip
    done = [c for c in cells if states[c.key].get("status") == "done"]
    write_results(a.out, done, list(a.seeds), budget)
    if stop.signum is not None:
        print(stopped_line(stop.signum, a.out, cells, states, command), file=sys.stderr)
        return 128 + stop.signum
    print(f"results: {a.out / 'results.csv'} ({len(done)} of {len(cells)} cells done)")
    for c in cells:
        if states[c.key].get("status") != "done":
            print(f"cell {c.variant} on {c.env_id}: not done: {states[c.key].get('reason', 'not run')}")
    return 0 if len(done) == len(cells) else 1


def _extended(a: argparse.Namespace, asked: dict[str, Any]) -> tuple[list[Cell], dict[str, str]]:
    """``--resume --extend``: the recorded algorithms and tasks plus those given (in ``asked``, updated);
    the cells of the union. The other arguments must still equal the recorded ones (check_resume)."""
    saved = record.read(a.out)
    for key, given in (("algos", a.algos), ("envs", a.envs)):
        asked[key] = saved[key] + [x for x in (given or []) if x not in saved[key]]
    cells, skipped = expand(a.name, asked["algos"], asked["envs"])
    asked.update(cells=[c.key for c in cells], skipped=skipped)
    return cells, skipped


def stopped_line(signum: int, out: Path, cells: list[Cell], states: dict[str, dict[str, Any]],
                 command: list[str]) -> str:  # fmt: skip
    """The one line a signal ends the suite with: what each interrupted cell saved, and how to go on."""
    saved = []
    for c in cells:
        s = states[c.key]
        if s.get("status") == "interrupted":
            step = s.get("saved_step")
            saved.append(f"{c.variant} on {c.env_id} " + (f"at step {step}" if step is not None else
                                                            "nothing yet (it restarts from step 0)"))  # fmt: skip
    done = sum(states[c.key].get("status") == "done" for c in cells)
    again = shlex.join(["softac", "suite", *command, *([] if "--resume" in command else ["--resume"])])
    if "--" in command and "--resume" not in command:
        i = command.index("--")
        again = shlex.join(["softac", "suite", *command[:i], "--resume", *command[i:]])
    return (
        f"softac: suite stopped by {signal.Signals(signum).name}; checkpoints saved: {', '.join(saved) or 'none'}; "
        f"{done} of {len(cells)} cells done ({out / 'results.csv'}); continue with: {again}"
    )
