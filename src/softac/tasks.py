"""Project-made tasks: small environments for softac's tests, cheap to step on a 2-core CPU.

``softac/PixelReach-v0``: a point agent in the unit square moves towards a target it sees only in a
32×32 ``uint8`` image. Importing this module registers it (softac does so on demand for any
``softac/…`` id, through :data:`softac.envs.NAMESPACE_PACKAGES`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

PIXEL_REACH_ID = "softac/PixelReach-v0"
PIXEL_REACH_STEPS = 50  # the registration's time limit: 50 steps of 0.1 cross the square's diagonal (1.41) 3.5 times

# Intensities of the blobs: the two differ, and each differs from the background, in every channel
# layout, so one 3×3 convolution can tell agent from target (grayscale: 255 vs 128; RGB: red vs green).
_GRAY = {"agent": (255,), "target": (128,)}
_RGB = {"agent": (255, 48, 48), "target": (48, 255, 48)}


class PixelReach(gym.Env[Any, np.ndarray]):
    """Move a point agent to a target, seen from pixels.

    - **State**: agent and target positions in [0, 1]²; both drawn uniformly at ``reset``, unless
      ``target`` fixes the target's (an easier task: one blob to find, not two to relate).
    - **Action**: a velocity in [−1, 1]² (clipped), scaled by ``step_size``; the agent stays in the square.
    - **Reward**: −‖agent − target‖ after the move. Dense and bounded in [−√2, 0]: every step says
      how far off the agent is, so the learner needs no exploration luck (a sparse "reached" reward
      would), only to find the two blobs in the image and move one towards the other. The best
      return is reached by the greedy controller (move straight at the target), which makes a
      scripted baseline exact.
    - **Episode**: never terminates; the registration truncates it after 50 steps (``gym.make``
      adds the time limit; a ``PixelReach()`` built directly runs until you stop it).
    - **Observation**: a ``uint8`` image ``(size, size, C)``, channel-last: black background, the
      target a 3×3 blob of 128 (green in RGB), the agent a 3×3 blob of 255 (red) drawn over it. With
      ``with_state`` a ``Dict`` of ``"pixels"`` (that image) and ``"state"`` (float32 agent x, y,
      target x, y), for tests of image + vector observations.

    Deterministic given ``reset(seed=...)``. ``render()`` returns the RGB image (render_mode "rgb_array").
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012 (gymnasium's class attribute)

    def __init__(
        self,
        size: int = 32,
        channels: int = 1,
        with_state: bool = False,
        step_size: float = 0.1,
        target: tuple[float, float] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 8:
            raise ValueError(f"size must be an integer of at least 8 pixels, got {size!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        if not (isinstance(step_size, (int, float)) and 0.0 < float(step_size) <= 1.0):
            raise ValueError(f"step_size must be in (0, 1], got {step_size!r}")
        fixed = None if target is None else np.asarray(target, dtype=np.float64)
        if fixed is not None and (fixed.shape != (2,) or not np.all((fixed >= 0.0) & (fixed <= 1.0))):
            raise ValueError(f"target must be None (drawn at reset) or a position (x, y) in [0, 1]², got {target!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size = size
        self.channels = channels
        self.with_state = with_state
        self.step_size = float(step_size)
        self.fixed_target = fixed
        self.render_mode = render_mode
        pixels = gym.spaces.Box(0, 255, (size, size, channels), np.uint8)
        state = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
        self.observation_space = gym.spaces.Dict({"pixels": pixels, "state": state}) if with_state else pixels
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.agent = np.zeros(2)
        self.target = np.zeros(2)

    def pixel_of(self, position: np.ndarray) -> tuple[int, int]:
        """The (row, column) of the image pixel a position's blob is centred on: x runs along the
        columns, y down the rows."""
        col, row = np.rint(np.asarray(position, dtype=np.float64) * (self.size - 1)).astype(int)
        return int(row), int(col)

    def draw(self, channels: int | None = None) -> np.ndarray:
        """The current image, ``(size, size, channels)`` uint8 (``channels`` defaults to the env's)."""
        channels = self.channels if channels is None else channels
        colours = _GRAY if channels == 1 else _RGB
        image = np.zeros((self.size, self.size, channels), np.uint8)
        for name, position in (("target", self.target), ("agent", self.agent)):  # the agent on top
            row, col = self.pixel_of(position)
            image[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2] = colours[name]
        return image

    def _obs(self) -> Any:
        pixels = self.draw()
        if not self.with_state:
            return pixels
        return {"pixels": pixels, "state": np.concatenate([self.agent, self.target]).astype(np.float32)}

    def distance(self) -> float:
        """The distance from the agent to the target (the reward is its negative)."""
        return float(np.linalg.norm(self.agent - self.target))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.agent = self.np_random.uniform(0.0, 1.0, 2)
        drawn = self.np_random.uniform(0.0, 1.0, 2)  # drawn even when fixed: the agent's start is the same
        self.target = drawn if self.fixed_target is None else self.fixed_target.copy()
        return self._obs(), {"distance": self.distance()}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        velocity = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        if not np.all(np.isfinite(velocity)):
            raise ValueError(f"PixelReach got a non-finite action {action!r}")
        self.agent = np.clip(self.agent + self.step_size * velocity, 0.0, 1.0)
        distance = self.distance()
        return self._obs(), -distance, False, False, {"distance": distance}

    def render(self) -> np.ndarray | None:
        return self.draw(3) if self.render_mode == "rgb_array" else None


def greedy_action(env: gym.Env) -> np.ndarray:
    """The scripted controller: straight at the target, at full speed until the last step lands on it.
    Reads the env's state (``env.unwrapped``), so it is a reference for tests, not a policy."""
    base = env.unwrapped
    if not isinstance(base, PixelReach):
        raise TypeError(f"greedy_action needs a PixelReach environment, got {type(base).__name__}")
    return np.clip((base.target - base.agent) / base.step_size, -1.0, 1.0).astype(np.float32)


if PIXEL_REACH_ID not in gym.registry:  # guarded: importing twice (or reloading) must not re-register
    gym.register(PIXEL_REACH_ID, entry_point="softac.tasks:PixelReach", max_episode_steps=PIXEL_REACH_STEPS)
