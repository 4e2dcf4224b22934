"""Sweep inputs checked as `softac train` checks them: an environment id (built, its spaces against
the algorithm) and ``--env-kwargs`` text."""

from __future__ import annotations

from typing import Any

from softac import registry
from softac.errors import SoftacError
from softac.io.files import loads_json


def env_kwargs_value(text: str) -> dict[str, Any]:
    """``--env-kwargs`` as `softac train` reads it (KEY=VALUE ..., VALUE as JSON if it parses, else
    a string), or one JSON object. Why: the text went to the config as it was, so no sweep could
    give environment arguments. The config checks the keys and values."""
    if text.startswith("{"):
        try:
            value = loads_json(text)
        except ValueError as exc:
            raise SoftacError(f"invalid value for env_kwargs: {exc}") from None
        if not isinstance(value, dict):
            raise SoftacError(f"invalid value for env_kwargs: {text!r} (expected KEY=VALUE ... or a JSON object)")
        return value
    out: dict[str, Any] = {}
    for pair in text.split():
        key, sep, raw = pair.partition("=")
        if not sep or not key.isidentifier():
            raise SoftacError(f"invalid value for env_kwargs: {pair!r} (expected KEY=VALUE)")
        try:
            out[key] = loads_json(raw)
        except ValueError:
            out[key] = raw
    return out


def check_env(algo: str, env_id: str) -> None:
    """The environment can be made, its spaces are supported and the algorithm takes its action
    space, as `softac train` checks at once. Built as train builds it: a ``module:EnvId`` the user
    typed imports its module (sweep refused it, looking the id up without the import),
    and ``--algo dqn`` on Pendulum failed only inside a Ray trial."""
    from softac.envs import env_spec, make_env

    if not isinstance(env_id, str):
        raise SoftacError(f"environment id must be a string, got {env_id!r}")
    env = make_env(env_id)
    try:
        kind = env_spec(env, env_id).action_kind
    finally:
        env.close()
    spaces = registry.get(algo).action_spaces
    if kind not in spaces:
        others = [n for n in registry.for_action_space(kind) if n != algo]
        hint = f": use --algo {' or '.join(others)}" if others else ""
        raise SoftacError(
            f"{env_id} has a {kind} action space, which {algo} does not support (it needs {' or '.join(spaces)}){hint}"
        )


# The longest probe of ``check_reports_success``: one episode, cut here if it runs longer.
PROBE_STEPS = 1_000


def check_reports_success(env_id: str, kwargs: Any, metric: str) -> None:
    """Refuse ``--metric eval_success_rate`` (or ``train_success_rate``) on an environment that
    reports no success, before any trial trains (a trial found it only after training, when its
    progress.csv had no such column). The probe: the environment made as a trial makes it
    (``make_env`` with the run's ``env_kwargs``), reset with seed 0, stepped with uniform random
    actions until its first episode ends or for ``PROBE_STEPS`` steps; it reports success if any
    step's info holds ``is_success`` or ``success`` (``softac.success.SUCCESS_KEYS``: Fetch and the
    mazes put the flag in every step's info). Its limit: an environment that reports the flag only
    in some episodes, or only after ``PROBE_STEPS`` steps of a longer episode, is refused although
    some trial would have the column."""
    from softac.envs import make_env
    from softac.errors import EnvError
    from softac.success import SUCCESS_KEYS

    env = make_env(env_id, tuple(dict(kwargs or {}).items()))
    steps = 0
    try:
        env.action_space.seed(0)
        env.reset(seed=0)
        while steps < PROBE_STEPS:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            if any(key in info for key in SUCCESS_KEYS):
                return
            if terminated or truncated:
                break
    except Exception as exc:
        raise EnvError(f"{env_id} failed in the probe episode of --metric {metric}: {type(exc).__name__}: "
                       f"{exc}") from exc
    finally:
        env.close()
    raise SoftacError(
        f"--metric {metric} needs an environment that reports success; {env_id} reported neither info['is_success'] "
        f"nor info['success'] in {steps} random steps of an episode: choose another --metric, e.g. eval_return_mean"
    )
