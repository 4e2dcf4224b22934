"""``softac suite report DIR``: a Markdown table per task (mean, IQM, 95 % bootstrap CI over the
seeds' final returns, seeds) beside the published numbers shipped in ``reference/``, written to a
new report directory (never into the results directory)."""

from __future__ import annotations

import csv
import math
from importlib import resources
from pathlib import Path
from typing import Any

from softac.errors import SoftacError
from softac.stats import aggregate
from softac.suite.results import read_results

MARKER = ".softac-suite-report"


def final_by_cell(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, tuple[int, float]]]:
    """{(env, algorithm): {seed: (last step, return there)}}."""
    out: dict[tuple[str, str], dict[int, tuple[int, float]]] = {}
    for r in rows:
        seeds = out.setdefault((r["env"], r["algorithm"]), {})
        if r["seed"] not in seeds or r["step"] >= seeds[r["seed"]][0]:
            seeds[r["seed"]] = (r["step"], r["return"])
    return out


def reference() -> list[dict[str, str]]:
    text = resources.files("softac.suite").joinpath("reference/mujoco_published.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1f}"


def render(rows: list[dict[str, Any]]) -> str:
    finals = final_by_cell(rows)
    refs = reference()
    lines = ["# softac suite report", ""]
    for env in sorted({e for e, _ in finals}):
        lines += [
            f"## {env}",
            "",
            "| algorithm | step | seeds | mean | IQM | IQM 95% CI |",
            "|---|---|---|---|---|---|",
        ]
        for (e, algo), seeds in sorted(finals.items()):
            if e != env:
                continue
            values = [v for _, v in seeds.values()]
            step = min(s for s, _ in seeds.values())
            a = aggregate(values)
            ci = f"[{_fmt(a['iqm_ci_low'])}, {_fmt(a['iqm_ci_high'])}]"
            lines.append(f"| softac {algo} | {step} | {a['n']} | {_fmt(a['mean'])} | {_fmt(a['iqm'])} | {ci} |")
        base = env.split("-v")[0]
        for ref in refs:
            if ref["env"] == base:
                lines.append(f"| {ref['algorithm']} ({ref['note']}; {ref['source']}) | {ref['step']} | – | "
                             f"{float(ref['return']):.1f} | – | – |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def write_report(results_dir: Path, report_dir: Path) -> Path:
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
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / MARKER).write_text("written by softac suite report\n")
    out = report_dir / "report.md"
    out.write_text(render(rows))
    return out
