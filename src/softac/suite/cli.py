"""``softac suite NAME --out DIR ...`` and ``softac suite report DIR [--out REPORT_DIR]``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softac.cli_args import seeds_arg
from softac.errors import SoftacError
from softac.suite.report import write_report
from softac.suite.results import write_results
from softac.suite.runner import run_cells, threads
from softac.suite.spec import SUITES, expand


def _csv(text: str) -> list[str]:
    return [t for t in text.split(",") if t]


def ray_cells(address: str) -> Any:
    """``softac.suite.ray_cells``, imported only for --ray: Ray is an optional extra and slow to import."""
    try:
        from softac.suite import ray_cells as module
    except ImportError:
        raise SoftacError(f"--ray {address} needs Ray Tune: pip install 'softac[ray]'") from None
    return module


def _report(argv: Sequence[str], parser_cls: type[argparse.ArgumentParser]) -> int:
    p = parser_cls(prog="softac suite report", description="Render a suite's results.csv")
    p.add_argument("dir", type=Path)
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


def main(argv: Sequence[str], parser_cls: type[argparse.ArgumentParser]) -> int:
    if argv and argv[0] == "report":
        return _report(argv[1:], parser_cls)
    extra: list[str] = []
    if "--" in argv:
        i = list(argv).index("--")
        argv, extra = list(argv[:i]), list(argv[i + 1 :])
    p = parser_cls(prog="softac suite", description="Run a named benchmark suite; flags after -- go to softac train")
    p.add_argument("name", help=f"one of {', '.join(SUITES)}")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--algos", type=_csv, default=None)
    p.add_argument("--envs", type=_csv, default=None)
    p.add_argument("--seeds", type=seeds_arg, default=tuple(range(10)))
    p.add_argument("--budget", type=int, default=None, help="steps per run (default: the suite's)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per cell (default: cores // --jobs; 1 is faster for small nets)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the suite already in --out")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="run the cells as Ray Tune trials on this cluster ('local': a new instance here)")  # fmt: skip
    a = p.parse_args(argv)
    cells, skipped = expand(a.name, a.algos, a.envs)
    budget = a.budget or SUITES[a.name][1]
    if a.jobs < 1 or budget < 1 or (a.threads is not None and a.threads < 1):
        raise SoftacError("--jobs, --budget and --threads must be positive")
    asked = {"suite": a.name, "algos": a.algos, "envs": a.envs, "seeds": list(a.seeds), "budget": budget,
             "device": a.device, "extra": extra, "skipped": skipped}  # fmt: skip
    spec = a.out / "suite.json"
    if spec.is_file():
        if not a.resume:
            raise SoftacError(f"{a.out} already holds a suite: pass --resume to continue it, or a new --out")
        saved = json.loads(spec.read_text())
        if (saved["seeds"], saved["budget"], saved["extra"]) != (asked["seeds"], budget, extra):
            raise SoftacError(f"{a.out} was run with other seeds/budget/train flags; a resumed suite keeps them")
    a.out.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(asked, indent=1))
    for key, why in skipped.items():
        print(f"cell {key}: skipped ({why})")
    if a.ray is None:
        states = run_cells(a.out, cells, list(a.seeds), budget, a.device, a.jobs, extra, a.threads)
    else:
        states = ray_cells(a.ray).run_cells_ray(a.out, cells, list(a.seeds), budget, a.device,
                                                a.threads or threads(a.jobs), extra, a.ray)  # fmt: skip
    write_results(a.out, [c for c in cells if states[c.key].get("status") == "done"], list(a.seeds))
    failed = [k for k, s in states.items() if s.get("status") != "done"]
    print(f"results: {a.out / 'results.csv'} ({len(cells) - len(failed)} of {len(cells)} cells done)")
    return 1 if failed else 0
