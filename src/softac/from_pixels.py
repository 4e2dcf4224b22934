"""Observations from pixels: any Gymnasium environment that renders ``rgb_array`` frames, observed
through its rendered image instead of (or besides) its state vector.

``pixel_observations(gym.make("Pendulum-v1", render_mode="rgb_array"), size=84)`` observes Pendulum
through 84×84×3 ``uint8`` frames, channel-last. DeepMind Control renders at the size asked for
(``render_kwargs``), so no resize runs there; MuJoCo needs ``MUJOCO_GL=egl`` on a machine without a
display (docs/images.md, "Environments from pixels").
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AddRenderObservation

from softac.errors import SoftacError

PIXELS_EXTRA = "pixels"  # pyproject's extra with pygame (classic-control rendering) and opencv (resizing)

# ITU-R 601-2 luma as Gymnasium's GrayscaleObservation weighs the channels, so a grayscale frame here
# equals that wrapper's on the same image.
_LUMA = np.array([0.2125, 0.7154, 0.0721])


def _name(env: gym.Env) -> str:
    spec = getattr(env, "spec", None)
    return getattr(spec, "id", None) or type(env.unwrapped).__name__


def _install_line(what: str, env: gym.Env, exc: BaseException) -> SoftacError:
    return SoftacError(
        f"{what} for '{_name(env)}' needs a package that is not installed ({exc}): "
        f"pip install 'softac[{PIXELS_EXTRA}]' (or `make setup`, which installs it)"
    )


class RenderedFrames(gym.Wrapper):
    """``render()`` answers the frame an agent observes: resized to ``size``×``size`` (OpenCV's area
    interpolation, as Gymnasium's ``ResizeObservation``) and, with ``grayscale``, one luma channel.
    Under :class:`~gymnasium.wrappers.AddRenderObservation` it gives the pixel observations, and a
    recorder calling ``render()`` sees what the agent saw."""

    def __init__(self, env: gym.Env, size: int, grayscale: bool) -> None:
        super().__init__(env)
        self.size = size
        self.grayscale = grayscale
        self._cv2: Any = None

    def render(self) -> np.ndarray:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
            shape = getattr(frame, "shape", None)
            raise SoftacError(
                f"'{_name(self.env)}' rendered {type(frame).__name__} of shape {shape}; pixel observations "
                "need an (H, W, 3) RGB image from render()"
            )
        frame = frame[..., :3]  # RGBA → RGB
        if frame.dtype != np.uint8:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.shape[:2] != (self.size, self.size):
            if self._cv2 is None:
                try:  # optional dependency, needed only when the renderer's size differs from `size`
                    import cv2
                except ImportError as exc:
                    raise _install_line(f"resizing rendered frames to {self.size}x{self.size}", self.env, exc) from None
                self._cv2 = cv2
            frame = self._cv2.resize(frame, (self.size, self.size), interpolation=self._cv2.INTER_AREA)
        if self.grayscale:
            return np.sum(frame * _LUMA, axis=-1, keepdims=True).astype(np.uint8)
        return np.ascontiguousarray(frame)


def pixel_observations(env: gym.Env, size: int = 84, grayscale: bool = False, keep_state: bool = False) -> gym.Env:
    """``env`` observed through its rendered frames: ``uint8`` images ``(size, size, 3)`` (``(size, size,
    1)`` with ``grayscale``), channel-last; with ``keep_state`` a ``Dict`` of ``"pixels"`` (the image) and
    ``"state"`` (the environment's own observation). The frame is rendered after every reset and
    step. 84 is DrQ-v2's size; for DeepMind Control render at that size directly (``render_kwargs``:
    no resize, sharper frames).

    ``env`` must have ``render_mode="rgb_array"``. Refused in one :class:`SoftacError` line: another
    render mode, a size below 1, a missing renderer package (pygame for classic control, OpenCV to
    resize: the ``pixels`` extra), or a renderer that fails (MuJoCo without ``MUJOCO_GL=egl`` on a
    machine without a display). Gymnasium's ``AddRenderObservation`` resets ``env`` once, unseeded,
    to size its space: seed the first ``reset`` as usual.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise SoftacError(f"pixel observations need a positive integer size, got {size!r}")
    mode = getattr(env, "render_mode", None)
    if mode != "rgb_array":
        raise SoftacError(
            f"pixel observations need an environment that renders images, but '{_name(env)}' has "
            f"render_mode={mode!r}: create it with render_mode='rgb_array', e.g. "
            f"gymnasium.make('{_name(env)}', render_mode='rgb_array')"
        )
    # Why: pygame's SDL, with no display to open, printed "error: XDG_RUNTIME_DIR is invalid or not set"
    # on every run; an rgb_array frame needs no video driver. The user's own choice is kept.
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    frames = RenderedFrames(env, size, grayscale)
    try:
        return AddRenderObservation(frames, render_only=not keep_state)
    except SoftacError:
        raise
    except gym.error.DependencyNotInstalled as exc:
        raise _install_line("rendering", env, exc) from None
    except Exception as exc:  # the renderer's own error (an OpenGL context that cannot be made, ...)
        message = " ".join(str(exc).split())  # one line, whatever the renderer's message spans
        raise SoftacError(
            f"'{_name(env)}' could not render a frame: {type(exc).__name__}: {message}. MuJoCo and DeepMind Control "
            "on a machine without a display need MUJOCO_GL=egl (or osmesa) set before Python starts"
        ) from None
