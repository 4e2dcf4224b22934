"""Observation spaces beyond a flat Box (softac.obs): Dict, Discrete, MultiDiscrete, MultiBinary and
N-D Box observations flattened into the one float32 row; what is refused, and how."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from helpers import TINY, TINY_FLAGS, assert_bit_identical, assert_one_line_error, run_cli, state_tensors

from softac import DQN, SAC, SoftacError
from softac.errors import EnvError
from softac.obs import ObsLayout

SHORT: dict[str, Any] = {**TINY, "learning_starts": 100, "eval_freq": 300}


class DictPendulum(gym.ObservationWrapper[Any, Any, Any]):
    """Pendulum's observation under one Dict key, optionally with a constant second key."""

    def __init__(self, env: gym.Env[Any, Any], extra: bool = False) -> None:
        super().__init__(env)
        spaces: dict[str, gym.Space[Any]] = {"state": env.observation_space}
        if extra:
            spaces["mode"] = gym.spaces.Discrete(3, start=-1)
        self.observation_space = gym.spaces.Dict(spaces)
        self.extra = extra
        self.bad: Any = None  # a value to return for "state" instead of the real one
        self.mode = 1

    def observation(self, observation: Any) -> Any:
        state = observation if self.bad is None else self.bad
        return {"state": state, "mode": self.mode} if self.extra else {"state": state}


def test_layout_of_every_kind() -> None:
    space = gym.spaces.Dict({
        "a": gym.spaces.Discrete(3, start=1),
        "b": gym.spaces.Dict({"c": gym.spaces.MultiBinary(2), "d": gym.spaces.MultiDiscrete([2, 3])}),
        "e": gym.spaces.Box(-1, 1, (2, 2), np.float32),
    })  # fmt: skip
    layout = ObsLayout.of(space)
    assert [k.path for k in layout.keys] == ["a", "b/c", "b/d", "e"]
    assert layout.dim == 3 + 2 + 5 + 4 and not layout.identity
    assert layout.slice("b/d") == slice(5, 10)
    obs = {"a": 2, "b": {"c": np.array([1, 0]), "d": np.array([1, 2])}, "e": np.array([[1, 2], [3, 4]])}
    want = [0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 2, 3, 4]
    np.testing.assert_array_equal(layout.flatten(obs), want)
    # a batch of two, as a vector env returns it (every key with a leading dimension)
    batch = {"a": np.array([1, 3]), "b": {"c": np.array([[0, 1], [1, 1]]), "d": np.array([[0, 0], [1, 1]])},
             "e": np.zeros((2, 2, 2))}  # fmt: skip
    flat = layout.flatten(batch)
    assert flat.shape == (2, 14) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat[:, :10], [[1, 0, 0, 0, 1, 1, 0, 1, 0, 0], [0, 0, 1, 1, 1, 0, 1, 0, 1, 0]])
    # every sample of the space flattens like gymnasium's own flatten (the same columns, in order)
    space.seed(0)
    for _ in range(20):
        sample = space.sample()
        np.testing.assert_array_equal(layout.flatten(sample), gym.spaces.flatten(space, sample))
    # a 1-D Box is the identity: the flat path is unchanged
    assert ObsLayout.of(gym.spaces.Box(-1, 1, (3,))).identity


@pytest.mark.parametrize(
    ("obs", "needle"),
    [
        ({"a": 4, "b": {"c": [1, 0], "d": [1, 2]}}, "key 'a' holds [4], outside its Discrete space"),
        ({"a": 1.5, "b": {"c": [1, 0], "d": [1, 2]}}, "key 'a' holds [1.5]"),
        ({"a": 1, "b": {"c": [1, 2], "d": [1, 2]}}, "key 'b/c' holds values other than 0 and 1"),
        ({"a": 1, "b": {"c": [1, 0], "d": [1, 3]}}, "key 'b/d' holds [1, 3]"),
        ({"a": 1, "b": {"c": [1, 0]}}, "has no key 'b/d'"),
        ({"a": 1, "b": {"c": [1, 0, 1], "d": [1, 2]}}, "key 'b/c' has shape (3,), expected (2,)"),
        ({"a": "x", "b": {"c": [1, 0], "d": [1, 2]}}, "key 'a' is str"),
    ],
)
def test_values_outside_their_space_name_the_key(obs: Any, needle: str) -> None:
    space = gym.spaces.Dict({
        "a": gym.spaces.Discrete(3, start=1),
        "b": gym.spaces.Dict({"c": gym.spaces.MultiBinary(2), "d": gym.spaces.MultiDiscrete([2, 3])}),
    })  # fmt: skip
    with pytest.raises(ValueError) as info:
        ObsLayout.of(space).flatten(obs)
    assert needle in str(info.value)


def test_a_dict_of_one_box_trains_bit_identically_to_the_box() -> None:
    """Same seed and config: the Dict run's every learned tensor equals the flat run's, and so do
    its actions; several learners too (learner k = the single run with seed k)."""
    flat = SAC("Pendulum-v1", seeds=[3, 4], **SHORT).learn(400, progress=False)
    wrapped = SAC(lambda: DictPendulum(gym.make("Pendulum-v1")), seeds=[3, 4], **SHORT).learn(400, progress=False)
    assert flat.updates == wrapped.updates == 300
    assert_bit_identical(state_tensors(flat), state_tensors(wrapped))


def test_dict_predict_save_load_and_sb3_evaluate(tmp_path: Path) -> None:
    make = lambda: DictPendulum(gym.make("Pendulum-v1"), extra=True)  # noqa: E731
    agent = SAC(make, seed=0, **SHORT).learn(300, progress=False)
    assert agent.spec.obs_dim == 3 + 3
    one = {"state": np.array([1.0, 0.0, 0.5], np.float32), "mode": 0}
    action, _ = agent.predict(one)
    batch = {"state": np.array([[1.0, 0.0, 0.5], [0.0, 1.0, -1.0]], np.float32), "mode": np.array([0, -1])}
    actions, _ = agent.predict(batch)
    assert action.shape == (1,) and actions.shape == (2, 1)
    np.testing.assert_allclose(actions[0], action, rtol=1e-5)  # one row = the single observation (BLAS rounding)
    with pytest.raises(SoftacError, match="key 'mode' holds \\[5\\]"):
        agent.predict({"state": np.zeros(3, np.float32), "mode": 5})
    with pytest.raises(SoftacError, match="has no key 'state'"):
        agent.predict({"mode": 0})
    agent.save(tmp_path / "ckpt")
    loaded = SAC.load(tmp_path / "ckpt", env=make)
    np.testing.assert_array_equal(loaded.predict(batch)[0], actions)
    # the same total size in another arrangement is not the environment it was trained on
    with pytest.raises(SoftacError, match="laid out as mode: discrete\\[3\\] \\+ state: box\\[3\\]"):
        SAC.load(tmp_path / "ckpt", env=lambda: gym.wrappers.FlattenObservation(make()))
    # SB3's evaluate_policy drives predict with a vector env's batched dict observations
    sb3 = pytest.importorskip("stable_baselines3.common.evaluation")
    monitor = pytest.importorskip("stable_baselines3.common.monitor").Monitor
    vec = pytest.importorskip("stable_baselines3.common.vec_env").DummyVecEnv([lambda: monitor(make())])
    mean, _ = sb3.evaluate_policy(agent, vec, n_eval_episodes=1)
    assert np.isfinite(mean)


def test_discrete_observations_train_from_the_command_line(tmp_path: Path) -> None:
    """FrozenLake's observation is a Discrete(16) index: one-hot columns, a DQN run with updates."""
    run = tmp_path / "lake"
    proc = run_cli("train", "--algo", "dqn", "--env", "FrozenLake-v1", "--total-steps", "400",
                   "--learning-starts", "100", "--eval-freq", "400", "--run-dir", str(run), *TINY_FLAGS)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    agent = DQN.load(run)
    assert agent.spec.obs_dim == 16 and agent.updates > 0
    action, _ = agent.predict(5)
    assert action.shape == () and 0 <= int(action) < 4


def test_refused_spaces_name_the_wrapper(tmp_path: Path) -> None:
    """Blackjack's Tuple observation: one line naming FlattenObservation, exit 2, no run written."""
    proc = run_cli("train", "--algo", "dqn", "--env", "Blackjack-v1", "--run-dir", str(tmp_path / "r"), *TINY_FLAGS)
    assert_one_line_error(proc, "Tuple space", "gymnasium.wrappers.FlattenObservation")
    assert not (tmp_path / "r").exists()
    for space, needle in [
        (gym.spaces.Text(5), "Text space"),
        (gym.spaces.Sequence(gym.spaces.Discrete(2)), "Sequence space"),
        (gym.spaces.Dict({"a": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
                          "b": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}), "2 image keys \\('a', 'b'\\)"),
        (gym.spaces.Dict({}), "empty Dict"),
    ]:
        with pytest.raises(SoftacError, match=needle):
            ObsLayout.of(space)
    # a float Box of any shape flattens (not an image: only uint8 is taken for pixels)
    agent = SAC("SoftacTest/MatrixObs-v0", **SHORT)
    assert agent.spec.obs_dim == 4


def test_bad_dict_values_from_the_environment_are_one_line() -> None:
    env = DictPendulum(gym.make("Pendulum-v1"), extra=True)
    agent = SAC(lambda: env, **{**SHORT, "eval_freq": 10_000})
    env.bad = np.array([np.nan, 0.0, 0.0], np.float32)
    with pytest.raises(SoftacError, match="non-finite observation after reset \\(key 'state'\\)"):
        agent.learn(150, progress=False)
    # an index outside the Discrete key's space: the environment's error (exit 4), naming the key
    env.bad, env.mode = None, 7
    agent = SAC(lambda: env, **{**SHORT, "eval_freq": 10_000})
    with pytest.raises(EnvError, match="returned from reset\\(\\) at step 0: key 'mode' holds \\[7\\], outside"):
        agent.learn(150, progress=False)
