"""DeepMind Control Suite tasks from states (``dm_control/<domain>-<task>-v0`` through Shimmy, the
``dmc`` extra): their Dict observations train, evaluate, and resume exactly; their legacy
``RandomState`` generators are checkpointed; a missing extra is one line naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import TINY, assert_bit_identical, run_cli, state_tensors

from softac import SAC, SoftacError
from softac.envs import NAMESPACE_PACKAGES, make_env
from softac.logging import read_progress

ENV = "dm_control/cartpole-balance-v0"
# 100-step episodes (Gymnasium's TimeLimit over the task's own 1,000), so step 200 is an episode
# boundary, where a checkpoint resumes exactly.
RUN: dict[str, Any] = {
    **TINY, "env_kwargs": {"max_episode_steps": 100}, "learning_starts": 100, "eval_freq": 200,
    "checkpoint_freq": 200, "seed": 5,
}  # fmt: skip


def test_dmc_from_states_trains_and_resumes_exactly(tmp_path: Path) -> None:
    straight = SAC(ENV, **RUN, total_steps=400).learn(run_dir=tmp_path / "straight", progress=False)
    assert straight.updates == 300
    assert [k.path for k in straight.spec.obs_layout.keys] == ["position", "velocity"]
    assert straight.spec.obs_dim == 5
    SAC(ENV, **RUN, total_steps=200).learn(run_dir=tmp_path / "half", progress=False)
    resumed = SAC.load(tmp_path / "half").learn(400, run_dir=tmp_path / "half", progress=False)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
    a, b = read_progress(tmp_path / "straight" / "progress.csv"), read_progress(tmp_path / "half" / "progress.csv")
    assert [r["eval_return_mean"] for r in a] == [r["eval_return_mean"] for r in b] and len(a) == 2
    # `softac eval` of the run: the namespace's package is imported by softac's whitelist, not by
    # a module name read from the file
    proc = run_cli("eval", str(tmp_path / "straight"), "--episodes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "DISPLAY" not in proc.stderr


def test_a_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(NAMESPACE_PACKAGES, "softac_test_ns", ("softac_no_such_module", "nosuch"))
    with pytest.raises(SoftacError) as info:
        make_env("softac_test_ns/Task-v0")
    msg = str(info.value)
    assert "needs the 'nosuch' extra" in msg and "pip install 'softac[nosuch]'" in msg and "\n" not in msg
