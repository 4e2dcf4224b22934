"""The success-rate part of a suite report: goal-conditioned tasks (the ``robotics`` suite, see
docs/goals.md) are judged by how often the goal is reached, not by their sparse return. For every
task whose cells report a success rate (results.csv's ``success`` column: the evaluation success
rate of ``softac.success``), the report gives its IQM and mean over the seeds' final evaluations with
the same rliable stratified-bootstrap 95 % intervals as the returns, and the IQM, mean and median
across those tasks. A report without success shows none of it (no empty column)."""

from __future__ import annotations

import math
from typing import Any

from softac.suite import scores as S
from softac.suite.spec import label

Estimates = dict[str, dict[str, dict[str, float]]]  # {env: {algorithm: rliable estimates}}


def _ci(low: float, high: float, digits: int = 2) -> str:
    return "–" if math.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def estimates(rows: list[dict[str, Any]]) -> Estimates:
    """{env: {algorithm: estimates of its seeds' final success rates}} of the cells reporting success."""
    out: Estimates = {}
    for (env, algo), seeds in sorted(S.final_success_by_cell(rows).items()):
        out.setdefault(env, {})[algo] = S.task_estimates([v for _, v in sorted(seeds.values())])
    return out


HEAD = "success mean | success IQM | success IQM 95% CI | "
EMPTY = "– | – | – | "


def cells(est: dict[str, float] | None) -> str:
    """The success columns of one row of a task's table (dashes where this algorithm reports none)."""
    if est is None:
        return EMPTY
    return f"{est['mean']:.2f} | {est['iqm']:.2f} | {_ci(est['iqm_ci_low'], est['iqm_ci_high'])} | "


def summary(est: dict[str, float]) -> str:
    """One algorithm's success on one task for the README table: IQM [95% CI] (seeds)."""
    return f"{est['iqm']:.2f} {_ci(est['iqm_ci_low'], est['iqm_ci_high'])} ({int(est['n'])})"


def across(rows: list[dict[str, Any]]) -> list[str]:
    """The "Across tasks (success rate)" section: rliable's IQM, mean and median of the final success
    rates over the tasks where every algorithm reporting success does, with stratified-bootstrap CIs.
    Success rates lie in [0, 1] already: no normaliser. Empty when no task reports success."""
    finals = S.final_success_by_cell(rows)
    if not finals:
        return []
    algos = sorted({a for _, a in finals})
    tasks = sorted({e for e, _ in finals if all((e, a) in finals for a in algos)})
    lines = ["## Success rate", "",
             "Success rate: the share of a seed's evaluation episodes whose last step reports success "
             "(info['is_success'] or info['success']), at its final evaluation; statistics as for the "
             "returns."]  # fmt: skip
    if not tasks:
        return [*lines, "", "No task is reported with success by every algorithm that reports it: no aggregate.", ""]
    point, ci = S.aggregates(S.score_matrix(finals, algos, tasks, {}))
    lines += ["", f"Across tasks: {', '.join(tasks)}.", "",
              "| algorithm | success IQM | 95% CI | mean | 95% CI | median | 95% CI |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for algo in sorted(point):
        p, (lo, hi) = point[algo], ci[algo]
        cols = " | ".join(f"{p[i]:.3f} | {_ci(lo[i], hi[i], 3)}" for i in range(3))
        lines.append(f"| {label(algo)} | {cols} |")
    return [*lines, ""]
