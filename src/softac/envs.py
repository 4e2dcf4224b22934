"""Environment construction, validation, seeding and the one place actions are rescaled."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from softac.env_checks import check_output
from softac.errors import SoftacError
from softac.obs import ObsLayout, batch_one
from softac.robotics import prepare as prepare_robotics


@dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know about an environment."""

    env_id: str
    obs_dim: int
    action_kind: str  # the gymnasium space class: "Box" or "Discrete"
    act_dim: int  # Box: its dimension; Discrete: 1 (the action index, as stored in a buffer)
    n_actions: int  # Discrete: the number of actions; Box: 0
    action_low: np.ndarray  # Box bounds (Discrete: [0], [n − 1])
    action_high: np.ndarray
    obs_layout: ObsLayout  # how an observation becomes the obs_dim columns (softac.obs)
    max_episode_steps: int | None = None  # the time limit the env's registration (or env_kwargs) sets, if known
    # the space itself, for a user's encoder (built as ``Encoder(observation_space, ...)``)
    observation_space: Any = field(default=None, compare=False, repr=False)
    # bytes of one environment's simulator buffers, for the memory check (``simulator_bytes``)
    sim_bytes: int = field(default=0, compare=False)


def simulator_bytes(env: gym.Env) -> int:
    """The bytes a MuJoCo environment holds beyond a plain one: twice its model and data buffers
    (``model.nbuffer + data.nbuffer``; every MuJoCo task of Gymnasium and Gymnasium-Robotics
    compiles its own model), 0 for an environment without them. Why: the memory check counted
    every environment at a few KB, so ``--n-envs`` in the tens of thousands on HalfCheetah-v5
    passed it and then outgrew the machine. Why twice: resident memory per environment, measured
    over 100 of them with 20 steps each in a fresh process (2026-12-07), was Humanoid-v5 1,204,
    Ant-v5 1,139 and HalfCheetah-v5 1,103 KiB, against buffers of 571, 540 and 526 KiB. MuJoCo's
    arena (``model.narena``, 6-14 MB) is reserved whole, but a step touches 7-20 KiB of it
    (``data.maxuse_arena``), which the measurement includes."""
    inner = getattr(env, "unwrapped", env)
    total = 0
    for name in ("model", "data"):
        size = getattr(getattr(inner, name, None), "nbuffer", None)
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0:
            total += int(size)
    return 2 * total


def module_of(env_id: str) -> str | None:
    """The module a ``module:EnvId`` id makes ``gymnasium.make`` import (and so run), or None."""
    return env_id.split(":", 1)[0] if ":" in env_id else None


def check_import_allowed(env_id: str, allowed: Collection[str], where: str) -> None:
    """Refuse an environment id read from a file (``where``) that would import a module the user has
    not named. Why: ``gymnasium.make("mod:Env-v0")`` imports ``mod``, i.e. runs its code, so a
    state.json edited to say ``"this:Pendulum-v1"`` ran code on ``softac eval``."""
    module = module_of(env_id)
    if module is not None and module not in allowed:
        raise SoftacError(
            f"{where} names the environment '{env_id}', which would import the Python module '{module}'; "
            f"loading never imports a module a file names: if you trust it, pass --allow-import {module} "
            f"(Python: allow_import=['{module}'])"
        )


# Namespaces of environment ids whose environments a package registers only when imported, and
# the softac extra that installs it. The modules are fixed here (a whitelist), never taken from an
# id or a file, so a checkpoint naming "dm_control/…" imports nothing but this package.
NAMESPACE_PACKAGES: dict[str, tuple[str, str]] = {"dm_control": ("shimmy", "dmc"), "softac": ("softac.tasks", "")}


def register_namespace(env_id: str) -> None:
    """Register the environments of ``env_id``'s namespace (``dm_control/cheetah-run-v0``: Shimmy's
    DeepMind Control suite) if a known package provides them; one line naming the extra if missing."""
    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    if namespace not in NAMESPACE_PACKAGES or any(key.startswith(namespace + "/") for key in gym.registry):
        return
    module, extra = NAMESPACE_PACKAGES[namespace]
    try:
        with warnings.catch_warnings():
            # dm_control tries a GLFW window at import; on a headless machine GLFW warns that there is
            # no DISPLAY. State observations never render, so that warning is noise there.
            warnings.filterwarnings("ignore", message=".*DISPLAY environment variable is missing")
            package = importlib.import_module(module)
    except ImportError as exc:
        raise SoftacError(
            f"environment '{env_id}' needs the '{extra}' extra ({exc}): pip install 'softac[{extra}]' "
            "(or `make setup`, which installs it)"
        ) from None
    gym.register_envs(package)


def make_env(env_id: str, kwargs: Sequence[tuple[str, Any]] = ()) -> gym.Env:
    """``gym.make(env_id, **kwargs)`` with one clear error line for an id Gymnasium does not know or
    keyword arguments its constructor refuses."""
    if not isinstance(env_id, str) or not env_id:
        raise SoftacError(f"environment id must be a non-empty string, got {env_id!r}")
    register_namespace(env_id)
    prepare_robotics(env_id)  # Gymnasium-Robotics ids: registered on demand (softac.robotics)
    try:
        return gym.make(env_id, **dict(kwargs))
    except (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound) as exc:
        raise SoftacError(
            f"unknown environment '{env_id}': {exc}. List ids with "
            "`python -c \"import gymnasium; gymnasium.pprint_registry()\"`"
        ) from None
    except gym.error.DeprecatedEnv as exc:
        raise SoftacError(f"environment '{env_id}' is deprecated: {exc}") from None
    except gym.error.DependencyNotInstalled as exc:
        raise SoftacError(f"environment '{env_id}' needs an extra package: {exc}") from None
    # Why: a malformed id ("bad id!") raises the base gym.error.Error and a "module:Env-v0" id whose
    # module is missing raises ModuleNotFoundError; both escaped as tracebacks (exit 1), not exit 2.
    except ModuleNotFoundError as exc:
        raise SoftacError(f"environment '{env_id}': {exc}") from None
    except gym.error.Error as exc:
        raise SoftacError(f"invalid environment id '{env_id}': {exc}") from None
    # Why: --env-kwargs reach the environment's constructor, which rejects a wrong keyword or value
    # with TypeError/ValueError (or anything else): one line naming the environment, not a traceback.
    except Exception as exc:
        given = f" with {dict(kwargs)}" if kwargs else ""
        raise SoftacError(
            f"environment '{env_id}' could not be created{given}: {type(exc).__name__}: {exc}"
        ) from exc


def env_spec(env: gym.Env, env_id: str) -> EnvSpec:
    """Check the spaces softac supports and describe them; raise :class:`SoftacError` otherwise.
    Which algorithm takes which action space is checked against the registry by the agent."""
    act = env.action_space
    obs = env.observation_space
    layout = ObsLayout.of(obs, env_id)
    obs_dim = layout.dim
    limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    if isinstance(act, gym.spaces.Discrete):
        low, high = np.array([float(act.start)]), np.array([float(act.start + act.n - 1)])
        return EnvSpec(env_id, obs_dim, "Discrete", 1, int(act.n), low, high, layout, limit, obs,
                       sim_bytes=simulator_bytes(env))  # fmt: skip
    if not isinstance(act, gym.spaces.Box):
        raise SoftacError(
            f"{env_id} has a {type(act).__name__} action space; softac supports Box (continuous) and "
            "Discrete action spaces"
        )
    if len(act.shape) != 1:
        raise SoftacError(f"{env_id} has a Box action space of shape {act.shape}; a flat (1-D) Box is needed")
    if not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
        raise SoftacError(
            f"{env_id} has an action space with infinite bounds ({act.low} .. {act.high}); "
            "a squashed policy needs finite bounds: give the environment a bounded Box action space, e.g. "
            "gymnasium.wrappers.TransformAction(env, lambda a: a, gymnasium.spaces.Box(low, high)) "
            "(ClipAction and RescaleAction keep infinite bounds in Gymnasium 1.x)"
        )
    if np.any(act.high <= act.low):
        raise SoftacError(f"{env_id} has an action space with high <= low in some dimension")
    return EnvSpec(
        env_id=env_id,
        obs_dim=obs_dim,
        action_kind="Box",
        act_dim=int(act.shape[0]),
        n_actions=0,
        action_low=np.asarray(act.low, dtype=np.float64),
        action_high=np.asarray(act.high, dtype=np.float64),
        obs_layout=layout,
        max_episode_steps=limit,
        observation_space=obs,
        sim_bytes=simulator_bytes(env),
    )


class ActionScaler:
    """Maps the library's actions in [−1, 1] to each dimension's [low, high] (and back).

    a_env = low + (a + 1) (high − low) / 2, per dimension: bounds need not be symmetric.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self._half_range = 0.5 * (self.high - self.low)

    def to_env(self, action: np.ndarray) -> np.ndarray:
        scaled = self.low + (np.asarray(action, dtype=np.float64) + 1.0) * self._half_range
        # tanh(u) can round to exactly ±1 in float32; clipping keeps float error inside the box.
        return np.clip(scaled, self.low, self.high)

    def to_unit(self, env_action: np.ndarray) -> np.ndarray:
        return (np.asarray(env_action, dtype=np.float64) - self.low) / self._half_range - 1.0


class DiscreteActions:
    """The one place Discrete actions are mapped: the library stores an action as its index in a
    float column (one row layout for every algorithm's replay buffer); the environment gets the
    integer ``start + index``."""

    def __init__(self, spec: EnvSpec) -> None:
        self.start = int(spec.action_low[0])
        self.n = spec.n_actions

    def to_env(self, action: np.ndarray) -> np.ndarray:
        index = np.asarray(action).reshape(np.shape(action)[:-1]) if np.ndim(action) > 1 else np.asarray(action)
        return np.rint(index).astype(np.int64) + self.start


def action_mapper(spec: EnvSpec) -> ActionScaler | DiscreteActions:
    """Box actions in [−1, 1] → the box; Discrete action indices → the environment's integers."""
    if spec.action_kind == "Discrete":
        return DiscreteActions(spec)
    return ActionScaler(spec.action_low, spec.action_high)


class SingleVectorEnv(gym.vector.VectorEnv):
    """One environment behind the part of the vector-env interface the collector uses, with the
    semantics of ``SyncVectorEnv(autoreset_mode=DISABLED)`` for ``num_envs = 1``: ``reset(seed=s)``
    seeds the env with s, a ``reset_mask`` reset passes no seed, ``step`` returns arrays with a
    leading dimension of one and never resets.

    Why: the default run has one environment, and ``SyncVectorEnv``'s generality (per-env info
    dictionaries merged every step, batched spaces iterated and concatenated) cost ≈75–100 µs per
    step on top of HalfCheetah's own ≈130 µs. The transitions and random streams are identical
    (``tests/test_collector.py`` steps both side by side through episode ends)."""

    def __init__(self, env: gym.Env, owns_env: bool = True) -> None:
        self.env = env
        self.owns_env = owns_env  # False for the user's own instance: theirs to close, not ours
        self.num_envs = 1
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = gym.vector.utils.batch_space(env.observation_space, 1)
        self.action_space = gym.vector.utils.batch_space(env.action_space, 1)
        self.metadata = {**env.metadata, "autoreset_mode": gym.vector.AutoresetMode.DISABLED}
        self._needs_reset = True

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is not None and not bool(np.asarray(mask).reshape(-1)[0]):
            raise ValueError("`options['reset_mask']` must contain at least one True value")
        single_seed = seed[0] if isinstance(seed, list) else seed
        obs, info = self.env.reset(seed=single_seed, options=options)
        check_output(self.single_observation_space, obs)
        self._needs_reset = False
        return batch_one(obs), info

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("step() on an environment whose episode ended: reset it first")
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        check_output(self.single_observation_space, obs, reward)
        self._needs_reset = bool(terminated or truncated)
        return (
            batch_one(obs),
            np.array([reward], dtype=np.float64),
            np.array([terminated], dtype=np.bool_),
            np.array([truncated], dtype=np.bool_),
            info,
        )

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return (self.env.get_wrapper_attr(name),)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        value = values[0] if isinstance(values, (list, tuple)) else values
        setattr(self.env, name, value)

    def close(self, **kwargs: Any) -> None:
        if self.owns_env:
            self.env.close()


def make_vector_env(
    env: str | Callable[[], gym.Env], n_envs: int, kind: str = "sync"
) -> gym.vector.VectorEnv:
    """A Gymnasium vector env with autoreset *disabled*: the collector decides when to reset, so a
    finished episode's real final observation is returned by ``step`` (no ``final_obs`` juggling)
    and resets happen lazily, before the next step, which makes exact resume possible. One env in
    one process (the default) is a ``SingleVectorEnv``, the same semantics at less cost. A batched
    run steps every learner's environments in one vector env (learner-major). ``env`` is an id or a
    function returning a new environment."""
    make: Callable[[], gym.Env] = (lambda: make_env(env)) if isinstance(env, str) else env
    if kind == "sync" and n_envs == 1:
        return SingleVectorEnv(make())
    fns: list[Callable[[], gym.Env]] = [make for _ in range(n_envs)]
    mode = gym.vector.AutoresetMode.DISABLED
    if kind == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
