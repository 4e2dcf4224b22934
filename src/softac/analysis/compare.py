"""``softac compare A B``: final returns of two groups of runs, with bootstrap CIs and P(A > B);
and their final success rates the same way when every run's environment reports success.

A group is ONE command-line argument: a multi-seed directory (its ``seed_*`` runs), a run
directory, or several of these joined by commas (``runs/a0,runs/a1``); any part may be a glob
pattern, quoted so that softac expands it (``'runs/sac-s*'``). One argument per group keeps the
syntax unambiguous however many runs a group has: the first argument is A, the second is B.
"""

from __future__ import annotations

import argparse
import glob
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from softac.analysis.stats import (
    Curve,
    aggregate,
    expand_runs,
    final_returns,
    has_column,
    probability_of_improvement,
    read_curve,
)
from softac.errors import SoftacError

SUCCESS_METRIC = "eval_success_rate"


def parse_group(text: str, name: str) -> list[Path]:
    """The run directories of one group argument (see the module docstring)."""
    paths: list[Path] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise SoftacError(f"group {name} ('{text}') has an empty entry; separate run directories with one comma")
        if glob.has_magic(part):
            # Why glob.glob: Path.glob takes no absolute pattern ('/data/runs/sac-*').
            hits = sorted(glob.glob(part))  # noqa: PTH207
            if not hits:
                raise SoftacError(f"group {name}: '{part}' matches no directory")
            paths.extend(Path(h) for h in hits)
        else:
            paths.append(Path(part))
    runs = expand_runs(paths)
    return list(dict.fromkeys(runs))  # a run named twice (two overlapping globs) counts once


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.4g}" if abs(x) < 1e-3 and x != 0 else f"{x:.2f}"


def _ci(lo: float, hi: float) -> str:
    return "[no CI: 1 run]" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{_fmt(lo)}, {_fmt(hi)}]"


def compare(
    a: list[Curve], b: list[Curve], label_a: str, label_b: str, at_step: int | None,
    success: tuple[list[Curve], list[Curve]] | None = None,
) -> str:
    """The comparison table as text (see :func:`main`); ``success``: the groups' success-rate
    curves (``eval_success_rate``), compared the same way in a second table."""
    envs = sorted({c.env_id for c in a + b} - {"?"})
    if len(envs) > 1:
        raise SoftacError(f"the groups mix environments ({', '.join(envs)}); compare runs on one environment")
    lines = _table("final return", a, b, label_a, label_b, at_step, envs)
    if success is not None:
        lines += _table("final success rate", *success, label_a, label_b, at_step, envs)
    return "\n".join(lines)


def _table(
    what: str, a: list[Curve], b: list[Curve], label_a: str, label_b: str, at_step: int | None, envs: list[str]
) -> list[str]:
    xa, xb = final_returns(a, at_step), final_returns(b, at_step)
    if np.isnan(np.concatenate([xa, xb])).any():
        return [f"{what}: not compared, a run has none at the compared step"]
    if at_step is None:
        last = sorted({int(c.steps[-1]) for c in a + b})
        where = f"last evaluation of each run (step {last[0]})" if len(last) == 1 else (
            f"last evaluation of each run (steps {last[0]}–{last[-1]}; --at-step N compares at one step)")
    else:
        where = f"evaluation at step {at_step}"
    width = max(len(label_a), len(label_b), 5)
    lines = [
        f"{what} on {envs[0] if envs else '?'}: {where}; 95% percentile-bootstrap CIs over runs",
        f"{'group':<{width}}  {'n':>3}  {'mean [95% CI]':<28}  {'median':>9}  IQM [95% CI]",
    ]
    for label, x in ((label_a, xa), (label_b, xb)):
        s = aggregate(x)
        mean = f"{_fmt(s['mean'])} {_ci(s['mean_ci_low'], s['mean_ci_high'])}"
        lines.append(f"{label:<{width}}  {s['n']:>3}  {mean:<28}  {_fmt(s['median']):>9}  "
                     f"{_fmt(s['iqm'])} {_ci(s['iqm_ci_low'], s['iqm_ci_high'])}")  # fmt: skip
    poi = probability_of_improvement(xa, xb)
    lines.append(f"P({label_a} > {label_b}) = {poi['p']:.3f} {_ci(poi['ci_low'], poi['ci_high'])}"
                 "  (probability that a run of the first group beats one of the second; 0.5: no difference)")
    return lines


def _default_label(text: str, curves: list[Curve], other: str) -> str:
    parts = text.split(",")
    if len(parts) == 1 and not glob.has_magic(parts[0]):
        return Path(parts[0]).name or parts[0]
    algos = sorted({c.algo for c in curves})
    return algos[0].upper() if len(algos) == 1 and algos[0] != "?" else other


def main(argv: Sequence[str], parser_class: type[argparse.ArgumentParser]) -> int:
    p = parser_class(
        prog="softac compare",
        description="Compare the final returns of two groups of runs (e.g. two algorithms over seeds). "
        "A group is one argument: a multi-seed directory, a run directory, or several joined by commas; "
        "quote glob patterns to let softac expand them ('runs/sac-s*').",
    )
    p.add_argument("a", metavar="A", help="first group: DIR, DIR1,DIR2,... or a quoted glob")
    p.add_argument("b", metavar="B", help="second group, same syntax")
    p.add_argument("--label-a", default=None, help="name of group A in the table")
    p.add_argument("--label-b", default=None, help="name of group B in the table")
    p.add_argument("--at-step", type=int, default=None, metavar="N",
                   help="compare the evaluations at step N (default: each run's last evaluation)")  # fmt: skip
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    if args.at_step is not None and args.at_step <= 0:
        raise SoftacError(f"--at-step must be a positive integer, got {args.at_step}")
    runs_a, runs_b = parse_group(args.a, "A"), parse_group(args.b, "B")
    a, b = [read_curve(r) for r in runs_a], [read_curve(r) for r in runs_b]
    for name, group in (("A", a), ("B", b)):
        empty = [str(c.path) for c in group if len(c.steps) == 0]
        if empty:
            raise SoftacError(f"group {name}: {empty[0]} has no evaluation rows yet")
        if np.isnan(final_returns(group, args.at_step)).any():
            raise SoftacError(f"group {name}: a run's return is NaN at the compared step")
    label_a = args.label_a or _default_label(args.a, a, "A")
    label_b = args.label_b or _default_label(args.b, b, "B")
    if label_a == label_b:
        label_a, label_b = f"A:{label_a}", f"B:{label_b}"
    # Success rates only where every run has them: a group half of whose runs report success would
    # compare different things.
    success = None
    if all(has_column(r, SUCCESS_METRIC) for r in runs_a + runs_b):
        success = ([read_curve(r, SUCCESS_METRIC) for r in runs_a], [read_curve(r, SUCCESS_METRIC) for r in runs_b])
    print(compare(a, b, label_a, label_b, args.at_step, success))
    return 0
