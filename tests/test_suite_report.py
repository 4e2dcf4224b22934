"""softac suite report: on synthetic results.csv files, the numbers equal rliable's own calls on the
same arrays (and a hand-computed IQM), the figures are PNGs, nothing in the results dir changes,
and bad input is one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softac.cli import main
from softac.errors import SoftacError
from softac.suite import scores as S
from softac.suite.report import write_report
from softac.suite.spec import expand

rly = pytest.importorskip("rliable.library")
metrics = pytest.importorskip("rliable.metrics")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _few_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bootstrap resample costs ~1 ms in arch's Python loop: the report's 2000 would take minutes here.
    monkeypatch.setattr(S, "REPS", 200)
    monkeypatch.setattr(S, "CURVE_REPS", 50)


def _direct(score_dict: Any, func: Any, reps: int) -> Any:
    """rliable's own call, seeded as its bootstrap needs (it draws from numpy's global generator)."""
    np.random.seed(S.SEED)
    return rly.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(S.SEED))


def _results(d: Path, returns: list[float]) -> None:
    d.mkdir()
    lines = ["algorithm,env,seed,step,return"]
    lines += [f"sac,Hopper-v5,{s},100,0" for s in range(len(returns))]
    lines += [f"sac,Hopper-v5,{s},200,{r}" for s, r in enumerate(returns)]
    (d / "results.csv").write_text("\n".join(lines) + "\n")


def _two_algos(d: Path) -> dict[tuple[str, str], np.ndarray]:
    """sac and td3 on Hopper, Walker2d (normalised by published SAC 1M) and Pendulum (no normaliser),
    4 seeds, 3 evaluation steps; returns the final returns by (algorithm, env) in seed order."""
    rng = np.random.default_rng(1)
    d.mkdir()
    lines, finals = ["algorithm,env,seed,step,return"], {}
    for algo, gain in (("sac", 1.0), ("td3", 0.7)):
        for env, scale in (("Hopper-v5", 2787.0), ("Walker2d-v5", 4536.0), ("Pendulum-v1", -300.0)):
            x = np.round(gain * scale * rng.uniform(0.3, 1.2, size=(4, 3)), 2)
            finals[(algo, env)] = x[:, -1]
            lines += [f"{algo},{env},{s},{1000 * (j + 1)},{x[s, j]}" for s in range(4) for j in range(3)]
    (d / "results.csv").write_text("\n".join(lines) + "\n")
    return finals


def test_report_iqm_by_hand(tmp_path: Path) -> None:
    # 8 seeds: IQM drops the lowest 2 and highest 2 -> mean of 3, 4, 5, 6 = 4.5; mean = 57 / 8.
    _results(tmp_path / "res", [1, 2, 3, 4, 5, 6, 7, 29])
    out = write_report(tmp_path / "res", tmp_path / "rep", figures=False)
    text = out.read_text()
    assert "| softac sac | 200 | 8 | 7.1 | 4.5 |" in text
    assert "SAC (published, Gym v4, not rerun" in text and "1103.0" in text
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["results.csv"]
    # The CI is rliable's stratified bootstrap with the report's seed, resample count and level.
    x = np.array([1, 2, 3, 4, 5, 6, 7, 29], dtype=float)[:, None]
    _, ci = _direct({"a": x}, lambda s: np.array([metrics.aggregate_mean(s), metrics.aggregate_iqm(s)]), S.REPS)
    assert not np.allclose(ci["a"][0], ci["a"][0][0])  # the mean's and the IQM's intervals differ
    assert f"| 4.5 | [{ci['a'][0][1]:.1f}, {ci['a'][1][1]:.1f}] |" in text


def test_report_numbers_are_rliables_and_figures_are_pngs(tmp_path: Path) -> None:
    finals = _two_algos(tmp_path / "res")
    before = (tmp_path / "res" / "results.csv").read_bytes()
    out = write_report(tmp_path / "res")  # default: DIR/report
    assert out == tmp_path / "res" / "report" / "report.md"
    assert (tmp_path / "res" / "results.csv").read_bytes() == before
    names = {"curve_Hopper-v5.png", "curve_Walker2d-v5.png", "curve_Pendulum-v1.png", "aggregate.png",
             "performance_profile.png", "probability_of_improvement.png"}  # fmt: skip
    for name in names:
        data = (out.parent / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000, name
    text = out.read_text()
    assert all(f"]({n})" in text for n in names)
    # Per task: IQM of 4 seeds trims one each side = the mean of the middle two (numpy, by hand).
    hopper = np.sort(finals[("td3", "Hopper-v5")])
    assert f"| {hopper[1:3].mean():.1f} |" in text.split("## Hopper-v5")[1].split("##")[0]
    # Across tasks: normalised by published SAC at 1M (Hopper 2787, Walker2d 4536); Pendulum left out.
    scores = {a: np.stack([finals[(a, "Hopper-v5")] / 2787.0, finals[(a, "Walker2d-v5")] / 4536.0], axis=1)
              for a in ("sac", "td3")}  # fmt: skip
    func = lambda s: np.array([metrics.aggregate_iqm(s), metrics.aggregate_mean(s), metrics.aggregate_median(s)])  # noqa: E731
    point, ci = _direct(scores, func, S.REPS)
    row = next(ln for ln in text.splitlines() if ln.startswith("| softac td3 | ") and ln.count("|") == 8)
    assert row.startswith(f"| softac td3 | {point['td3'][0]:.3f} | [{ci['td3'][0][0]:.3f}, {ci['td3'][1][0]:.3f}] |")
    assert "Not in the aggregate: Pendulum-v1" in text
    # Probability of improvement on raw finals of all three tasks (rank-based).
    raw = {a: np.stack([finals[(a, e)] for e in ("Hopper-v5", "Pendulum-v1", "Walker2d-v5")], axis=1)
           for a in ("sac", "td3")}  # fmt: skip
    poi = metrics.probability_of_improvement(raw["sac"], raw["td3"])
    _, poi_ci = _direct({"p": (raw["sac"], raw["td3"])}, metrics.probability_of_improvement, S.REPS)
    assert f"| sac | td3 | {poi:.3f} | [{poi_ci['p'][0][0]:.3f}, {poi_ci['p'][1][0]:.3f}] |" in text
    table = (out.parent / "table.md").read_text()
    assert table.splitlines()[0].startswith("| task | step | softac sac: IQM")
    assert "| Hopper-v5 | 3000 |" in table
    # A second report replaces the first in its own directory; the results file stays as it was.
    again = write_report(tmp_path / "res", figures=False).read_text()
    assert "| softac td3 | " in again and "](curve_Hopper-v5.png)" not in again
    assert (tmp_path / "res" / "results.csv").read_bytes() == before


def test_markdown_flag_prints_the_readme_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _results(tmp_path / "res", [1, 2, 3, 4])
    assert main(["suite", "report", str(tmp_path / "res"), "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| task | step | softac sac: IQM [95% CI] (seeds) | SAC, published")
    assert "| Hopper-v5 | 200 | 2.5 [" in out


def test_report_refuses_other_dirs_and_bad_lines(tmp_path: Path) -> None:
    _results(tmp_path / "res", [1, 2])
    with pytest.raises(SoftacError, match="new directory"):
        write_report(tmp_path / "res", tmp_path / "res")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(SoftacError, match="not a suite report"):
        write_report(tmp_path / "res", tmp_path / "other")
    (tmp_path / "res" / "results.csv").write_text("algorithm,env,seed,step,return\nsac,Hopper-v5,x,1,2\n")
    with pytest.raises(SoftacError, match="line 2"):
        write_report(tmp_path / "res", tmp_path / "rep")


def test_unknown_names_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "mujoco-100k" in capsys.readouterr().err
    assert main(["suite", "classic", "--out", str(tmp_path / "o"), "--envs", "Foo-v0"]) == 2
    assert "Pendulum-v1" in capsys.readouterr().err
    with pytest.raises(SoftacError, match="unknown algorithm"):
        expand("classic", ["nosuch"], None)


def test_report_at_a_step_reads_every_cell_there_and_names_those_short_of_it(tmp_path: Path) -> None:
    """--step S: each seed's return at S (not its last), cells that stopped before S left out and
    named (a suite stopped at a deadline must not show a 50k figure as if it were 100k)."""
    d = tmp_path / "r"
    d.mkdir()
    lines = ["algorithm,env,seed,step,return"]
    lines += [f"sac,Hopper-v5,{s},{k * 1000},{10 * k + s}" for s in range(3) for k in (1, 2, 3)]
    lines += [f"td3,Hopper-v5,{s},{k * 1000},{5 * k}" for s in range(3) for k in (1,)]
    (d / "results.csv").write_text("\n".join(lines) + "\n")
    out = write_report(d, tmp_path / "rep", figures=False, step=2000)
    text = out.read_text()
    assert "left out: td3 on Hopper-v5 (reached 1000)" in text
    table = (tmp_path / "rep" / "table.md").read_text()
    assert "softac td3" not in table and "| Hopper-v5 | 2000 |" in table
    assert "21.0" in table  # the IQM of 20, 21, 22 (the step-2000 returns), not of the step-3000 ones
    with pytest.raises(SoftacError, match=r"no cell .* has an evaluation at step 5000"):
        write_report(d, tmp_path / "rep2", figures=False, step=5000)
