"""``softac suite report DIR``: per task a Markdown table (mean, IQM, 95 % stratified-bootstrap CI
over the seeds' final returns, seeds) beside the published numbers shipped in ``reference/``,
the aggregates across normalised tasks, probability of improvement, and figures, all computed
with rliable (``softac.suite.scores``) and written to a report directory of its own (default
``DIR/report``): a results file is never written or overwritten by a report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from softac.errors import SoftacError
from softac.suite import figures as F
from softac.suite import scores as S
from softac.suite.results import read_results

MARKER = ".softac-suite-report"
final_by_cell = S.final_by_cell  # the name tests and callers use


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1f}"


def _ci(low: float, high: float, digits: int = 1) -> str:
    return "–" if math.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def task_rows(rows: list[dict[str, Any]]) -> dict[str, list[tuple[str, int, dict[str, float]]]]:
    """{env: [(algorithm, first final step, rliable estimates)]}."""
    out: dict[str, list[tuple[str, int, dict[str, float]]]] = {}
    for (env, algo), seeds in sorted(S.final_by_cell(rows).items()):
        est = S.task_estimates([v for _, v in sorted(seeds.values())])
        out.setdefault(env, []).append((algo, min(s for s, _ in seeds.values()), est))
    return out


def render(rows: list[dict[str, Any]], figures: dict[str, Path] | None = None) -> str:
    refs = S.reference()
    lines = ["# softac suite report", "",
             f"Statistics: rliable (Agarwal et al., NeurIPS 2021), {S.REPS} stratified-bootstrap resamples, "
             "95% percentile intervals over seeds; the final evaluation of each seed. Published rows are "
             "as published, not rerun.", ""]  # fmt: skip
    for env, entries in task_rows(rows).items():
        head = "| algorithm | step | seeds | mean | IQM | IQM 95% CI |"
        lines += [f"## {env}", "", head, "|---|---|---|---|---|---|"]
        for algo, step, a in entries:
            ci = _ci(a["iqm_ci_low"], a["iqm_ci_high"])
            lines.append(f"| softac {algo} | {step} | {int(a['n'])} | {_fmt(a['mean'])} | {_fmt(a['iqm'])} | {ci} |")
        for ref in refs:
            if ref["env"] == env.split("-v")[0]:
                lines.append(f"| {ref['algorithm']} ({ref['note']}; {ref['source']}) | {ref['step']} | – | "
                             f"{float(ref['return']):.1f} | – | – |")  # fmt: skip
        if figures and env in figures:
            lines += ["", f"![{env}]({figures[env].name})"]
        lines.append("")
    return "\n".join(lines + _across(rows, figures or {}))


def _across(rows: list[dict[str, Any]], figures: dict[str, Path]) -> list[str]:
    """The aggregate and probability-of-improvement sections (empty when they do not apply)."""
    finals = S.final_by_cell(rows)
    envs = sorted({e for e, _ in finals})
    algos = sorted({a for _, a in finals})
    common = [e for e in envs if all((e, a) in finals for a in algos)]
    lines: list[str] = []
    norms = S.normalisers(common)
    if norms:
        tasks = sorted(norms)
        point, ci = S.aggregates(S.score_matrix(finals, algos, tasks, {e: n for e, (n, _) in norms.items()}))
        lines += ["## Across tasks (normalised)", "",
                  "Normalised score = final return / normaliser: " + "; ".join(f"{e}: {n:g} ({why})" for e, (n, why)
                  in sorted(norms.items())) + "."]  # fmt: skip
        left_out = [e for e in envs if e not in norms]
        if left_out:
            lines.append(f"Not in the aggregate: {', '.join(left_out)} (no normaliser, or not run by every algorithm).")
        lines += ["", "| algorithm | IQM | 95% CI | mean | 95% CI | median | 95% CI |", "|---|---|---|---|---|---|---|"]
        for algo in sorted(point):
            p, (lo, hi) = point[algo], ci[algo]
            cells = " | ".join(f"{p[i]:.3f} | {_ci(lo[i], hi[i], 3)}" for i in range(3))
            lines.append(f"| softac {algo} | {cells} |")
        lines.append("")
        lines += [f"![{name}]({figures[name].name})" for name in ("aggregate", "profile") if name in figures]
        lines.append("")
    if len(algos) >= 2 and common:
        p_point, p_ci = S.improvement(S.score_matrix(finals, algos, common, {}))
        lines += ["## Probability of improvement", "", f"Tasks: {', '.join(common)} (final returns, rank-based).", "",
                  "| X | Y | P(X > Y) | 95% CI |", "|---|---|---|---|"]  # fmt: skip
        for pair, value in p_point.items():
            x, y = pair.split(",")
            lines.append(f"| {x} | {y} | {value:.3f} | {_ci(p_ci[pair][0], p_ci[pair][1], 3)} |")
        lines += ["", f"![improvement]({figures['improvement'].name})" if "improvement" in figures else "", ""]
    return lines


def readme_table(rows: list[dict[str, Any]]) -> str:
    """The README's table: one row per task, one column per algorithm (IQM [95% CI], seeds), then the
    published SAC number at the same step where one ships."""
    tasks = task_rows(rows)
    algos = sorted({a for entries in tasks.values() for a, _, _ in entries})
    refs = {(r["env"], int(r["step"])): float(r["return"]) for r in S.reference() if r["algorithm"] == "SAC"}
    lines = ["| task | step | " + " | ".join(f"softac {a}: IQM [95% CI] (seeds)" for a in algos)
             + " | SAC, published (Gym v4, not rerun) |", "|---" * (len(algos) + 3) + "|"]  # fmt: skip
    for env, entries in tasks.items():
        by = {a: (step, est) for a, step, est in entries}
        step = min(s for s, _ in by.values())
        cells = [f"{by[a][1]['iqm']:.1f} {_ci(by[a][1]['iqm_ci_low'], by[a][1]['iqm_ci_high'])} ({int(by[a][1]['n'])})"
                 if a in by else "–" for a in algos]  # fmt: skip
        ref = refs.get((env.split("-v")[0], step))
        lines.append(f"| {env} | {step} | " + " | ".join(cells) + f" | {'–' if ref is None else f'{ref:.0f}'} |")
    return "\n".join(lines) + "\n"


def write_figures(rows: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Every figure that applies, by name (env ids for the curves)."""
    made: dict[str, Path] = {}
    finals = S.final_by_cell(rows)
    envs, algos = sorted({e for e, _ in finals}), sorted({a for _, a in finals})
    for env in envs:
        path = F.curve_figure(rows, env, out)
        if path is not None:
            made[env] = path
    common = [e for e in envs if all((e, a) in finals for a in algos)]
    norms = S.normalisers(common)
    if norms:
        scores = S.score_matrix(finals, algos, sorted(norms), {e: n for e, (n, _) in norms.items()})
        made["aggregate"] = F.aggregate_figure(*S.aggregates(scores), out)
        made["profile"] = F.profile_figure(scores, out)
    if len(algos) >= 2 and common:
        made["improvement"] = F.improvement_figure(*S.improvement(S.score_matrix(finals, algos, common, {})), out)
    return made


def at_step(rows: list[dict[str, Any]], step: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows up to ``step``, for a table at one budget (a suite stopped early, or a 1M suite read at
    100k); cells that did not reach ``step`` are left out and named, never shown at a smaller step."""
    reached: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["env"], r["algorithm"])
        reached[key] = max(reached.get(key, 0), r["step"])
    short = sorted(k for k, s in reached.items() if s < step)
    kept = [r for r in rows if r["step"] <= step and (r["env"], r["algorithm"]) not in short]
    return kept, [f"{algo} on {env} (reached {reached[(env, algo)]})" for env, algo in short]


def write_report(results_dir: Path, report_dir: Path | None = None, figures: bool = True,
                 step: int | None = None) -> Path:  # fmt: skip
    report_dir = report_dir if report_dir is not None else results_dir / "report"
    path = results_dir / "results.csv"
    if not path.is_file():
        raise SoftacError(f"{results_dir} has no results.csv: run `softac suite NAME --out {results_dir}` first")
    if report_dir.resolve() == results_dir.resolve():
        raise SoftacError("--out of a report must be a new directory, not the results directory")
    if report_dir.exists() and any(report_dir.iterdir()) and not (report_dir / MARKER).is_file():
        raise SoftacError(f"{report_dir} exists and is not a suite report: choose a new --out")
    try:
        rows = read_results(path)
    except ValueError as exc:
        raise SoftacError(str(exc)) from None
    if not rows:
        raise SoftacError(f"{path} has no rows yet: no cell has finished")
    short: list[str] = []
    if step is not None:
        rows, short = at_step(rows, step)
        if not rows:
            raise SoftacError(f"no cell in {path} reached step {step}")
    S.rliable()  # the clear "install softac[suite]" line before anything is written
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / MARKER).write_text("written by softac suite report\n")
    made = write_figures(rows, report_dir) if figures else {}
    (report_dir / "table.md").write_text(readme_table(rows))
    out = report_dir / "report.md"
    text = render(rows, made)
    if step is not None:
        note = f"Read at step {step}" + (f"; left out, short of it: {', '.join(short)}." if short else ".")
        text = text.replace("\n\n", f"\n\n{note}\n\n", 1)
    out.write_text(text)
    return out
