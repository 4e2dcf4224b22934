"""Deterministic evaluation on separate environments, every learner at once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from softac.env_checks import check_output
from softac.errors import EnvError, SoftacError
from softac.pixels import Observer
from softac.protocols import AgentLike
from softac.success import info_success

EVAL_SEED_OFFSET = 100_000


class EvaluationStopped(Exception):
    """``stop()`` said to abandon the evaluation (a signal arrived during it): nothing was logged."""


def _call(env: gym.Env, name: str, method: str, episode: int, *args: Any, **kwargs: Any) -> Any:
    """As ``Collector._call``: the evaluation environment's own exception as one EnvError line."""
    try:
        out = getattr(env, method)(*args, **kwargs)
        check_output(env.observation_space, out[0], out[1] if method == "step" else 0.0)
        return out
    except Exception as exc:
        raise EnvError(
            f"the evaluation environment {name} raised {type(exc).__name__} in {method}() "
            f"(evaluation episode {episode}): {exc}"
        ) from exc


def _flat(observer: Observer, k: int, obs: Any, first: bool, name: str, episode: int) -> np.ndarray:
    """One observation as the policy's float32 row (a Dict or Discrete observation flattened; with
    an image, the row with the environment's frame stack: ``softac.pixels``)."""
    try:
        return observer.row(k, obs, first)
    except ValueError as exc:
        raise EnvError(f"the evaluation environment {name} (evaluation episode {episode}): {exc}") from None


def evaluate(
    agent: AgentLike,
    envs: Sequence[gym.Env],
    episodes: int,
    seeds: Sequence[int],
    skip_nonfinite: bool = False,
    stop: Callable[[], bool] | None = None,
    success: np.ndarray | None = None,
) -> np.ndarray:
    """Returns (L, episodes) of the deterministic policy (tanh(μ) for SAC, μ for TD3), learner k on
    ``envs[k]``.

    Learner k's episode e starts from ``reset(seed=seeds[k] + e)``: every evaluation of a run sees
    the same start states (comparable points on the curve), and evaluation never draws from the
    training random streams, so it cannot change what training does. The learners step together
    (one batched action per step); one whose episodes are done waits for the others. A NaN/inf
    reward or observation is an error naming the learner and episode: a silent ``nan`` in
    progress.csv would look like a result. With ``skip_nonfinite`` (the user's choice to drop such
    transitions in training) it ends that episode instead, its return the sum of the finite
    rewards before it, and a warning line says how many episodes ended so.

    ``stop`` is asked before every step; when it says so the evaluation is abandoned
    (:class:`EvaluationStopped`). Why: an episode that never ends (a huge ``max_episode_steps``)
    kept a SIGTERM'd trainer waiting until the scheduler's SIGKILL.

    ``success``, an (L, episodes) array if given, receives each episode's success: the environment's
    flag at the episode's last step (``softac.success``), NaN where it reports none (and for an
    episode cut as non-finite). An output argument, as numpy's ``out=``: the return stays the returns.
    """
    n = len(envs)
    returns = np.zeros((n, episodes))
    if success is not None:
        success[:] = np.nan
    done_eps = np.zeros(n, dtype=np.int64)
    obs = []
    name = agent.config.env_id
    observer = Observer(agent.spec.obs_layout, getattr(agent, "pixels", None), n)
    for k, env in enumerate(envs):
        o, _ = _call(env, name, "reset", 0, seed=int(seeds[k]))
        obs.append(_flat(observer, k, o, True, name, 0))
    current = np.stack(obs)
    cut = 0
    while (done_eps < episodes).any():
        if stop is not None and stop():
            raise EvaluationStopped
        actions = agent.act(current[:, None], deterministic=True)[:, 0]
        for k, env in enumerate(envs):
            if done_eps[k] >= episodes:
                continue
            env_action = agent.to_env(actions[k][None])[0]
            o, r, terminated, truncated, info = _call(env, name, "step", int(done_eps[k]), env_action)
            o, reward = _flat(observer, k, o, False, name, int(done_eps[k])), float(r)
            finite = bool(np.isfinite(reward) and np.isfinite(o).all())
            if not finite and not skip_nonfinite:
                what = "reward" if not np.isfinite(reward) else "observation"
                raise SoftacError(
                    f"the evaluation environment returned a non-finite {what} (learner {k}, episode "
                    f"{int(done_eps[k])}); fix the environment or pass --skip-nonfinite"
                )
            if finite:
                returns[k, done_eps[k]] += reward
            else:
                cut += 1
            if success is not None and (terminated or truncated) and finite and isinstance(info, Mapping):
                flag = info_success(info, f"the evaluation environment {name} (learner {k}, episode {done_eps[k]})")
                success[k, done_eps[k]] = np.nan if flag is None else flag
            if terminated or truncated or not finite:
                done_eps[k] += 1
                if done_eps[k] < episodes:
                    o, _ = _call(env, name, "reset", int(done_eps[k]), seed=int(seeds[k] + done_eps[k]))
                    o = _flat(observer, k, o, True, name, int(done_eps[k]))
            current[k] = o
    if cut:
        print(f"softac: warning: {cut} evaluation episode(s) ended early on a non-finite observation or reward",
              file=sys.stderr)  # fmt: skip
    return returns
