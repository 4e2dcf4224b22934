"""Action rescaling, environment validation and config validation: bad input → SoftacError."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import TINY

from softac import DDPG, SAC, TD3, SACConfig, SoftacError
from softac.envs import ActionScaler, env_spec, make_env


def test_action_scaler_asymmetric_bounds() -> None:
    low, high = np.array([-2.0, 0.0]), np.array([1.0, 5.0])
    s = ActionScaler(low, high)
    np.testing.assert_array_equal(s.to_env(np.array([-1.0, -1.0])), low)
    np.testing.assert_array_equal(s.to_env(np.array([1.0, 1.0])), high)
    np.testing.assert_allclose(s.to_env(np.array([0.0, 0.0])), [-0.5, 2.5])
    np.testing.assert_allclose(s.to_env(np.array([0.5, -0.5])), [0.25, 1.25])
    # batched, and the inverse
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, size=(100, 2))
    env_a = s.to_env(a)
    assert env_a.shape == (100, 2)
    assert (env_a >= low).all() and (env_a <= high).all()
    np.testing.assert_allclose(s.to_unit(env_a), a, atol=1e-12)
    np.testing.assert_allclose(s.to_unit(low), [-1.0, -1.0])
    np.testing.assert_allclose(s.to_unit(high), [1.0, 1.0])
    # float error past ±1 is clipped into the box
    np.testing.assert_array_equal(s.to_env(np.array([1.0000001, -1.0000001])), [1.0, 0.0])


def test_agent_uses_env_bounds_per_dimension() -> None:
    agent = SAC("SoftacTest/Asym-v0", **TINY)
    np.testing.assert_array_equal(agent.scaler.low, [-2.0, 0.0])
    np.testing.assert_array_equal(agent.scaler.high, [1.0, 5.0])
    obs = np.random.default_rng(0).uniform(-1, 1, size=(50, 3)).astype(np.float32)
    unit = agent.act(obs)
    env_action, state = agent.predict(obs)
    assert state is None
    np.testing.assert_allclose(env_action, agent.scaler.to_env(unit), rtol=1e-6, atol=1e-6)
    assert (env_action >= [-2.0, 0.0]).all() and (env_action <= [1.0, 5.0]).all()


def test_env_spec_of_pendulum() -> None:
    env = make_env("Pendulum-v1")
    spec = env_spec(env, "Pendulum-v1")
    assert (spec.obs_dim, spec.act_dim) == (3, 1)
    np.testing.assert_array_equal(spec.action_low, [-2.0])
    np.testing.assert_array_equal(spec.action_high, [2.0])


@pytest.mark.parametrize(
    ("env_id", "needle"),
    [
        ("NoSuchEnv-v0", "unknown environment"),
        ("Pendulum-v99", "Pendulum-v99"),
        ("CartPole-v1", "Discrete action space"),
        ("SoftacTest/InfiniteBox-v0", "infinite bounds"),
        ("SoftacTest/ImageObs-v0", "is 8×8, too small for the encoder's four 3×3 convolutions"),
        ("bad id!", "invalid environment id 'bad id!'"),
        ("nosuchmodule:Foo-v0", "No module named 'nosuchmodule'"),
    ],
)
def test_bad_environments_are_refused(env_id: str, needle: str) -> None:
    for cls in (SAC, TD3):
        with pytest.raises(SoftacError) as info:
            cls(env_id, **TINY)
        msg = str(info.value)
        assert needle in msg
        assert "\n" not in msg


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": -0.1}, "gamma"),
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"batch_size": 0}, "batch_size"),
        ({"total_steps": -1}, "total_steps"),
        ({"total_steps": 0}, "total_steps"),
        ({"hidden_sizes": (32, 0)}, "hidden_sizes"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
        ({"learning_starts": -5}, "learning_starts"),
        ({"actor_lr": float("nan")}, "actor_lr"),
        ({"critic_lr": 0.0}, "critic_lr"),
        ({"n_critics": 0}, "n_critics"),
        ({"buffer_size": 10, "batch_size": 64}, "batch_size"),
        ({"vectorization": "threads"}, "vectorization"),
        ({"alpha_init": -1.0}, "alpha_init"),
        ({"log_std_min": 3.0}, "log_std_min"),
        ({"target_entropy": float("nan")}, "target_entropy"),
        ({"target_entropy": float("-inf")}, "target_entropy"),
        ({"device": "tpu"}, "tpu"),
        ({"no_such_field": 1}, "no_such_field"),
    ],
)
def test_invalid_hyperparameters_raise(overrides: dict[str, Any], field: str) -> None:
    settings = {**TINY, **overrides}
    with pytest.raises(SoftacError) as info:
        SAC("Pendulum-v1", **settings)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"policy_delay": 0}, "policy_delay"), ({"target_noise": -0.1}, "target_noise"),
     ({"exploration_noise": float("inf")}, "exploration_noise")],
)  # fmt: skip
def test_invalid_td3_hyperparameters_raise(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(SoftacError, match=field):
        TD3("Pendulum-v1", **{**TINY, **overrides})


def test_valid_edge_values_are_accepted() -> None:
    # The boundaries of the valid ranges must not be refused by validate() (run by the agents).
    sac = SAC("Pendulum-v1", **{**TINY, "gamma": 1.0, "tau": 1.0, "learning_starts": 0})
    assert (sac.config.gamma, sac.config.tau, sac.config.learning_starts) == (1.0, 1.0, 0)
    assert SACConfig(gamma=0.0).validate() is None
    td3 = TD3("Pendulum-v1", **{**TINY, "target_noise": 0.0, "policy_delay": 1})
    assert (td3.config.target_noise, td3.config.policy_delay) == (0.0, 1)


def test_wrong_config_class_is_refused() -> None:
    with pytest.raises(SoftacError, match="TD3Config"):
        TD3(config=SACConfig())  # type: ignore[arg-type]


def test_ddpg_config_spells_out_ddpg() -> None:
    cfg = DDPG("Pendulum-v1", **TINY).config
    assert (cfg.n_critics, cfg.policy_delay, cfg.target_noise) == (1, 1, 0.0)


def test_config_round_trips_through_dict() -> None:
    cfg = SACConfig(hidden_sizes=(7, 9), gamma=0.5, target_entropy=-3.0)
    back = SACConfig.from_dict(cfg.to_dict())
    assert back == cfg and isinstance(back.hidden_sizes, tuple)
    with pytest.raises(SoftacError, match="bogus"):
        SACConfig.from_dict({**cfg.to_dict(), "bogus": 1})
