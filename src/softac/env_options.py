"""Options that change what an environment shows the agent: frames rendered instead of its
observations (``--pixels SIDE``) and each action repeated (``--action-repeat N``), as DrQ-v2
trains DeepMind Control from pixels (84×84 frames, every action twice).

They wrap every environment a run makes from its id or factory — training and evaluation alike —
after ``gymnasium.make``: ``ActionRepeat`` first, then the rendered frames, so one frame is
rendered per agent step, not per repeated step. The config holds the options, never the wrapped
object, so a run stays resumable from its files. A user's own instance or vector env is used as
given: wrap it yourself (``softac.from_pixels.pixel_observations``, ``softac.action_repeat``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from softac.action_repeat import ActionRepeat
from softac.errors import SoftacError
from softac.from_pixels import pixel_observations

Wrap = Callable[[gym.Env], gym.Env]


def render_kwargs(env_id: str, side: int, given: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """``gymnasium.make`` keyword arguments for frames of ``side``: ``render_mode="rgb_array"``, and for
    DeepMind Control (Shimmy) the frame size and DrQ-v2's camera (2 for quadruped, else 0), so the
    renderer draws ``side``×``side`` directly. What the user gave in ``--env-kwargs`` wins."""
    out = dict(given)
    out.setdefault("render_mode", "rgb_array")
    if env_id.startswith("dm_control/"):
        camera = 2 if env_id.split("/", 1)[1].startswith("quadruped") else 0
        out.setdefault("render_kwargs", {"width": side, "height": side, "camera_id": camera})
    return tuple(sorted(out.items()))


def env_wrap(pixels: int, action_repeat: int) -> Wrap | None:
    """The wrapper the options make, or None when they change nothing."""
    if pixels <= 0 and action_repeat <= 1:
        return None

    def wrap(env: gym.Env) -> gym.Env:
        if action_repeat > 1:
            env = ActionRepeat(env, action_repeat)
        return pixel_observations(env, size=pixels) if pixels > 0 else env

    return wrap


def refuse_for(kind: str, pixels: int, action_repeat: int) -> None:
    """A user's instance or vector env is the user's: softac does not re-wrap it."""
    if kind in ("instance", "vector") and (pixels > 0 or action_repeat > 1):
        what = f"--pixels {pixels}" if pixels > 0 else f"--action-repeat {action_repeat}"
        article = "an" if kind == "instance" else "a"
        raise SoftacError(f"{what} wraps the environments softac makes; this run was given {article} {kind}: pass "
                          "an id or a factory, or wrap it yourself (softac.from_pixels.pixel_observations, "
                          "softac.action_repeat.ActionRepeat)")  # fmt: skip
