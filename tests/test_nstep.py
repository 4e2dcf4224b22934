"""n-step returns (issue 20): the stored (R, d, s', γ^m) on hand-computed numbers across truncation,
termination and dropped steps; n = 1 gives the one-step rows; the critic target uses the stored
γ^m; stacked learners equal single runs; a run checkpointed mid-episode (with partial returns
pending) resumes bit-identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, assert_bit_identical, assert_learners_equal_singles, state_tensors

from softac import DQN, SAC, TD3, DiscreteSAC
from softac.data.nstep import NStepAccumulator
from softac.errors import SoftacError
from softac.losses.common import bootstrap


def _step(acc: NStepAccumulator, t: int, r: float, term: bool = False, trunc: bool = False, ok: bool = True) -> list:
    """One step of a single (learner, env): obs = [t], action = [t/10], next_obs = [t + 1]."""
    a = np.array
    out = acc.push(a([[[t]]], np.float32), a([[[t / 10]]], np.float32), a([[r]], np.float32),
                   a([[float(term)]], np.float32), a([[term or trunc]]), a([[[t + 1]]], np.float32),
                   a([[ok]]))  # fmt: skip
    return [(float(s[0]), ret, d, float(s2[0]), g) for s, _, ret, d, s2, g in out[0]]


def test_returns_across_a_truncation_and_a_termination_by_hand() -> None:
    acc = NStepAccumulator(1, 1, n=3, gamma=0.5, obs_dim=1, act_dim=1)
    assert _step(acc, 0, 1.0) == [] and _step(acc, 1, 2.0) == []
    # s0: 1 + 0.5·2 + 0.25·4 = 3, bootstrapped from s3 with 0.5³
    assert _step(acc, 2, 4.0) == [(0.0, 3.0, 0.0, 3.0, 0.125)]
    # a truncation at the 4th step: every pending step bootstraps from the real final s4 with γ^m, m ≤ 3
    assert _step(acc, 3, 8.0, trunc=True) == [
        (1.0, 2 + 0.5 * 4 + 0.25 * 8, 0.0, 4.0, 0.125), (2.0, 4 + 0.5 * 8, 0.0, 4.0, 0.25), (3.0, 8.0, 0.0, 4.0, 0.5),
    ]  # fmt: skip
    # a new episode that terminates after 2 steps: d = 1, no bootstrap, the returns stop at the end
    assert _step(acc, 10, 1.0) == []
    assert _step(acc, 11, 2.0, term=True) == [(10.0, 2.0, 1.0, 12.0, 0.25), (11.0, 2.0, 1.0, 12.0, 0.5)]
    # a dropped (non-finite) step ends the episode: the pending steps bootstrap from the last real s'
    assert _step(acc, 20, 1.0) == [] and _step(acc, 21, 1.0) == []
    assert _step(acc, 22, 99.0, ok=False) == [(20.0, 1.5, 0.0, 22.0, 0.25), (21.0, 1.0, 0.0, 22.0, 0.5)]
    assert acc.count[0, 0] == 0


def test_one_step_accumulation_is_the_one_step_transition() -> None:
    acc = NStepAccumulator(1, 1, n=1, gamma=0.99, obs_dim=1, act_dim=1)
    rng = np.random.default_rng(0)
    for t in range(50):
        r, term, trunc = float(rng.normal()), bool(rng.uniform() < 0.1), bool(rng.uniform() < 0.1)
        r32 = float(np.float32(r))
        assert _step(acc, t, r, term, trunc) == [(float(t), r32, float(term), float(t + 1), 0.99)]


def test_the_target_bootstraps_with_the_stored_discount() -> None:
    reward, terminated, value = torch.tensor([3.0, 8.0, 2.0]), torch.tensor([0.0, 0.0, 1.0]), torch.tensor([10.0] * 3)
    y = bootstrap(reward, terminated, torch.tensor([0.125, 0.5, 0.25]), value)
    assert y.tolist() == [3.0 + 1.25, 8.0 + 5.0, 2.0]
    # a float γ is one-step TD, as before
    assert bootstrap(reward, terminated, 0.5, value).tolist() == [8.0, 13.0, 2.0]


def test_an_agent_stores_n_step_rows_from_its_episodes() -> None:
    """Pendulum (reward ≤ 0, 200-step episodes truncated): row t's R, γ^m and s' from the raw
    one-step transitions of the same run (n = 1, same seed: the same actions during warm-up)."""
    # updates from step 400 change the policy's actions: rows up to t + m − 1 < 400 are compared
    kw = {**TINY, "seed": 2, "learning_starts": 400, "total_steps": 450, "eval_freq": 10_000}
    one, three = SAC("Pendulum-v1", **kw), SAC("Pendulum-v1", **kw, n_step=3)
    one.learn(progress=False)
    three.learn(progress=False)
    o = one.spec.obs_dim
    raw, rows = one.buffer.storage[0, :450].numpy(), three.buffer.storage[0, :450].numpy()
    assert three.buffer.size[0] == 448  # 2 steps of the third episode still pending
    r, g = raw[:, o + 1].astype(np.float64), 0.99
    for t in (0, 100, 197, 198, 199, 200, 300, 396):
        m = min(3, 200 - t % 200)
        assert rows[t, : o + 1].tolist() == raw[t, : o + 1].tolist()  # s, a
        assert rows[t, o + 1] == pytest.approx(sum(g**i * r[t + i] for i in range(m)), rel=1e-6)
        assert rows[t, o + 2] == 0.0  # Pendulum never terminates
        assert rows[t, -1] == np.float32(g**m)
        assert rows[t, o + 3 : 2 * o + 3].tolist() == raw[t + m - 1, o + 3 : 2 * o + 3].tolist()
    assert three.nstep is not None and three.nstep.count[0, 0] == 2


def test_stacked_learners_equal_single_runs() -> None:
    kw = {**TINY, "learning_starts": 150, "total_steps": 260, "eval_freq": 10_000, "n_step": 3, "n_envs": 2}
    stacked = TD3("Pendulum-v1", **kw, seeds=[3, 7])
    stacked.learn(progress=False)
    singles = [TD3("Pendulum-v1", **kw, seed=s) for s in (3, 7)]
    for k, single in enumerate(singles):
        single.learn(progress=False)
        # warm-up rows exactly; after it, actions from networks that agree to rounding
        assert torch.equal(stacked.buffer.storage[k, :140], single.buffer.storage[0, :140])
        close = {"rtol": 1e-4, "atol": 1e-5}
        torch.testing.assert_close(stacked.buffer.storage[k, :256], single.buffer.storage[0, :256], **close)
        assert stacked.buffer.size[k] == single.buffer.size[0] == 256
    assert stacked.updates > 0
    assert_learners_equal_singles(stacked, singles, 1e-4, 1e-5)


def test_resume_at_an_episode_boundary_is_bit_identical(tmp_path: Path) -> None:
    """n-step rows (with their discount column) and networks survive a checkpoint at step 400
    (a Pendulum episode boundary: nothing pending) exactly."""
    kw = {**TINY, "learning_starts": 300, "eval_freq": 400, "seed": 5, "n_step": 3}
    straight = SAC("Pendulum-v1", **kw, total_steps=500)
    straight.learn(progress=False)
    run_dir = tmp_path / "run"
    SAC("Pendulum-v1", **kw, total_steps=400).learn(run_dir=run_dir, progress=False)
    resumed = SAC.load(run_dir)
    resumed.learn(total_steps=500, run_dir=run_dir, progress=False)
    assert resumed.updates == straight.updates == 200
    assert resumed.buffer.size[0] == straight.buffer.size[0] == 498
    assert torch.equal(resumed.buffer.storage[0, :498], straight.buffer.storage[0, :498])
    assert straight.nstep is not None and resumed.nstep is not None
    for name, value in straight.nstep.state_tensors(0).items():
        assert torch.equal(resumed.nstep.state_tensors(0)[name], value), name
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))


def test_resume_mid_episode_stores_the_pending_steps_as_truncated_tails(tmp_path: Path) -> None:
    """At step 300 (mid-episode) two steps are pending; they are checkpointed, and the resumed run
    (whose collector restarts that episode from a reset) stores them as a time limit would:
    R = r_298 + γ r_299 with γ², R = r_299 with γ, both from the last real s' (s_300)."""
    kw = {**TINY, "learning_starts": 200, "eval_freq": 300, "seed": 5, "n_step": 3}
    run_dir = tmp_path / "run"
    first = SAC("Pendulum-v1", **kw, total_steps=300)
    first.learn(run_dir=run_dir, progress=False)
    assert first.nstep is not None and first.buffer.size[0] == 298
    pending = first.nstep.state_tensors(0)
    resumed = SAC.load(run_dir)
    assert resumed.nstep is not None and resumed.nstep.count[0, 0] == 2
    for name, value in pending.items():
        assert torch.equal(resumed.nstep.state_tensors(0)[name], value), name
    resumed.learn(total_steps=400, run_dir=run_dir, progress=False)
    assert resumed.updates == 200 and resumed.buffer.size[0] == 300 + 98
    o, rows = resumed.spec.obs_dim, resumed.buffer.storage[0].numpy()
    assert np.array_equal(rows[:298], first.buffer.storage[0, :298].numpy())
    r, s, s_last = pending["nstep_reward"][0].double(), pending["nstep_obs"][0], pending["nstep_next_obs"][0]
    for t, ret, g in ((298, r[0] + 0.99 * r[1], 0.99**2), (299, r[1], 0.99)):
        assert rows[t, :o].tolist() == s[t - 298].tolist()
        assert rows[t, o + 1] == pytest.approx(float(ret), rel=1e-6) and rows[t, o + 2] == 0.0
        assert rows[t, -1] == np.float32(g) and rows[t, o + 3 : 2 * o + 3].tolist() == s_last.tolist()


def test_a_pending_count_that_cannot_occur_is_refused(tmp_path: Path) -> None:
    kw = {**TINY, "learning_starts": 100, "total_steps": 110, "eval_freq": 110, "n_step": 3}
    agent = SAC("Pendulum-v1", **kw)
    agent.learn(run_dir=tmp_path / "run", progress=False)
    assert agent.nstep is not None
    agent.nstep.count[0, 0] = 3
    with pytest.raises(ValueError, match="do not fit n_step=3"):
        agent.load_data_meta(0, agent.data_meta(0))


def test_n_step_must_be_positive() -> None:
    with pytest.raises(SoftacError, match="n_step"):
        SAC("Pendulum-v1", **TINY, n_step=0)


@pytest.mark.parametrize("cls", [DQN, DiscreteSAC])
def test_discrete_algorithms_learn_from_n_step_rows(cls: type) -> None:
    """CartPole terminates: its terminated tails carry d = 1 and every stored discount is γ^m,
    m ≤ n; the updates run on them (the target reads the per-row discount)."""
    agent = cls("CartPole-v1", **TINY, seed=1, n_step=3, learning_starts=200, total_steps=300, eval_freq=10_000)
    agent.learn(progress=False)
    assert agent.updates > 0
    rows = agent.buffer.storage[0, : int(agent.buffer.size[0])]
    o = agent.spec.obs_dim
    discounts = set(rows[:, -1].tolist())
    assert discounts <= {np.float32(0.99**m).item() for m in (1, 2, 3)} and len(discounts) == 3
    terminated = rows[:, o + 2] == 1.0
    # a terminated episode's last three rows (m = 3, 2, 1) all end in the terminal state
    assert terminated.sum() >= 3 and set(rows[terminated, -1].tolist()) == discounts
