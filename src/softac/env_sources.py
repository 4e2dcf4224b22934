"""Where an agent's environments come from: an id (with keyword arguments), the user's instance, a
factory, or the user's vector env.

Why this exists: ``SAC(gym.make("Pendulum-v1", g=2.0))`` used to keep only the instance's id and
rebuild a plain ``Pendulum-v1``, silently dropping the keyword arguments and every wrapper. Now an
instance is trained on as given, wrappers and all. What a checkpoint can record is only an id and
its keyword arguments (JSON): a Python object cannot be written without pickling it, which softac
never does. So a run made from an instance, a factory or a vector env is *not resumable from a
file alone*; ``config.json``/``state.json`` say so (``"env": {"kind": ..., "resumable": false}``),
the trainer says so once when the run starts, and loading such a run needs the environment again
(``SAC.load(RUN, env=factory)``). ``--env ID --env-kwargs K=V ...`` keeps a run resumable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from softac.envs import EnvSpec, SingleVectorEnv, env_spec, make_env, make_vector_env
from softac.errors import SoftacError

KINDS = ("id", "instance", "factory", "vector")
EnvLike = str | gym.Env | gym.vector.VectorEnv | Callable[[], gym.Env]
_HOW = "give an environment id (--env ID --env-kwargs KEY=VALUE ...) to make a run resumable from its files"


def _name(env: gym.Env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def _call(factory: Callable[[], Any]) -> gym.Env:
    try:
        env = factory()
    except Exception as exc:
        raise SoftacError(f"the environment factory {factory!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(env, gym.Env):
        raise SoftacError(f"the environment factory {factory!r} returned {type(env).__name__}, not a gymnasium.Env")
    return env


@dataclass
class EnvSource:
    kind: str  # one of KINDS
    env_id: str  # the id (kind "id"), else the env's spec id or class name, for config.json and messages
    kwargs: tuple[tuple[str, Any], ...] = ()
    factory: Callable[[], gym.Env] | None = None
    instance: gym.Env | None = None
    vector_env: gym.vector.VectorEnv | None = None
    eval_factory: Callable[[], gym.Env] | None = None
    eval_instance: gym.Env | None = None  # the user's own evaluation env (``eval_env=`` an instance)
    # wraps every env made from the id or the factory (``softac.env_options``: rendered frames, action repeat)
    wrap: Callable[[gym.Env], gym.Env] | None = None
    _spec: EnvSpec | None = field(default=None, repr=False)

    @property
    def resumable(self) -> bool:
        return self.kind == "id"

    def describe(self) -> dict[str, Any]:
        """What config.json and state.json record about the source (never the object itself)."""
        return {"kind": self.kind, "id": self.env_id, "resumable": self.resumable}

    def notice(self) -> str | None:
        """The one line the trainer prints when a run from this source starts, or None."""
        if self.resumable:
            return None
        return (
            f"softac: note: the environment is a Python {self.kind}, which a checkpoint cannot record: resume "
            f"this run with <Algo>.load(RUN, env=<a factory of it>), or {_HOW}"
        )

    def spec(self) -> EnvSpec:
        """Spaces, checked (the instance or vector env itself; a new env closed again otherwise)."""
        if self._spec is None:
            if self.vector_env is not None:
                probe: gym.Env = _SpacesOnly(self.vector_env)
                self._spec = env_spec(probe, self.env_id)
            elif self.instance is not None:
                self._spec = env_spec(self.instance, self.env_id)
            else:  # an id or a factory: a training environment, not the evaluation one
                new = _call(self.factory) if self.factory is not None else make_env(self.env_id, self.kwargs)
                env = self._made(new)
                try:
                    self._spec = env_spec(env, self.env_id)
                finally:
                    env.close()
        return self._spec

    def make(self) -> gym.Env:
        """A new environment like the training one (the evaluation environments): from the
        user's ``eval_env`` if given, else from the id or the factory, else from the instance's
        spec or the vector env's first factory."""
        if self.eval_instance is not None:
            return self.eval_instance
        if self.eval_factory is not None:
            return _call(self.eval_factory)
        if self.kind == "id":
            return self._made(make_env(self.env_id, self.kwargs))
        if self.factory is not None:
            return self._made(_call(self.factory))
        raise SoftacError(
            f"cannot build an evaluation environment like this {self.kind} of {self.env_id}: pass "
            "eval_env=<an instance or factory> (or pass a factory instead of the instance)"
        )

    def evaluation_envs(self, n: int) -> list[gym.Env]:
        """One evaluation environment per learner; the user's single ``eval_env`` instance can
        serve one learner only (they step in turns)."""
        if self.eval_instance is not None and n > 1:
            raise SoftacError(f"an eval_env instance is one environment, {n} seeds need one each: pass a factory")
        return [self.make() for _ in range(n)]

    def release(self, env: gym.Env) -> None:
        """Close an evaluation environment softac made (the user's own instance stays open)."""
        if env is not self.eval_instance:
            env.close()

    def vector(self, n_envs: int, kind: str) -> tuple[gym.vector.VectorEnv, bool]:
        """The training environments, ``n_envs`` of them, and whether softac owns (closes) them."""
        if self.vector_env is not None:
            if self.vector_env.num_envs != n_envs:
                raise SoftacError(
                    f"the vector env holds {self.vector_env.num_envs} environments, the run needs {n_envs} "
                    "(n_envs × seeds)"
                )
            return self.vector_env, False
        if self.instance is not None:
            if n_envs != 1:
                raise SoftacError(
                    f"an environment instance is one environment, the run needs {n_envs} (n_envs × seeds): "
                    "pass a factory (a function returning a new environment) instead"
                )
            return SingleVectorEnv(self.instance, owns_env=False), False
        make = self.factory if self.factory is not None else (lambda: make_env(self.env_id, self.kwargs))
        one = make if self.kind == "id" else lambda: _call(make)
        return make_vector_env(one if self.wrap is None else lambda: self._made(one()), n_envs, kind), True

    def _made(self, env: gym.Env) -> gym.Env:
        """A new env from the id or the factory, wrapped as the options say (``softac.env_options``)."""
        if self.wrap is None:
            return env
        try:
            return self.wrap(env)
        except BaseException:
            env.close()
            raise


class _SpacesOnly(gym.Env):
    """A vector env's single-env spaces, for ``env_spec``."""

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        self.observation_space = envs.single_observation_space
        self.action_space = envs.single_action_space


def _from_spec(env: gym.Env) -> Callable[[], gym.Env] | None:
    """A factory that rebuilds ``env`` from its spec (id, keyword arguments and the wrappers that
    record their arguments), if it can."""
    spec = env.spec
    if spec is None or any(w.kwargs is None for w in spec.additional_wrappers):
        return None
    return lambda: gym.make(spec)


def source_of(env: Any, kwargs: tuple[tuple[str, Any], ...] = (), eval_env: Any = None) -> EnvSource:
    """The source for what the user passed as ``env``: an id, an instance, a vector env or a factory;
    ``eval_env`` (an instance or a factory) builds the evaluation environments where the source
    itself cannot."""
    eval_instance = eval_env if isinstance(eval_env, gym.Env) else None
    eval_factory: Callable[[], gym.Env] | None = eval_env if eval_instance is None and callable(eval_env) else None
    if eval_env is not None and eval_instance is None and eval_factory is None:
        raise SoftacError(f"eval_env must be a gymnasium.Env or a factory, got {type(eval_env).__name__}")
    if isinstance(env, str):
        return EnvSource("id", env, kwargs=kwargs, eval_factory=eval_factory, eval_instance=eval_instance)
    if kwargs:
        raise SoftacError("env_kwargs apply to an environment id; an instance or factory is used as given")
    if isinstance(env, gym.vector.VectorEnv):
        mode = env.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.DISABLED:
            raise SoftacError(
                f"the vector env resets itself ({mode}); softac decides when to reset (to keep each episode's "
                "real final observation): create it with autoreset_mode=gymnasium.vector.AutoresetMode.DISABLED"
            )
        fns = getattr(env, "env_fns", None)
        if eval_factory is None and fns:
            eval_factory = fns[0]
        spec = getattr(env, "spec", None)
        name = spec.id if spec is not None else type(env).__name__
        return EnvSource("vector", name, vector_env=env, eval_factory=eval_factory, eval_instance=eval_instance)
    if isinstance(env, gym.Env):
        if eval_instance is None and eval_factory is None:
            eval_factory = _from_spec(env)
        return EnvSource("instance", _name(env), instance=env, eval_factory=eval_factory, eval_instance=eval_instance)
    if callable(env):
        probe = _call(env)
        try:
            name = _name(probe)
        finally:
            probe.close()
        return EnvSource("factory", name, factory=env, eval_factory=eval_factory, eval_instance=eval_instance)
    raise SoftacError(
        f"env must be an environment id, a gymnasium.Env, a vector env or a function returning an env, "
        f"got {type(env).__name__}"
    )
