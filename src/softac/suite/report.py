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
from softac.suite import success_report as SR
from softac.suite.results import read_results
from softac.suite.spec import label

MARKER = ".softac-suite-report"
final_by_cell = S.final_by_cell  # the name tests and callers use


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1f}"


def _ci(low: float, high: float, digits: int = 1) -> str:
    return "–" if math.isnan(low) else f"[{low:.{digits}f}, {high:.{digits}f}]"


def task_rows(rows: list[dict[str, Any]]) -> dict[str, list[tuple[str, int, dict[str, float]]]]:
    """{env: [(algorithm, final step (the same for every seed: check_finals), rliable estimates)]}."""
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
    success = SR.estimates(rows)
    for env, entries in task_rows(rows).items():
        # A task reporting success leads with it (a goal task's sparse return counts steps to the goal).
        got = success.get(env)
        ret = "return " if got else ""
        head = f"| algorithm | step | seeds | {SR.HEAD if got else ''}{ret}mean | {ret}IQM | {ret}IQM 95% CI |"
        lines += [f"## {env}", "", head, "|---" * head.count(" | ") + "|---|"]
        for algo, step, a in entries:
            ci = _ci(a["iqm_ci_low"], a["iqm_ci_high"])
            lines.append(f"| {label(algo)} | {step} | {int(a['n'])} | {SR.cells(got.get(algo)) if got else ''}"
                         f"{_fmt(a['mean'])} | {_fmt(a['iqm'])} | {ci} |")  # fmt: skip
        for ref in refs:
            if ref["env"] == env.split("-v")[0]:
                lines.append(f"| {ref['algorithm']} ({ref['note']}; {ref['source']}) | {ref['step']} | – | "
                             f"{SR.EMPTY if got else ''}{float(ref['return']):.1f} | – | – |")  # fmt: skip
        if figures and env in figures:
            lines += ["", f"![{env}]({figures[env].name})"]
        lines.append("")
    return "\n".join(lines + SR.across(rows) + _across(rows, figures or {}))


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
            lines.append(f"| {label(algo)} | {cells} |")
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
    published SAC number at the same step where one ships. Each number is labelled with the step it
    was read at: the task's when every algorithm shares it, else its own (a PPO cell ends at the
    first rollout boundary at or past the budget, not at the budget). A task reporting success is
    reported by its success rate (a ``metric`` column appears then; "–" for an algorithm without one)."""
    tasks = task_rows(rows)
    success = SR.estimates(rows)
    algos = sorted({a for entries in tasks.values() for a, _, _ in entries})
    refs = {(r["env"], int(r["step"])): float(r["return"]) for r in S.reference() if r["algorithm"] == "SAC"}
    metric = "metric | " if success else ""
    lines = [f"| task | {metric}step | " + " | ".join(f"{label(a)}: IQM [95% CI] (seeds)" for a in algos)
             + " | SAC, published (Gym v4, not rerun) |", "|---" * (len(algos) + 3 + bool(success)) + "|"]  # fmt: skip
    for env, entries in tasks.items():
        by = {a: (step, est) for a, step, est in entries}
        steps = {s for s, _ in by.values()}
        common = next(iter(steps)) if len(steps) == 1 else None
        at = {a: "" if common is not None else f" at step {by[a][0]}" for a in by}
        cells = [f"{by[a][1]['iqm']:.1f} {_ci(by[a][1]['iqm_ci_low'], by[a][1]['iqm_ci_high'])} ({int(by[a][1]['n'])})"
                 f"{at[a]}" if a in by else "–" for a in algos]  # fmt: skip
        ref = refs.get((env.split("-v")[0], common)) if common is not None else None
        shown = str(common) if common is not None else "see each"
        if env in success:
            cells = [SR.summary(success[env][a]) + at[a] if a in success[env] else "–" for a in algos]
            ref = None  # the published numbers are returns
        kind = ("success rate | " if env in success else "return | ") if success else ""
        lines.append(f"| {env} | {kind}{shown} | " + " | ".join(cells) + f" | {'–' if ref is None else f'{ref:.0f}'} |")
    return "\n".join(lines) + "\n"


def write_figures(rows: list[dict[str, Any]], out: Path) -> dict[str, Path]:
    """Every figure that applies, by name (env ids for the curves)."""
    made: dict[str, Path] = {}
    finals = S.final_by_cell(rows)
    envs, algos = sorted({e for e, _ in finals}), sorted({a for _, a in finals})
    colors = F.palette(algos)  # one colour per algorithm across every figure
    for env in envs:
        path = F.curve_figure(rows, env, out, colors)
        if path is not None:
            made[env] = path
    common = [e for e in envs if all((e, a) in finals for a in algos)]
    norms = S.normalisers(common)
    if norms:
        scores = S.score_matrix(finals, algos, sorted(norms), {e: n for e, (n, _) in norms.items()})
        made["aggregate"] = F.aggregate_figure(*S.aggregates(scores), out, colors)
        made["profile"] = F.profile_figure(scores, out, colors)
    if len(algos) >= 2 and common:
        made["improvement"] = F.improvement_figure(*S.improvement(S.score_matrix(finals, algos, common, {})), out)
    return made


def at_step(rows: list[dict[str, Any]], step: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows up to ``step``, for a table at one budget (a suite stopped early, or a 1M suite read at
    100k). A cell is kept only if every one of its seeds has an evaluation at exactly ``step``: one
    that stopped before it, or evaluated around it (400 and 600 for 500), is left out and named, never
    shown at another step under this one's label."""
    evals: dict[tuple[str, str], dict[int, set[int]]] = {}
    for r in rows:
        evals.setdefault((r["env"], r["algorithm"]), {}).setdefault(r["seed"], set()).add(r["step"])
    short: dict[tuple[str, str], str] = {}
    for (env, algo), seeds in sorted(evals.items()):
        missing = sorted(s for s, steps in seeds.items() if step not in steps)
        if not missing:
            continue
        reached = max(max(v) for v in seeds.values())
        if reached < step:
            short[(env, algo)] = f"{algo} on {env} (reached {reached})"
        else:
            near = sorted({t for s in missing for t in seeds[s]}, key=lambda t: (abs(t - step), t))[:2]
            around = " and ".join(map(str, sorted(near)))
            short[(env, algo)] = (f"{algo} on {env} (no evaluation at {step} for seed(s) "
                                  f"{', '.join(map(str, missing))}; nearest {around})")  # fmt: skip
    kept = [r for r in rows if r["step"] <= step and (r["env"], r["algorithm"]) not in short]
    return kept, list(short.values())


def check_finals(rows: list[dict[str, Any]]) -> None:
    """Refuse a cell whose seeds end at different steps: its IQM would mix them under one label."""
    for (env, algo), seeds in sorted(S.final_by_cell(rows).items()):
        steps = {st for st, _ in seeds.values()}
        if len(steps) > 1:
            ends = ", ".join(f"seed {s} at {st}" for s, (st, _) in sorted(seeds.items()))
            raise SoftacError(f"{algo} on {env}: its seeds end at different steps ({ends}); read every cell at one "
                              f"step with --step {min(steps)}")  # fmt: skip


def seed_notes(rows: list[dict[str, Any]]) -> list[str]:
    """A line per task whose cells ran different seeds (their CIs are over different runs) or ended at
    different steps, and one when the seed sets or final steps differ across tasks (the aggregates
    then compare unequal samples, or mix steps)."""
    finals = S.final_by_cell(rows)
    notes = []
    by_env: dict[str, dict[str, list[int]]] = {}
    for (env, algo), seeds in finals.items():
        by_env.setdefault(env, {})[algo] = sorted(seeds)
    for env, algos in sorted(by_env.items()):
        if len({tuple(v) for v in algos.values()}) > 1:
            notes.append(
                f"**Unequal seeds on {env}**: " + "; ".join(f"{a}: {_seeds(v)}" for a, v in sorted(algos.items()))
            )
        ends = {a: next(iter(finals[(env, a)].values()))[0] for a in algos}
        if len(set(ends.values())) > 1:
            notes.append(
                f"**Different final steps on {env}**: " + "; ".join(f"{a} at {st}" for a, st in sorted(ends.items()))
            )
    every = {tuple(v) for algos in by_env.values() for v in algos.values()}
    if len(every) > 1 and not notes:
        notes.append(
            "**Unequal seeds across tasks**: "
            + "; ".join(
                f"{a} on {e}: {_seeds(v)}" for e, algos in sorted(by_env.items()) for a, v in sorted(algos.items())
            )
        )
    ends = {e: next(iter(seeds.values()))[0] for (e, _), seeds in finals.items()}
    if len(set(ends.values())) > 1 and not any("final steps" in n for n in notes):
        notes.append("**Different final steps across tasks** (the aggregates mix them): "
                     + "; ".join(f"{e} at {st}" for e, st in sorted(ends.items())))  # fmt: skip
    return notes


def _seeds(seeds: list[int]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


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
            raise SoftacError(f"no cell in {path} has an evaluation at step {step} on every seed: "
                              f"{'; '.join(short)}")  # fmt: skip
    check_finals(rows)
    S.rliable()  # the clear "install softac[suite]" line before anything is written
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / MARKER).write_text("written by softac suite report\n")
    made = write_figures(rows, report_dir) if figures else {}
    (report_dir / "table.md").write_text(readme_table(rows) + "".join(f"\n{n}\n" for n in seed_notes(rows)))
    out = report_dir / "report.md"
    text = render(rows, made)
    notes = seed_notes(rows)
    if step is not None:
        notes.insert(0, f"Read at step {step}" + (f"; left out: {'; '.join(short)}." if short else "."))
    if notes:
        text = text.replace("\n\n", "\n\n" + "\n\n".join(notes) + "\n\n", 1)
    out.write_text(text)
    return out
