"""Observation layouts: how an environment's observation space becomes the networks' input row.

Every vector-like observation is flattened into one float32 vector, the row the replay buffer, the
normaliser and the networks already take (DESIGN.md, "Observations": one storage spec per kind):

- ``Box`` of any shape that is not an image: its values, row-major (a 1-D Box is the identity: the
  flat-vector path is byte-for-byte today's);
- ``Discrete(n, start)``: one-hot of width n (as SB3's ``preprocess_obs``);
- ``MultiDiscrete(nvec)``: one one-hot per entry, concatenated;
- ``MultiBinary``: its bits as 0.0/1.0;
- ``Dict``: each key in the space's own order (the order ``gymnasium.wrappers.FlattenObservation``
  uses), nested dicts by key path ``"outer/inner"``.

A key's columns are known (``ObsLayout.slice``), which is how goal relabelling finds
``achieved_goal`` and ``desired_goal`` in a stored row. An image (a uint8 Box of 2 or 3 dimensions,
or of 4 when ``FrameStackObservation`` stacked it) has no columns: it is the layout's ``image``
key, stored frame by frame as uint8 (``softac.data.frames``) and read by the convolutional encoder
(``softac.pixels``); one image key per observation. ``Tuple``, ``Text``, ``Graph``, ``Sequence``
and other spaces are refused naming the wrapper that makes them usable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from softac.errors import SoftacError

KINDS = ("box", "discrete", "multidiscrete", "multibinary", "image")


@dataclass(frozen=True)
class ObsKey:
    path: str  # the Dict key path ("observation", "outer/inner"); "" for a space that is not a Dict
    kind: str  # one of KINDS
    shape: tuple[int, ...]  # the space's own shape (Discrete: ())
    offset: int  # first column in the flat vector
    width: int  # its columns
    n: tuple[int, ...] = ()  # Discrete: (n,); MultiDiscrete: nvec flattened
    start: tuple[int, ...] = ()  # Discrete / MultiDiscrete: the smallest value of each entry

    @property
    def name(self) -> str:
        return f"key '{self.path}'" if self.path else "the observation"


def is_image(space: gym.Space[Any]) -> bool:
    """A uint8 Box of 2 (H, W) or 3 (H, W, C / C, H, W) dimensions, what SB3 and DrQ treat as pixels,
    or of 4 (K, H, W, C / K, C, H, W): frames stacked by ``gymnasium.wrappers.FrameStackObservation``."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3, 4)


def _refuse(env_id: str, path: str, space: gym.Space[Any]) -> SoftacError:
    where = f"key '{path}' of {env_id}'s observation" if path else f"{env_id}'s observation"
    name = type(space).__name__
    if isinstance(space, gym.spaces.Tuple):
        how = "gymnasium.wrappers.FlattenObservation (a Tuple of Box/Discrete spaces flattens to a Box)"
    else:
        how = "a gymnasium.ObservationWrapper that maps it to a Box or a Dict of Box/Discrete spaces"
    return SoftacError(
        f"{where} is a {name} space, which softac does not take (Box, Discrete, MultiDiscrete, MultiBinary or a "
        f"Dict of them): wrap the environment with {how}"
    )


def _keys(space: gym.Space[Any], path: str, offset: int, env_id: str) -> list[ObsKey]:
    if isinstance(space, gym.spaces.Dict):
        if not space.spaces:
            raise SoftacError(f"{env_id}'s observation is an empty Dict space: nothing to learn from")
        out: list[ObsKey] = []
        for key, sub in space.spaces.items():
            if not isinstance(key, str) or "/" in key or not key:
                raise SoftacError(f"{env_id}'s observation Dict has the key {key!r}: keys must be non-empty "
                                  "strings without '/'")  # fmt: skip
            child = f"{path}/{key}" if path else key
            out += _keys(sub, child, offset + sum(k.width for k in out), env_id)
        return out
    if is_image(space):  # no columns: stored as frames (see the module docstring)
        return [ObsKey(path, "image", tuple(int(v) for v in space.shape or ()), offset, 0)]
    if isinstance(space, gym.spaces.Box):
        if space.dtype is None or np.dtype(space.dtype).kind not in "biuf":
            raise SoftacError(f"{env_id}'s observation Box has dtype {space.dtype}: softac needs real numbers")
        shape = tuple(int(s) for s in space.shape)
        return [ObsKey(path, "box", shape, offset, int(np.prod(shape, dtype=np.int64)))]
    if isinstance(space, gym.spaces.Discrete):
        n = int(space.n)
        return [ObsKey(path, "discrete", (), offset, n, (n,), (int(space.start),))]
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = tuple(int(v) for v in np.asarray(space.nvec).reshape(-1))
        starts = np.broadcast_to(np.asarray(getattr(space, "start", 0)), space.nvec.shape)
        start = tuple(int(v) for v in starts.reshape(-1))
        return [ObsKey(path, "multidiscrete", tuple(space.shape), offset, sum(nvec), nvec, start)]
    if isinstance(space, gym.spaces.MultiBinary):
        shape = tuple(int(s) for s in np.atleast_1d(space.n))
        return [ObsKey(path, "multibinary", shape, offset, int(np.prod(shape, dtype=np.int64)))]
    raise _refuse(env_id, path, space)


@dataclass(frozen=True)
class ObsLayout:
    """The flat float32 vector an observation space maps to: its keys' kinds and columns."""

    keys: tuple[ObsKey, ...]  # the vector keys (columns of the row)
    dim: int
    is_dict: bool
    image: ObsKey | None = None  # the image key, if any: frames, not columns

    @classmethod
    def of(cls, space: gym.Space[Any], env_id: str = "the environment") -> ObsLayout:
        found = _keys(space, "", 0, env_id)
        images = [k for k in found if k.kind == "image"]
        if len(images) > 1:
            # Why one: the DrQ-v2 encoder reads one stack of frames; two cameras need a choice
            # (channels stacked, or two encoders) that the literature does not make for us.
            names = ", ".join(f"'{k.path}'" for k in images)
            raise SoftacError(f"{env_id}'s observation has {len(images)} image keys ({names}); softac reads one: "
                              "keep one camera, or stack them into one image with a gymnasium.ObservationWrapper")
        keys = tuple(k for k in found if k.kind != "image")
        return cls(keys, sum(k.width for k in keys), isinstance(space, gym.spaces.Dict), images[0] if images else None)

    @classmethod
    def flat(cls, dim: int) -> ObsLayout:
        """A 1-D Box of ``dim`` values (the identity layout)."""
        return cls((ObsKey("", "box", (dim,), 0, dim),), dim, False)

    @property
    def identity(self) -> bool:
        """One 1-D Box: the observation *is* the row (no copy beyond the float32 conversion)."""
        return (not self.is_dict and self.image is None and self.keys[0].kind == "box"
                and len(self.keys[0].shape) == 1)  # fmt: skip

    def slice(self, path: str) -> slice:
        """The columns of key ``path`` in the flat vector."""
        for key in self.keys:
            if key.path == path:
                return slice(key.offset, key.offset + key.width)
        raise SoftacError(f"the observation has no key '{path}' (keys: {', '.join(k.path for k in self.keys)})")

    def key_of_column(self, column: int) -> ObsKey:
        for key in self.keys:
            if key.offset <= column < key.offset + key.width:
                return key
        raise IndexError(column)

    def describe(self) -> str:
        """One line for messages and config.json: ``observation: Box(10) + desired_goal: Box(2)``."""
        parts = [f"{k.path + ': ' if k.path else ''}{k.kind}{list(k.shape) if k.shape else list(k.n)}"
                 for k in self.keys]  # fmt: skip
        if self.image is not None:
            parts.append(f"{self.image.path + ': ' if self.image.path else ''}image{list(self.image.shape)} uint8")
        return " + ".join(parts) + f" → {self.dim} columns" + (" + frames" if self.image is not None else "")

    # -- flattening ---------------------------------------------------------------------------
    def batch_shape(self, obs: Any) -> tuple[int, ...]:
        """The leading (batch) dimensions of ``obs`` beyond its space's own shape."""
        key = self.keys[0] if self.keys else self.image
        assert key is not None
        value = _lookup(obs, key.path) if self.is_dict else obs
        arr = np.asarray(value)
        own = 0 if key.kind == "discrete" else len(key.shape)
        return arr.shape[: arr.ndim - own] if arr.ndim >= own else arr.shape

    def flatten(self, obs: Any, batch_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """``obs`` (an array, or a dict of arrays for a Dict space) with leading ``batch_shape``
        dimensions → float32 ``(*batch_shape, dim)``. Raises ``ValueError`` naming the key for a
        value that does not fit its space (a wrong shape, an index out of range, not numbers)."""
        if self.identity:
            return np.asarray(obs, dtype=np.float32)
        if not self.is_dict and isinstance(obs, Mapping):
            raise ValueError("observation is a dict, but the observation space is not a Dict")
        if batch_shape is None:
            batch_shape = self.batch_shape(obs)
        out = np.empty((*batch_shape, self.dim), dtype=np.float32)
        for key in self.keys:
            value = _lookup(obs, key.path) if self.is_dict else obs
            out[..., key.offset : key.offset + key.width] = _columns(key, value, batch_shape)
        return out

    def frames(self, obs: Any, batch_shape: tuple[int, ...]) -> np.ndarray:
        """The image key's frames of ``obs``: uint8 ``(*batch_shape, *shape)``. Raises ``ValueError``
        naming the key for another dtype or shape (a float image scaled to [0, 1] would be read as
        black: refused, not cast)."""
        key = self.image
        if key is None:
            raise ValueError("this observation has no image key")
        arr = np.asarray(_lookup(obs, key.path) if self.is_dict else obs)
        want = batch_shape + key.shape
        if arr.dtype != np.uint8 or arr.shape != want:
            raise ValueError(f"{key.name} is an image of dtype {arr.dtype} and shape {arr.shape}; its space is "
                             f"uint8 of shape {want}")  # fmt: skip
        return arr


def _lookup(obs: Any, path: str) -> Any:
    value = obs
    for part in path.split("/"):
        if not isinstance(value, Mapping):
            raise ValueError(f"observation is {type(value).__name__}, expected a dict holding key '{path}'")
        if part not in value:
            raise ValueError(f"observation has no key '{path}' (it has: {', '.join(map(str, value))})")
        value = value[part]
    return value


def _columns(key: ObsKey, value: Any, batch: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{key.name} is {type(value).__name__} of dtype {arr.dtype}, not numbers")
    want = batch + (() if key.kind == "discrete" else key.shape)
    if arr.shape != want:
        raise ValueError(f"{key.name} has shape {arr.shape}, expected {want}")
    if key.kind == "box":
        return arr.reshape(*batch, key.width).astype(np.float32)
    if key.kind == "multibinary":
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{key.name} holds values other than 0 and 1 in a MultiBinary space")
        return arr.reshape(*batch, key.width).astype(np.float32)
    # Discrete / MultiDiscrete: one-hot per entry. Why check integrality and range: a 2.5 or an index
    # past n would silently light the wrong column (or none), a result that looks like learning.
    entries = arr.reshape(*batch, len(key.n)).astype(np.float64)
    index = entries - np.asarray(key.start, dtype=np.float64)
    n = np.asarray(key.n)
    if not (np.isfinite(index).all() and (index == np.round(index)).all() and (index >= 0).all() and (index < n).all()):
        raise ValueError(f"{key.name} holds {arr.reshape(-1)[:4].tolist()}, outside its "
                         f"{key.kind.capitalize()} space (n={list(key.n)}, start={list(key.start)})")  # fmt: skip
    out = np.zeros((*batch, key.width), dtype=np.float32)
    bases = np.concatenate([[0], np.cumsum(n)[:-1]])
    cols = (index.astype(np.int64) + bases).reshape(-1, len(key.n))
    flat = out.reshape(-1, key.width)
    rows = np.repeat(np.arange(flat.shape[0]), len(key.n))
    flat[rows, cols.reshape(-1)] = 1.0
    return out


def batch_one(obs: Any) -> Any:
    """One environment's observation with a leading dimension of one (dicts key by key), a copy."""
    if isinstance(obs, Mapping):
        return {key: batch_one(value) for key, value in obs.items()}
    return np.asarray(obs)[None].copy()


def observation_array(observation: Any, obs_dim: int, layout: ObsLayout | None = None) -> np.ndarray:
    """One observation (obs_dim,) or a batch (B, obs_dim) as float32, or one clear error. With a
    ``layout`` that is not a flat Box (a Dict, Discrete, ... space) the observation is given in the
    environment's own form (a dict of arrays, an index) and flattened here, as in training."""
    if layout is not None and not layout.identity:
        try:
            observation = layout.flatten(observation)
        except ValueError as exc:
            raise SoftacError(f"{exc}; this policy takes observations of {layout.describe()}") from None
    if isinstance(observation, (str, bytes, dict)):
        raise SoftacError(f"observation must be an array of numbers, got {type(observation).__name__}")
    # Why: a complex observation was cast with its imaginary part dropped (a numpy warning only).
    try:
        kind = np.asarray(observation).dtype.kind
    except (TypeError, ValueError):
        kind = "f"  # ragged or odd: the conversion below names the problem
    if kind not in "biuf":
        what = f"{type(observation).__name__} of kind {kind!r}"
        raise SoftacError(f"observation must be an array of real numbers, got {what}")
    try:
        obs = np.asarray(observation, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise SoftacError(f"observation must be an array of numbers, got {type(observation).__name__} "
                          f"({str(exc).splitlines()[0]})") from None  # fmt: skip
    if obs.ndim not in (1, 2) or obs.shape[-1] != obs_dim:
        raise SoftacError(f"observation has shape {obs.shape}; this policy expects ({obs_dim},)")
    if not np.isfinite(obs).all():
        raise SoftacError("observation holds non-finite values (NaN/inf); the policy's action would be NaN")
    return obs


def learner_observations(obs: Any, learners: int, obs_dim: int) -> tuple[np.ndarray, bool]:
    """Observations (L, B, obs_dim) as float32, and whether they came as (B, obs_dim) — which a
    single learner also takes, as in softac 0.1 — or one clear error."""
    obs = np.asarray(obs, dtype=np.float32)
    flat = obs.ndim == 2 and learners == 1
    if flat:
        obs = obs[None]
    if obs.ndim != 3 or obs.shape[0] != learners or obs.shape[2] != obs_dim:
        raise SoftacError(f"observations of shape {obs.shape}: expected ({learners}, B, {obs_dim})")
    return obs, flat
