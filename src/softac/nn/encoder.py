"""The user's own observation encoder on the learner axis, and the policy trunk that reads it.

An encoder is any ``torch.nn.Module`` class the user passes (``SAC(env, encoder=MyEncoder,
encoder_kwargs={...})``), built as ``MyEncoder(observation_space, **encoder_kwargs)`` — the call
SB3's ``features_extractor_class`` receives — and called on the observation in the environment's
form: a tensor ``(B, *shape)`` for a Box space, a dict of such tensors for a Dict space (a Discrete
key one-hot, as in SB3's ``preprocess_obs``). It returns features ``(B, F)``; the actor and the
critics read them in place of the observation.

The learner axis: L copies, one per learner, each initialised by the module's own ``__init__``
under a torch seed drawn from that learner's generator (so learner k equals the single run with
seed k), their parameters stacked (``torch.func.stack_module_state``) into ``(L, ...)`` tensors and
called through ``torch.func.functional_call`` under ``torch.vmap``: one call for every learner,
whatever the module. Stateful layers (buffers: batch norm's running statistics) are refused: their
updates would be written from inside ``vmap``, where the learner axis cannot carry them.

Why the encoder is shared and trained by the critics alone (SAC-AE, Yarats et al. 2019, §4; DrQ,
Kostrikov et al. 2020): the actor's gradient through a shared encoder destabilised learning from
pixels there; the critic loss gives it a denser signal. The actor reads detached features.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from torch import Tensor, nn

from softac.errors import SoftacError
from softac.obs import ObsLayout


def unflatten(x: Tensor, layout: ObsLayout) -> Tensor | dict[str, Any]:
    """The rows ``(..., dim)`` back in the space's form: a Box's shape, a dict by key path (nested
    keys as nested dicts); Discrete/MultiDiscrete/MultiBinary keys stay their one-hot/bit columns."""
    if not layout.is_dict:
        key = layout.keys[0]
        return x.reshape(*x.shape[:-1], *key.shape) if key.kind == "box" else x
    out: dict[str, Any] = {}
    for key in layout.keys:
        cols = x[..., key.offset : key.offset + key.width]
        if key.kind == "box":
            cols = cols.reshape(*x.shape[:-1], *key.shape)
        parts = key.path.split("/")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = cols
    return out


class StackedEncoder(nn.Module):
    base: nn.Module

    """L copies of the user's encoder, stacked; ``forward`` maps rows (L, B, obs_dim) to features
    (L, B, F). Parameters are registered under their module paths with ``.`` written ``__``, so
    the checkpoint names them (``net/encoder/conv__0__weight``)."""

    def __init__(
        self,
        cls: type[nn.Module],
        kwargs: dict[str, Any],
        space: gym.Space[Any],
        layout: ObsLayout,
        generators: Sequence[torch.Generator],
    ) -> None:
        super().__init__()
        self.layout = layout
        self.cls_name = cls.__name__
        copies = [_build(cls, kwargs, space, gen) for gen in generators]
        params, _ = torch.func.stack_module_state(copies)
        self.names = list(params)
        for name in self.names:
            self.register_parameter(name.replace(".", "__"), nn.Parameter(params[name].detach().clone()))
        # The module's structure without memory: functional_call supplies each learner's tensors.
        # Held outside the Module registry (a plain attribute): it is no state to save or to move.
        object.__setattr__(self, "base", copy.deepcopy(copies[0]).to("meta"))
        probe = copies[0](unflatten(torch.zeros(2, layout.dim), layout))
        if not isinstance(probe, Tensor) or probe.dim() != 2 or probe.shape[0] != 2:
            shape = tuple(probe.shape) if isinstance(probe, Tensor) else type(probe).__name__
            raise SoftacError(f"the encoder {self.cls_name} returned {shape} for a batch of 2 observations; it must "
                              "return features of shape (batch, F)")  # fmt: skip
        self.features = int(probe.shape[1])

    def params(self) -> list[Tensor]:
        return [getattr(self, n.replace(".", "__")) for n in self.names]

    def forward(self, obs: Tensor, params: list[Tensor] | None = None) -> Tensor:
        ps = self.params() if params is None else params
        stacked = dict(zip(self.names, ps, strict=True))

        def one(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return torch.func.functional_call(self.base, p, (unflatten(x, self.layout),))

        return torch.vmap(one)(stacked, obs)


def _build(cls: type[nn.Module], kwargs: dict[str, Any], space: gym.Space[Any], gen: torch.Generator) -> nn.Module:
    """One copy, initialised by its own ``__init__`` from a seed drawn from the learner's generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = cls(space, **kwargs)
        except Exception as exc:
            first = (str(exc).splitlines() or [""])[0]
            raise SoftacError(f"the encoder {cls.__name__}(observation_space, **{kwargs!r}) raised "
                              f"{type(exc).__name__}: {first}") from exc  # fmt: skip
    if not isinstance(module, nn.Module):
        raise SoftacError(f"encoder must be a torch.nn.Module class, {cls!r} built a {type(module).__name__}")
    if any(True for _ in module.buffers()):
        raise SoftacError(f"the encoder {cls.__name__} has buffers (stateful layers such as batch norm), which "
                          "softac's stacked encoders do not carry yet: use LayerNorm or no normalisation")  # fmt: skip
    if not any(True for _ in module.parameters()):
        raise SoftacError(f"the encoder {cls.__name__} has no parameters: nothing for the critics to train")
    return module.float()


class EncodedTrunk(nn.Module):
    """The acting trunk of a policy that reads an encoder: ``trunk(encoder(s))``. Not a plain ReLU
    stack, so acting takes torch's path (the numpy one covers plain MLPs only)."""

    plain_relu = False

    def __init__(self, encoder: nn.Module, trunk: nn.Module) -> None:
        super().__init__()
        self.encoder, self.inner = encoder, trunk

    def forward(self, obs: Tensor) -> Tensor:
        return self.inner(self.encoder(obs))


class EncodedPolicy:
    """A policy (``softac.nn.Policy``) whose trunk runs the encoder first; the head is the actor's."""

    def __init__(self, encoder: nn.Module, actor: Any) -> None:
        self.trunk = EncodedTrunk(encoder, actor.trunk)
        self.head = actor.head


EncoderSpec = tuple[type[nn.Module] | None, dict[str, Any]]


def check_encoder(cls: Any, kwargs: Any, algo: str, supported: bool) -> EncoderSpec:
    """``encoder=`` / ``encoder_kwargs=`` as given to an agent, checked: a Module class and a dict."""
    if cls is None:
        if kwargs:
            raise SoftacError("encoder_kwargs were given without an encoder: pass encoder=<a torch.nn.Module class>")
        return None, {}
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        what = f"a {type(cls).__name__} instance" if isinstance(cls, nn.Module) else repr(cls).splitlines()[0][:80]
        raise SoftacError(f"encoder must be a torch.nn.Module class (not an instance), got {what}")
    if not supported:
        raise SoftacError(f"encoder= is supported by sac, td3 and ddpg; {algo} reads the observation directly")
    if kwargs is not None and not (isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)):
        raise SoftacError(f"encoder_kwargs must be a dict of keyword arguments, got {type(kwargs).__name__}")
    return cls, dict(kwargs or {})


def encoder_record(encoder: nn.Module | None) -> dict[str, Any]:
    """What state.json says of a user's encoder: its class's name and feature width (never the code).
    softac's own image encoder is named by the config and the observation layout instead."""
    if encoder is None or getattr(encoder, "builtin", False):
        return {}
    return {"encoder": {"class": encoder.cls_name, "features": encoder.features}}


def check_encoder_record(recorded: Any, given: type[nn.Module] | None, where: str) -> None:
    """A checkpoint made with an encoder loads only with the same class given again (by the
    caller: a class named in a file is never imported); one without, only without one."""
    name = recorded.get("class") if isinstance(recorded, dict) else None
    if recorded is not None and not isinstance(name, str):
        raise SoftacError(f"{where} has a damaged 'encoder' record in its state.json; it is corrupted")
    if name is None and given is not None:
        raise SoftacError(f"{where} was trained without an encoder; load it without encoder=")
    if name is not None and given is None:
        raise SoftacError(
            f"{where} was trained with the encoder class {name}, which softac never imports from a file: load it "
            f"from Python with the class, e.g. SAC.load(PATH, encoder={name}, encoder_kwargs={{...}})"
        )
    if name is not None and given is not None and given.__name__ != name:
        raise SoftacError(f"{where} was trained with the encoder class {name}, not {given.__name__}")

