"""The goal-conditioned protocol hindsight relabelling needs from an environment, checked once.

Gymnasium's ``GoalEnv`` protocol (which Gymnasium-Robotics' Fetch, maze and hand tasks follow): a
``Dict`` observation with ``observation``, ``achieved_goal`` and ``desired_goal``, and
``compute_reward(achieved_goal, desired_goal, info)`` that recomputes the reward for other goals,
vectorised over a batch. ``--her`` on anything else is refused in one line (exit 2) before training
starts; a ``compute_reward`` that raises or answers in the wrong shape is the environment's bug
(exit 4), found on a probe batch here rather than at the first update.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from softac.data.her import GoalReward, check_rewards
from softac.env_sources import EnvSource
from softac.envs import EnvSpec
from softac.errors import EnvError, SoftacError
from softac.obs import ObsLayout

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


def check_goal_layout(layout: ObsLayout, env_id: str) -> None:
    """Refuse an observation layout without the three keys, or with goals of different sizes."""
    paths = [key.path for key in layout.keys]
    missing = [name for name in GOAL_KEYS if name not in paths]
    if not layout.is_dict or missing:
        have = ", ".join(p for p in paths if p) or "a flat array"
        raise SoftacError(
            f"--her needs a Dict observation with the keys {', '.join(GOAL_KEYS)}; {env_id} gives {have}: "
            "use a goal-conditioned environment (e.g. FetchReach-v4, PointMaze_UMaze-v3) or drop --her"
        )
    ag, dg = layout.slice("achieved_goal"), layout.slice("desired_goal")
    if ag.stop - ag.start != dg.stop - dg.start:
        raise SoftacError(
            f"{env_id}'s achieved_goal has {ag.stop - ag.start} values and its desired_goal {dg.stop - dg.start}; "
            "hindsight relabelling writes achieved goals as desired ones, so they must have the same shape"
        )


def _reward_env(source: EnvSource) -> gym.Env:
    """An environment of the training task whose ``compute_reward`` relabelling calls: the user's
    instance, the first sub-environment of a synchronous vector env, or a new one."""
    if source.instance is not None:
        return source.instance
    subs = getattr(source.vector_env, "envs", None)
    if subs:
        return subs[0]
    return source.make()


def goal_reward(source: EnvSource, spec: EnvSpec) -> GoalReward:
    """The environment's ``compute_reward``, after checking the protocol and one probe call."""
    layout = spec.obs_layout
    check_goal_layout(layout, spec.env_id)
    env = _reward_env(source)
    try:
        fn = env.get_wrapper_attr("compute_reward")
    except AttributeError:
        fn = None
    if not callable(fn):
        raise SoftacError(
            f"--her needs the environment's compute_reward(achieved_goal, desired_goal, info) to recompute rewards "
            f"for relabelled goals; {spec.env_id} has none: add it (Gymnasium's GoalEnv protocol) or drop --her"
        )
    dg = layout.slice("desired_goal")
    goals = np.zeros((2, dg.stop - dg.start), dtype=np.float32)
    try:
        probe = fn(goals, goals, np.array([{}, {}], dtype=object))
    except Exception as exc:
        raise EnvError(
            f"{spec.env_id}'s compute_reward raised {type(exc).__name__} on a batch of 2 goals: {exc}; hindsight "
            "relabelling calls it on batches (a vectorised compute_reward, as Gymnasium-Robotics' is)"
        ) from exc
    check_rewards(probe, 2, spec.env_id)
    return fn
