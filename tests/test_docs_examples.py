"""Every example marked runnable in README.md and docs/*.md runs (issue 22): a fenced block right
after a line ``<!-- run -->``. ``python`` blocks are executed; ``bash`` blocks hold ``softac ...``
commands (one per line, ``\\`` continuations and ``# comments`` allowed), each run through
``softac.cli.main`` in this process (the entry point's code, without paying torch's import
once per command) and required to exit 0. A page's blocks run in order in one fresh directory, so a
command may use what an earlier one wrote (``softac train --run-dir R`` then ``softac eval R``).
Examples keep their budgets tiny (a few hundred steps, past ``learning_starts``) so that the whole
file adds seconds to the suite. The marker is invisible on the rendered site.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT

from softac import cli

MARK = "<!-- run -->"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str


def examples(page: Path) -> list[Example]:
    """The runnable blocks of one page, in order. A marker not followed by a fenced block is an
    error (a typo would otherwise silently stop an example from being run)."""
    lines = page.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        m = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if m is None or m.group(1) not in ("python", "bash"):
            raise AssertionError(f"{page.name}:{i + 1}: {MARK} must be followed by a ```python or ```bash block")
        end = next(j for j in range(i + 2, len(lines)) if lines[j].strip() == "```")
        found.append(Example(page, i + 2, m.group(1), "\n".join(lines[i + 2 : end]) + "\n"))
    return found


def commands(code: str) -> list[list[str]]:
    """The ``softac`` command lines of a bash block, as argument lists (without ``softac``)."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        args = shlex.split(line, comments=True)
        if not args:
            continue
        assert args[0] == "softac", f"a runnable bash block holds softac commands only, not {line!r}"
        out.append(args[1:])
    return out


RUNNABLE = [p for p in PAGES if examples(p)]


def test_the_landing_page_and_the_guides_have_runnable_examples() -> None:
    names = {p.name for p in RUNNABLE}
    assert {"README.md", "getting-started.md", "python-api.md", "cli.md"} <= names, names


def test_marker_parsing_refuses_a_marker_without_a_block(tmp_path: Path) -> None:
    page = tmp_path / "x.md"
    page.write_text(f"{MARK}\n```text\nsoftac train\n```\n")
    with pytest.raises(AssertionError, match="must be followed by"):
        examples(page)
    page.write_text(f"{MARK}\n```bash\nsoftac eval R   # a comment\nsoftac plot R \\\n  --out c.png\n```\n")
    assert commands(examples(page)[0].code) == [["eval", "R"], ["plot", "R", "--out", "c.png"]]


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for ex in examples(page):
        where = f"{page.name}:{ex.line}"
        if ex.lang == "python":
            exec(compile(ex.code, where, "exec"), {"__name__": "__docs_example__"})
            continue
        for args in commands(ex.code):
            code = cli.main(args)
            assert code == 0, f"{where}: softac {shlex.join(args)} exited {code}\n{capsys.readouterr().err}"


def test_readme_links_point_at_files_that_exist() -> None:
    """README.md is not part of the site, so ``mkdocs build --strict`` does not check its links."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?://)[^)#\s]+)", text)
    assert any(t.startswith("docs/") for t in targets)
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
