"""The environments' random generators in checkpoints: read, written back, and checked against a
whitelist of generator kinds (a name from a file is never looked up in ``numpy.random``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from softac.errors import SoftacError


def get_rng_states(envs: gym.vector.VectorEnv) -> list[dict[str, Any]]:
    """The bit-generator state of every sub-environment (JSON-serialisable)."""
    return [_rng_state(gen) for gen in envs.get_attr("np_random")]  # type: ignore[attr-defined]


def _rng_state(gen: Any) -> dict[str, Any]:
    """A ``Generator``'s bit-generator state; a legacy ``RandomState`` (DeepMind Control's tasks draw
    from one, which Shimmy exposes as ``np_random``) as its MT19937 state, marked ``random_state``."""
    if not isinstance(gen, np.random.RandomState):
        return dict(gen.bit_generator.state)
    state = gen.get_state(legacy=False)
    key, pos = state["state"]["key"], state["state"]["pos"]
    return {"bit_generator": "MT19937", "random_state": True, "state": {"key": [int(v) for v in key], "pos": int(pos)},
            "has_gauss": int(state["has_gauss"]), "gauss": float(state["gauss"])}  # fmt: skip


# The bit generators a checkpoint may name. Why a whitelist: the name comes from state.json, and
# ``getattr(np.random, name)()`` would call whatever callable of numpy.random a file names.
BIT_GENERATORS: dict[str, Callable[[], np.random.BitGenerator]] = {
    "PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "MT19937": np.random.MT19937,
    "Philox": np.random.Philox, "SFC64": np.random.SFC64,
}  # fmt: skip


def set_rng_states(envs: gym.vector.VectorEnv, states: list[dict[str, Any]]) -> None:
    if states and all(isinstance(state, dict) and state.get("random_state") is True for state in states):
        _set_random_states(envs, states)
        return
    gens = []
    for state in states:
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if not isinstance(name, str) or name not in BIT_GENERATORS:
            raise SoftacError(
                f"an environment random state names the generator {name!r}; expected one of {', '.join(BIT_GENERATORS)}"
            )
        gen = np.random.Generator(BIT_GENERATORS[name]())
        try:
            gen.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise SoftacError(f"an environment random state is invalid ({type(exc).__name__}: {exc})") from None
        gens.append(gen)
    envs.set_attr("np_random", gens)  # type: ignore[attr-defined]


def _set_random_states(envs: gym.vector.VectorEnv, states: list[dict[str, Any]]) -> None:
    """Restore legacy ``RandomState`` generators in place (Shimmy's ``np_random`` has no setter)."""
    current = envs.get_attr("np_random")  # type: ignore[attr-defined]
    for gen, state in zip(current, states, strict=True):
        if not isinstance(gen, np.random.RandomState):
            raise SoftacError("a checkpoint holds a legacy RandomState for an environment that draws from a Generator")
        try:
            inner = state["state"]
            gen.set_state({"bit_generator": "MT19937", "state": {"key": np.asarray(inner["key"], dtype=np.uint32),
                           "pos": int(inner["pos"])}, "has_gauss": int(state["has_gauss"]),
                           "gauss": float(state["gauss"])})  # fmt: skip
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise SoftacError(f"an environment random state is invalid ({type(exc).__name__}: {exc})") from None
