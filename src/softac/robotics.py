"""Gymnasium-Robotics tasks (the optional extra ``robotics``): registered when an id asks for one,
with the one compatibility adapter softac applies to them.

Why an adapter: gymnasium-robotics 1.4.2 (the release on PyPI) with MuJoCo 4 fails every Fetch and
hand task in ``reset``. Its ``utils.mujoco_utils`` joint helpers assert
``model.jnt_type[i] in (mjtJoint.mjJNT_HINGE, mjtJoint.mjJNT_SLIDE)``; MuJoCo 4's ``jnt_type`` holds
numpy integers that compare equal to the enum with ``==`` but not inside a tuple's ``in``, so the
assertion fails for joints that are hinges. The maze tasks do not call these helpers and run as
released. Pinning MuJoCo below 4 is not an option beside ``dm-control`` (which needs MuJoCo ≥ 4.0.1).
So when, and only when, the released helpers fail this check on a probe model, softac replaces the
four helpers (``get/set_joint_qpos``, ``get/set_joint_qvel``) in softac's own process with copies that
compare the joint type as an integer and are otherwise the released code (the same qpos/qvel widths
per joint type: free 7/6, ball 4/3, hinge and slide 1; ``get_joint_qvel`` keeps upstream's 4 for a
ball). Nothing is written to disk and no other process is touched; ``tests/test_her_envs.py`` holds
the replacements to MuJoCo's own addressing and runs FetchReach through them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from typing import Any

import gymnasium as gym
import numpy as np

from softac.errors import SoftacError

# Id prefixes (after any "namespace/") of the Gymnasium-Robotics tasks softac registers on demand.
PREFIXES = ("Fetch", "PointMaze", "AntMaze", "HandReach", "HandManipulate", "AdroitHand", "FrankaKitchen")
EXTRA = "pip install 'softac[robotics]' (gymnasium-robotics)"


def is_robotics(env_id: str) -> bool:
    return ":" not in env_id and env_id.rsplit("/", 1)[-1].startswith(PREFIXES)


def prepare(env_id: str) -> None:
    """Make a Gymnasium-Robotics id known to ``gymnasium.make`` (and its Fetch tasks runnable), or
    one line naming the extra when it is missing. Other ids: nothing happens."""
    if not is_robotics(env_id):
        return
    if env_id not in gym.registry:
        try:
            # Why stderr is held: importing 1.4.2 prints a notice about the Adroit tasks' reward
            # versions on every start, a second line beside softac's own one-line messages.
            with contextlib.redirect_stderr(io.StringIO()):
                import gymnasium_robotics
        except ImportError:
            raise SoftacError(f"{env_id} is a Gymnasium-Robotics task, which needs the optional extra: "
                              f"{EXTRA}") from None  # fmt: skip
        gym.register_envs(gymnasium_robotics)
    # Also when the ids were already registered (importing gymnasium_robotics registers them, so a
    # program that imported it first must still get the adapter).
    if importlib.util.find_spec("gymnasium_robotics") is not None:
        adapt_joint_helpers()


def _width(model: Any, joint: int, free: int, ball: int) -> int:
    import mujoco

    kind = int(model.jnt_type[joint])
    if kind == int(mujoco.mjtJoint.mjJNT_FREE):
        return free
    if kind == int(mujoco.mjtJoint.mjJNT_BALL):
        return ball
    return 1  # hinge, slide


def _joint(model: Any, name: str) -> int:
    import mujoco

    joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    if joint == -1:
        raise ValueError(f"Joint with name '{name}' is not part of the model!")
    return int(joint)


def set_joint_qpos(model: Any, data: Any, name: str, value: Any) -> None:
    joint = _joint(model, name)
    start = int(model.jnt_qposadr[joint])
    data.qpos[start : start + _width(model, joint, 7, 4)] = np.array(value)


def set_joint_qvel(model: Any, data: Any, name: str, value: Any) -> None:
    joint = _joint(model, name)
    start = int(model.jnt_dofadr[joint])
    data.qvel[start : start + _width(model, joint, 6, 3)] = np.array(value)


def get_joint_qpos(model: Any, data: Any, name: str) -> np.ndarray:
    joint = _joint(model, name)
    start = int(model.jnt_qposadr[joint])
    return np.asarray(data.qpos[start : start + _width(model, joint, 7, 4)]).copy()


def get_joint_qvel(model: Any, data: Any, name: str) -> np.ndarray:
    joint = _joint(model, name)
    start = int(model.jnt_dofadr[joint])
    return np.asarray(data.qvel[start : start + _width(model, joint, 6, 4)]).copy()


_PROBE = '<mujoco><worldbody><body><joint name="h" type="hinge"/><geom size=".1"/></body></worldbody></mujoco>'


def released_helpers_fail() -> bool:
    """Whether gymnasium-robotics' own joint helpers fail on a model with one hinge joint."""
    import mujoco
    from gymnasium_robotics.utils import mujoco_utils

    model = mujoco.MjModel.from_xml_string(_PROBE)
    data = mujoco.MjData(model)
    try:
        mujoco_utils.get_joint_qpos(model, data, "h")
    except AssertionError:
        return True
    return False


def adapt_joint_helpers() -> bool:
    """Replace the four joint helpers when the released ones fail (see the module docstring);
    True when they were replaced."""
    from gymnasium_robotics.utils import mujoco_utils

    if getattr(mujoco_utils, "softac_adapted", None) is not None:  # probed already in this process
        return False
    if not released_helpers_fail():
        mujoco_utils.softac_adapted = False
        return False
    for fn in (set_joint_qpos, set_joint_qvel, get_joint_qpos, get_joint_qvel):
        setattr(mujoco_utils, fn.__name__, fn)
    mujoco_utils.softac_adapted = True
    return True
