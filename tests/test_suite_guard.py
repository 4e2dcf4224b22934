"""softac suite refuses what it cannot do exactly, before any cell starts and before it writes a suite
directory: a directory it did not create, a --resume whose arguments differ from the recorded ones,
empty name lists, bad budgets/jobs/threads/devices/--ray addresses/train flags, and a damaged
suite.json. Named suites hold only cells that can run. Every case in-process (no cell is trained)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softac.cli import main
from softac.cli.args import Parser
from softac.suite import record
from softac.suite.cli import _parser
from softac.suite.precheck import check_cells
from softac.suite.spec import SUITES, Cell, expand

BASE = ["suite", "classic", "--algos", "sac", "--envs", "Pendulum-v1", "--seeds", "0,1", "--budget", "600"]


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("softac: error: "), err
    for w in words:
        assert w in err, err
    return err


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(d.rglob("*"))}


@pytest.mark.parametrize("own", ["results.csv", "logs/mine.log", "cells/x.json", "notes.txt", "suite.json"])
def test_a_directory_the_suite_did_not_create_is_refused_untouched(
    tmp_path: Path, own: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    (out / own).parent.mkdir(parents=True, exist_ok=True)
    (out / own).write_text("the user's own\n")
    before = _snapshot(out)
    for extra in ([], ["--resume"]):
        _refused([*BASE, "--out", str(out), *extra], capsys, "did not create it", str(out))
        assert _snapshot(out) == before
    (tmp_path / "file").write_text("x")
    _refused([*BASE, "--out", str(tmp_path / "file")], capsys, "is a file")
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize("flag", ["--algos", "--envs"])
@pytest.mark.parametrize("value", [",", ",,", " , ", ""])
def test_empty_name_lists_are_refused(
    tmp_path: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(["suite", "classic", "--out", str(tmp_path / "o"), flag, value], capsys, flag, "comma-separated")
    assert not (tmp_path / "o").exists()


BAD = [
    (["--budget", "0"], "--budget must be a positive integer, got 0"),
    (["--budget", "-5"], "--budget"),
    (["--jobs", "0"], "--jobs"),
    (["--threads", "0"], "--threads"),
    (["--device", "banana"], "unknown device 'banana'"),
    (["--ray", "nohost"], "is not an address"),
    (["--ray", "host:99999"], "is not an address"),
    (["--ray", "127.0.0.1:1"], "cannot reach a Ray cluster at --ray 127.0.0.1:1"),
    (["--", "--total-steps", "5"], "--total-steps after -- is set by the suite"),
    (["--", "--seed", "3"], "--seed after -- is set by the suite"),
    (["--", "--run-dir", "x"], "--run-dir after -- is set by the suite"),
    (["--", "--device", "cpu"], "--device after -- is set by the suite"),
    (["--", "--gamma", "2"], "cell sac on Pendulum-v1: gamma"),
    (["--", "--nonsense", "2"], "unrecognized arguments: --nonsense"),
    (["--", "--buffer-size", "1000000000000"], "cell sac on Pendulum-v1"),
    (["--", "--total"], "unrecognized arguments: --total"),  # no abbreviation of a suite-set flag slips through
]


@pytest.mark.parametrize(("flags", "says"), BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_values_are_refused_before_any_directory(tmp_path: Path, flags: list[str], says: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    _refused([*BASE, "--out", str(tmp_path / "o"), *flags], capsys, says)
    assert not (tmp_path / "o").exists()


def test_cuda_is_refused_where_there_is_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _refused([*BASE, "--out", str(tmp_path / "o"), "--device", "cuda"], capsys, "CUDA is not available")
    assert not (tmp_path / "o").exists()


def _recorded(out: Path, **changes: object) -> None:
    asked = {"suite": "classic", "algos": ["sac", "td3"], "envs": ["Pendulum-v1"], "seeds": [0, 1], "budget": 600,
             "device": "cpu", "extra": [], "cells": [], "skipped": {}}  # fmt: skip
    record.create(out, {**asked, **changes})
    (out / "results.csv").write_text("algorithm,env,seed,step,return\ntd3,Pendulum-v1,0,600,-150.0\n")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--algos", "sac"], "algos sac,td3 → sac"),  # fewer algorithms: td3's rows would drop out
        (["--algos", "sac,td3", "--seeds", "0"], "seeds 0,1 → 0"),
        (["--algos", "sac,td3", "--budget", "800"], "budget 600 → 800"),
        (["--algos", "sac,td3", "--", "--gamma", "0.9"], "extra (none) → --gamma,0.9"),
        (["--algos", "sac,td3", "--envs", "Pendulum-v1,CartPole-v1"], "envs Pendulum-v1 → Pendulum-v1,CartPole-v1"),
    ],
)
def test_resume_with_other_arguments_is_refused_naming_them(tmp_path: Path, argv: list[str], says: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "s"
    _recorded(out)
    before = _snapshot(out)
    i = argv.index("--") if "--" in argv else len(argv)
    cmd = ["suite", "classic", "--out", str(out), "--seeds", "0,1", "--budget", "600", "--envs", "Pendulum-v1"]
    _refused([*cmd, *argv[:i], "--resume", *argv[i:]], capsys, says, "holds a suite run with other arguments")
    assert _snapshot(out) == before


def test_resume_under_another_suites_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    _recorded(out, suite="mujoco-100k", envs=["Hopper-v5"])
    before = _snapshot(out)
    argv = ["suite", "mujoco-100k", "--out", str(out), "--algos", "sac,td3", "--envs", "Walker2d-v5", "--seeds", "0,1",
            "--budget", "600", "--resume"]  # fmt: skip
    _refused(argv, capsys, "envs Hopper-v5 → Walker2d-v5")
    argv = [*BASE[:1], "classic", "--out", str(out), "--algos", "sac,td3", "--envs", "Pendulum-v1", "--seeds", "0,1",
            "--budget", "600", "--resume"]  # fmt: skip
    _refused(argv, capsys, "suite mujoco-100k → classic")
    assert _snapshot(out) == before
    # Without --resume the suite never writes into a directory that holds one.
    _refused([*BASE, "--out", str(out)], capsys, "already holds a suite: pass --resume")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{garbage", "is not readable JSON"),
        ("{}", "no valid 'suite'"),
        ("[1, 2]", "holds a list"),
        ('{"suite": "classic", "algos": "sac"}', "no valid 'algos'"),
        ("\xff\xfe", "is not readable JSON"),
        (None, "is a directory"),
        ("missing", "is missing"),
    ],
)
def test_a_damaged_suite_json_is_one_line_naming_it(tmp_path: Path, content: str | None, says: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "s"
    _recorded(out)
    spec = out / "suite.json"
    spec.unlink()
    if content is None:
        spec.mkdir()
    elif content != "missing":
        spec.write_bytes(content.encode("latin-1"))
    before = _snapshot(out)
    _refused([*BASE, "--out", str(out), "--resume"], capsys, str(spec), says)
    assert _snapshot(out) == before  # the refusal touched nothing in the directory


def test_named_suites_hold_only_cells_that_can_run(capsys: pytest.CaptureFixture[str]) -> None:
    for name in SUITES:
        cells, skipped = expand(name, None, None)
        assert cells and not any("action space" in why for why in skipped.values()), name
    classic = {c.key for c in expand("classic", None, None)[0]}
    assert {"sac__Pendulum-v1", "ppo__Pendulum-v1", "dqn__CartPole-v1", "ppo__CartPole-v1"} <= classic
    assert "sac__CartPole-v1" not in classic and "dqn__Pendulum-v1" not in classic
    # Every cell of `softac suite classic` (no other flag) is built as its process would build it.
    check_cells(expand("classic", None, None)[0], list(range(10)), SUITES["classic"][1], "cpu", 1, [])
    # Asked for by name, an impossible cell is skipped with its reason; the others run.
    cells, skipped = expand("classic", ["sac", "dqn"], ["Pendulum-v1", "CartPole-v1"])
    assert [c.key for c in cells] == ["sac__Pendulum-v1", "dqn__CartPole-v1"]
    assert "Discrete action space, which sac does not support" in skipped["sac__CartPole-v1"]
    assert "Box action space, which dqn does not support" in skipped["dqn__Pendulum-v1"]
    assert Cell("sac", "Pendulum-v1") in cells


def test_a_request_with_no_runnable_cell_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["suite", "classic", "--out", str(tmp_path / "o"), "--algos", "sac", "--envs", "CartPole-v1"], capsys,
             "nothing to run", "Discrete action space")  # fmt: skip
    assert not (tmp_path / "o").exists()


def test_every_suite_option_has_help_text() -> None:
    p = _parser(Parser)
    for action in p._actions:
        assert action.help and action.help.strip(), action.option_strings or action.dest
    text = p.format_help()
    assert "--budget N" in text and "environment steps per run" in text


def test_a_new_suite_directory_is_marked_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()  # an empty directory is the user's to give
    assert record.check_out(out, resume=False) is False
    _recorded(out)
    assert (out / record.MARKER).is_file()
    assert json.loads((out / "suite.json").read_text())["suite"] == "classic"
    assert record.check_out(out, resume=True) is True


def test_ray_auto_without_a_cluster_is_refused_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "no-ray-here"))
    _refused([*BASE, "--out", str(tmp_path / "o"), "--ray", "auto"], capsys, "--ray auto: no Ray cluster runs")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    _refused([*BASE, "--out", str(tmp_path / "o"), "--ray", "auto"], capsys, "cannot reach a Ray cluster")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("where", ["cells/sac__Pendulum-v1.json/", "logs/sac__Pendulum-v1.log/", "results.csv/",
                                   "runs/sac__Pendulum-v1", "cells"])  # fmt: skip
def test_a_suite_file_of_the_wrong_kind_is_refused_before_any_cell(
    tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    _recorded(out, algos=["sac"])
    (out / "results.csv").unlink()
    path = out / where.rstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir() if where.endswith("/") else path.write_text("x")
    before = _snapshot(out)
    _refused([*BASE, "--out", str(out), "--resume"], capsys, str(path), "is not a")
    assert _snapshot(out) == before
