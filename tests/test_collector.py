"""Termination vs truncation, decided once in the collector; non-finite transitions."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY

from softac import SAC, TD3, SoftacError
from softac.collector import Collector
from softac.envs import ActionScaler, make_vector_env


def _collector(env_id: str, n_envs: int = 1, skip: bool = False, seeds: tuple[int, ...] = (0,)) -> Collector:
    envs = make_vector_env(env_id, n_envs * len(seeds))
    space = envs.single_action_space
    return Collector(envs, ActionScaler(space.low, space.high).to_env, seeds=seeds, skip_nonfinite=skip)


def _zeros(c: Collector) -> np.ndarray:
    return np.zeros((c.L, c.n, 1), dtype=np.float32)


def test_time_limit_truncation_bootstraps_from_real_final_observation() -> None:
    c = _collector("SoftacTest/Counter-v0", n_envs=2)  # TimeLimit: 5 steps, never terminates
    trs = [c.step(_zeros(c), step) for step in range(7)]
    last = trs[4]  # the 5th step is truncated by the time limit
    np.testing.assert_array_equal(last.terminated, [[0.0, 0.0]])
    np.testing.assert_array_equal(last.obs, [[[4, 0], [4, 0]]])
    np.testing.assert_array_equal(last.next_obs, [[[5, 0], [5, 0]]])  # the real s', not the reset obs
    assert last.episode_returns == [[15.0, 15.0]] and last.episode_lengths == [[5, 5]]
    assert all(not t.episode_returns[0] for t in trs[:4])
    # the next step starts a fresh episode from the reset observation
    np.testing.assert_array_equal(trs[5].obs, [[[0, 1], [0, 1]]])
    np.testing.assert_array_equal(trs[5].next_obs, [[[1, 1], [1, 1]]])
    for t in trs:
        np.testing.assert_array_equal(t.terminated, [[0.0, 0.0]])
        np.testing.assert_array_equal(t.reward, t.obs[..., 0] + 1)


def test_true_termination_stores_terminated() -> None:
    c = _collector("SoftacTest/CounterTerminates-v0")  # terminates at t = 3
    trs = [c.step(_zeros(c), step) for step in range(4)]
    np.testing.assert_array_equal([t.terminated[0, 0] for t in trs], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(trs[2].next_obs, [[[3, 0]]])
    assert trs[2].episode_returns == [[6.0]]
    np.testing.assert_array_equal(trs[3].obs, [[[0, 1]]])


@pytest.mark.parametrize("env_id", ["SoftacTest/Counter-v0", "SoftacTest/CounterTerminates-v0"])
def test_buffer_after_training_keeps_termination_and_truncation_apart(env_id: str) -> None:
    agent = TD3(env_id, **TINY, learning_starts=40, total_steps=120, eval_freq=120, log_freq=60)
    agent.learn(progress=False)
    assert agent.updates > 0
    b = agent.buffer
    rows = b.storage[0, : b.size[0]].cpu().numpy()
    assert b.size[0] == 120
    t, d, t_next = rows[:, 0], rows[:, b.obs_dim + b.act_dim + 1], rows[:, b.obs_dim + b.act_dim + 2]
    np.testing.assert_array_equal(t_next, t + 1)  # s' is always the real successor, never a reset obs
    if env_id.endswith("Terminates-v0"):
        np.testing.assert_array_equal(d, (t_next == 3).astype(np.float32))
        assert d.sum() == 40
    else:
        assert d.sum() == 0 and (t_next == 5).sum() == 24  # 24 time-limit truncations, all d = 0


@pytest.mark.parametrize(("env_id", "what"), [("SoftacTest/NaNObs-v0", "observation"),
                                              ("SoftacTest/InfReward-v0", "reward")])  # fmt: skip
def test_nonfinite_transition_raises_naming_the_step(env_id: str, what: str) -> None:
    c = _collector(env_id)
    for step in range(7):
        c.step(_zeros(c), 100 + step)
    with pytest.raises(SoftacError) as info:
        c.step(_zeros(c), 107)
    msg = str(info.value)
    assert f"non-finite {what} at step 107" in msg
    assert "--skip-nonfinite" in msg


@pytest.mark.parametrize("env_id", ["SoftacTest/NaNObs-v0", "SoftacTest/InfReward-v0"])
def test_skip_nonfinite_drops_the_transition(env_id: str) -> None:
    c = _collector(env_id, skip=True)
    kept = [c.step(_zeros(c), step) for step in range(12)]
    counts = [int(t.ok.sum()) for t in kept]
    assert counts == [1] * 7 + [0] + [1] * 4  # the bad 8th step is dropped, nothing else
    for t in kept:  # a dropped step's values are zeroed, never passed on as NaN/inf
        assert np.isfinite(t.obs).all() and np.isfinite(t.next_obs).all() and np.isfinite(t.reward).all()
    # the env whose state became untrustworthy is reset: the next transition starts an episode
    np.testing.assert_array_equal(kept[8].obs, [[[0.0, 1.0]]])


def test_training_on_nonfinite_env_raises_then_skips() -> None:
    settings = {**TINY, "learning_starts": 4, "total_steps": 60, "eval_freq": 60, "log_freq": 30}
    failing = SAC("SoftacTest/NaNObs-v0", **settings)
    with pytest.raises(SoftacError, match="non-finite observation at step 7"):
        failing.learn(progress=False)
    assert failing.updates == 3  # it was updating (steps 5..7) when the bad observation came
    agent = SAC("SoftacTest/NaNObs-v0", **settings, skip_nonfinite=True)
    agent.learn(progress=False)
    assert agent.updates > 0
    assert agent.buffer.size[0] == 59  # 60 steps, one dropped
    assert np.isfinite(agent.buffer.storage[0, : agent.buffer.size[0]].cpu().numpy()).all()


@pytest.mark.parametrize(
    ("env_id", "steps", "skip"),
    [("SoftacTest/CounterTerminates-v0", 12, False), ("Pendulum-v1", 450, False), ("SoftacTest/NaNObs-v0", 25, True)],
)
def test_single_env_path_equals_sync_vector_env(env_id: str, steps: int, skip: bool) -> None:
    """``make_vector_env(id, 1)`` is the lean ``SingleVectorEnv``: step by step it must give the same
    transitions, episode ends and environment random state as Gymnasium's ``SyncVectorEnv``
    (terminations, time-limit truncations, dropped non-finite steps, and a checkpoint restore)."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    from softac.env_rng import get_rng_states
    from softac.envs import SingleVectorEnv, make_env

    lean = make_vector_env(env_id, 1)
    assert isinstance(lean, SingleVectorEnv)
    sync = SyncVectorEnv([lambda: make_env(env_id)], autoreset_mode=AutoresetMode.DISABLED)
    space = lean.single_action_space
    scaler = ActionScaler(space.low, space.high)
    pair = [Collector(e, scaler.to_env, seeds=[5], skip_nonfinite=skip) for e in (lean, sync)]
    rng = np.random.default_rng(0)
    for step in range(steps):
        if step == steps // 2:  # as after loading a checkpoint: same generators, fresh episodes
            for c in pair:
                c.restore([pair[1].state(0)])
        action = rng.uniform(-1, 1, size=(1, 1, space.shape[0])).astype(np.float32)
        a, b = (c.step(action, step) for c in pair)
        for field in ("obs", "action", "reward", "terminated", "next_obs", "ok"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=f"{field} at step {step}")
        assert (a.episode_returns, a.episode_lengths) == (b.episode_returns, b.episode_lengths)
        assert pair[0].needs_reset.tolist() == pair[1].needs_reset.tolist()
    assert get_rng_states(lean) == get_rng_states(sync)


def test_learners_each_see_the_episodes_of_their_own_seed() -> None:
    """L learners × n envs in one vector env: learner k's transitions are those of a collector with
    learner k's seed alone (sub-env i seeded seed_k + i), through resets and a restore."""
    seeds = (3, 11)
    both = _collector("Pendulum-v1", n_envs=2, seeds=seeds)
    alone = [_collector("Pendulum-v1", n_envs=2, seeds=(s,)) for s in seeds]
    rng = np.random.default_rng(0)
    for step in range(420):  # two 200-step episodes and a restore at step 300
        if step == 300:
            both.restore([both.state(k) for k in range(2)])
            for c in alone:
                c.restore([c.state(0)])
        action = rng.uniform(-1, 1, size=(2, 2, 1)).astype(np.float32)
        tr = both.step(action, step)
        for k, c in enumerate(alone):
            mine = c.step(action[k : k + 1], step)
            for field in ("obs", "reward", "terminated", "next_obs"):
                np.testing.assert_array_equal(getattr(tr, field)[k], getattr(mine, field)[0], err_msg=field)
            assert tr.episode_returns[k] == mine.episode_returns[0]
    assert both.state(1)["rng"] == alone[1].state(0)["rng"]
