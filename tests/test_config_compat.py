"""Run directories saved before a config field existed still load, where the field's listed value
reproduces what the run did then (``BaseConfig.added_later``); any other missing field is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY

from softac import SAC, TD3, SoftacError
from softac.io.rundir import list_checkpoints


@pytest.mark.parametrize("cls", [SAC, TD3])
def test_a_run_saved_before_hindsight_replay_loads_without_it(tmp_path: Path, cls: type) -> None:
    run = tmp_path / "run"
    cls("Pendulum-v1", **TINY, learning_starts=50, eval_freq=100, checkpoint_freq=100).learn(100, run_dir=run,
                                                                                           progress=False)  # fmt: skip
    state_path = list_checkpoints(run)[-1] / "state.json"
    state = json.loads(state_path.read_text())
    for key in ("her", "her_k", "her_strategy"):
        del state["config"][key]  # as a file written before these fields existed
    state_path.write_text(json.dumps(state))
    loaded = cls.load(run)
    assert loaded.config.her is False and loaded.config.her_k == 4 and loaded.updates == 50
    del state["config"]["batch_size"]  # a field every file has always had: never filled in
    state_path.write_text(json.dumps(state))
    with pytest.raises(SoftacError, match=r"missing .* field\(s\): batch_size"):
        cls.load(run)
