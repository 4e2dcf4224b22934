"""Training from images (``softac.pixels``): the settings of SAC, TD3 and DDPG for an observation
with an image key, and which combinations the image path takes. Kept apart from
:mod:`softac.config` so that each file reads as one job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softac.config import OffPolicyConfig, _f
from softac.env_options import env_wrap, refuse_for, render_kwargs
from softac.env_sources import EnvSource
from softac.envs import EnvSpec
from softac.errors import SoftacError
from softac.pixels import PixelSpec

MAX_STACK = 16


@dataclass(frozen=True)
class PixelConfig(OffPolicyConfig):
    """Frame stacking, augmentation and the image encoder's width (docs/images.md)."""

    frame_stack: int = _f(1, "Images: frames the policy sees, the newest last (DrQ-v2: 3); the environment gives one "
                          "frame per step and softac stacks them, each frame stored once.", "positive")  # fmt: skip
    augment: str = _f("none", "Images: 'shift' applies DrQ's random shift (pad 4, random crop) to every sampled "
                      "observation and next observation; 'none' does not.", choices=("none", "shift"))  # fmt: skip
    image_features: int = _f(50, "Images: width of the convolutional encoder's output (SAC-AE, DrQ, DrQ-v2: 50).",
                             "positive")  # fmt: skip
    pixels: int = _f(0, "Images: train from the environment's rendered frames, this many pixels square (DrQ-v2: "
                     "84), instead of its observations; 0 keeps its observations.", "non-negative")  # fmt: skip
    action_repeat: int = _f(1, "Apply each action this many environment steps, the rewards summed (DrQ-v2: 2); "
                            "total_steps counts the agent's steps.", "positive")  # fmt: skip

    @classmethod
    def added_later(cls) -> dict[str, Any]:
        """Runs saved before images were read trained on vectors: one frame, no augmentation."""
        return {**super().added_later(), "frame_stack": 1, "augment": "none", "image_features": 50, "pixels": 0,
                "action_repeat": 1}

    def validate(self) -> None:
        super().validate()
        if self.frame_stack > MAX_STACK:
            raise SoftacError(f"frame_stack must be at most {MAX_STACK}, got {self.frame_stack}")


def pixel_spec(cfg: Any, spec: EnvSpec, algo: str, takes_images: bool, user_encoder: bool) -> PixelSpec | None:
    """The frame layout of a run whose observation has an image key, or None for one without;
    every combination the image path does not define refused in one line."""
    image = spec.obs_layout.image
    if image is None:
        if isinstance(cfg, PixelConfig) and (cfg.frame_stack > 1 or cfg.augment != "none"):
            what = f"--frame-stack {cfg.frame_stack}" if cfg.frame_stack > 1 else f"--augment {cfg.augment}"
            raise SoftacError(f"{what} acts on image observations, and {spec.env_id}'s observation has no image "
                              "(a uint8 Box of 2 or 3 dimensions): drop the option")  # fmt: skip
        return None
    if not takes_images or not isinstance(cfg, PixelConfig):
        raise SoftacError(f"{spec.env_id}'s observation is an image ({image.name}, uint8 {list(image.shape)}); "
                          f"sac, td3 and ddpg train from images, {algo} reads vectors: use one of them, or the "
                          "environment's state observations")  # fmt: skip
    if user_encoder:
        raise SoftacError("encoder= with an image observation: softac's convolutional encoder reads the image; "
                          "a user's encoder reads vector observations only (flatten the image to give it yours)")
    # Why each is refused: an n-step row's s' is n frames on, which the frame ring's one-step
    # index does not hold; hindsight goals are vectors of a goal-conditioned Dict, not frames; the
    # running normaliser keeps statistics of columns, and pixels are scaled by the encoder instead.
    refused = [(cfg.n_step > 1, f"--n-step {cfg.n_step}", "use --n-step 1"),
               (bool(getattr(cfg, "per", False)), "--per", "drop --per"),
               (bool(getattr(cfg, "her", False)), "--her", "drop --her"),
               (cfg.normalize_obs, "--normalize-obs", "drop it: the encoder scales pixels to [-0.5, 0.5]")]  # fmt: skip
    for bad, what, fix in refused:
        if bad:
            raise SoftacError(f"{what} is not defined for image observations ({spec.env_id}): {fix}")
    return PixelSpec.of(spec.obs_layout, cfg.frame_stack, spec.env_id)


def with_env_options(source: EnvSource, cfg: Any) -> None:
    """Give ``source`` the config's ``--pixels`` and ``--action-repeat`` (``softac.env_options``):
    the render keyword arguments for an id, and the wrapper for every env it makes."""
    pixels, repeat = int(getattr(cfg, "pixels", 0)), int(getattr(cfg, "action_repeat", 1))
    refuse_for(source.kind, pixels, repeat)
    if pixels > 0 and source.kind == "id":
        source.kwargs = render_kwargs(source.env_id, pixels, source.kwargs)
    source.wrap = env_wrap(pixels, repeat)
