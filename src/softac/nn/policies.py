"""The networks of the continuous-action algorithms, each with a leading learner axis.

Shapes: observations ``(L, B, obs_dim)``, actions ``(L, B, act_dim)``, Q values ``(L, n, B)`` for an
ensemble of n critics. A single run is L = 1. Acting heads are written once against an array
namespace ``xp`` (``torch`` or ``numpy``: both spell ``tanh``, ``exp`` and ``clip`` the same), so the
numpy path that acts for one observation on the CPU (see ``softac.algos.offpolicy``) is the same
function as the torch path, not a second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from softac.distributions import squashed_gaussian_rsample
from softac.nn.batched import BATCH_NORMS, BatchedMLP
from softac.nn.fused import squashed_gaussian_head
from softac.nn.simba import BatchedSimba

# A SimBa trunk's (blocks, width), or None for the plain MLP of ``hidden``.
SimbaShape = tuple[int, int] | None


def make_trunk(
    groups: int,
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    simba: SimbaShape = None,
    layer_norm: bool = False,
    **layer: Any,
) -> BatchedMLP | BatchedSimba:
    """The network of an actor or a critic: ``BatchedMLP`` (``layer``: its normalisation options)
    or, with ``simba=(blocks, width)``, a ``BatchedSimba`` (same interface)."""
    if simba is None:
        return BatchedMLP(groups, in_dim, hidden, out_dim, layer_norm=layer_norm, **layer)
    return BatchedSimba(groups, in_dim, simba[1], simba[0], out_dim)


def numpy_forward(mlp: BatchedMLP | BatchedSimba, x: np.ndarray, cache: dict[int, Any]) -> np.ndarray:
    """``mlp`` applied in numpy to float32 ``x`` of shape (G, B, in): x W + b with ReLU between.
    It covers plain Linear/ReLU stacks only: callers check ``mlp.layer_norm`` is False (always True
    for a SimBa trunk, whose LayerNorms and skips this function does not compute).

    The arrays are views of the parameters (no copy: they always hold the current weights, which
    the optimizers update in place); they are rebuilt when a parameter's memory moved (e.g. after
    a checkpoint load)."""
    params = mlp.params()
    cached = cache.get(id(mlp))
    if cached is None or any(p.data_ptr() != ptr for p, (ptr, _) in zip(params, cached, strict=True)):
        cached = [(p.data_ptr(), p.detach().numpy()) for p in params]
        cache[id(mlp)] = cached
    last = len(cached) // 2 - 1
    for i in range(last + 1):
        x = np.matmul(x, cached[2 * i][1]) + cached[2 * i + 1][1]
        if i < last:
            np.maximum(x, 0.0, out=x)
    return x


class Policy(Protocol):
    """What acting needs of a policy network: its batched trunk and an ``xp``-generic head."""

    @property
    def trunk(self) -> BatchedMLP | BatchedSimba: ...

    def head(self, xp: Any, out: Any, noise: Any | None) -> Any: ...


class GaussianActor(nn.Module):
    """SAC's policy: s ↦ (μ_θ(s), log σ_θ(s)). The log-std is a network output (state-dependent,
    as the specification requires: "SAC with state-independent log std devs … did not work"),
    clamped to [log_std_min, log_std_max]."""

    def __init__(
        self,
        learners: int,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int],
        log_std_min: float,
        log_std_max: float,
        simba: SimbaShape = None,
        **layer: Any,
    ) -> None:
        super().__init__()
        self.trunk = make_trunk(learners, obs_dim, hidden, 2 * act_dim, simba, **layer)
        self.act_dim = act_dim
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max
        # The sample as one autograd node (``softac.nn.fused.squashed_gaussian_head``); set with the
        # trunk's ``fused`` from ``fast_update``, off under torch.compile (which fuses it itself).
        self.fused = True

    def forward(
        self, obs: Tensor, params: list[Tensor] | None = None, stats: list[tuple[Tensor, Tensor]] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``stats``: a training-mode call of a network with batch statistics (``BatchedMLP``)."""
        mean, log_std = self.trunk(obs, params=params, stats=stats).split(self.act_dim, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(
        self,
        obs: Tensor,
        noise: Tensor,
        params: list[Tensor] | None = None,
        stats: list[tuple[Tensor, Tensor]] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(ã, log π(ã|s)): the reparameterised sample ã = tanh(μ + σ ⊙ ξ) for ξ = ``noise`` and its
        log-probability (``distributions.squashed_gaussian_rsample``, the reference it equals)."""
        if self.fused and not torch.compiler.is_compiling():
            out = self.trunk(obs, params=params, stats=stats)
            return squashed_gaussian_head(out, noise, self.log_std_min, self.log_std_max)
        mean, log_std = self(obs, params=params, stats=stats)
        return squashed_gaussian_rsample(mean, log_std, noise)

    def head(self, xp: Any, out: Any, noise: Any | None) -> Any:
        """Acting from the trunk's output: tanh(μ) (deterministic, ``noise=None``) or the behaviour
        sample ã = tanh(μ + σ ⊙ ξ) — the reparameterised sample of ``squashed_gaussian_rsample``
        without the log π that acting never uses."""
        a = self.act_dim
        mean = out[..., :a]
        if noise is None:
            return xp.tanh(mean)
        log_std = xp.clip(out[..., a:], self.log_std_min, self.log_std_max)
        return xp.tanh(mean + xp.exp(log_std) * noise)


class DeterministicActor(nn.Module):
    """TD3/DDPG policy: s ↦ μ_θ(s) = tanh(f_θ(s)) in [−1, 1]^dim(A)."""

    def __init__(
        self, learners: int, obs_dim: int, act_dim: int, hidden: Sequence[int], simba: SimbaShape = None
    ) -> None:
        super().__init__()
        self.trunk = make_trunk(learners, obs_dim, hidden, act_dim, simba)
        self.act_dim = act_dim

    def forward(self, obs: Tensor, params: list[Tensor] | None = None) -> Tensor:
        return torch.tanh(self.trunk(obs, params=params))

    def head(self, xp: Any, out: Any, noise: Any | None) -> Any:
        """μ = tanh(f(s)); with ``noise`` (already scaled by σ) the behaviour action clip(μ + ε, −1, 1)."""
        action = xp.tanh(out)
        return action if noise is None else xp.clip(action + noise, -1.0, 1.0)


class CriticEnsemble(nn.Module):
    """n independent Q functions Q_φj(s, a) per learner, held as one batched MLP of L·n groups.

    Input ``obs_act`` (L, B, obs_dim + act_dim) — the replay buffer stores s and a side by side, so
    the critic input needs no concatenation — output Q values (L, n, B); a distributional critic
    (``bins`` = K > 1) outputs logits (L, n, B, K) over its support instead (the last layer K wide;
    the fused CPU node and ``torch.compile`` take any output width)."""

    def __init__(
        self,
        learners: int,
        members: int,
        in_dim: int,
        hidden: Sequence[int],
        layer_norm: bool = False,
        simba: SimbaShape = None,
        bins: int = 1,
        **layer: Any,
    ) -> None:
        super().__init__()
        self.learners, self.members, self.bins = learners, members, bins
        self.net = make_trunk(learners * members, in_dim, hidden, bins, simba, layer_norm, **layer)

    def forward(
        self,
        obs_act: Tensor,
        detach_params: bool = False,
        params: list[Tensor] | None = None,
        members: int | None = None,
        stats: list[tuple[Tensor, Tensor]] | None = None,
    ) -> Tensor:
        """Q values (L, m, B) — logits (L, m, B, K) with ``bins`` K > 1 — of the first ``members``
        critics of each learner (default: all).
        TD3's actor loss needs only Q_φ1: ``members=1`` skips the other critics' forward and
        backward passes rather than computing them and discarding the values."""
        lead, rows, width = obs_act.shape
        m = self.members if members is None else members
        if m != self.members:
            if self.net.norm in BATCH_NORMS:
                raise ValueError("a subset of critics cannot be evaluated with per-critic batch statistics")
            ps = self.net.params(detach_params) if params is None else params
            # Groups are learner-major: (L·M, …) → (L, M, …) → the first m of each learner.
            params = [p.view(self.learners, self.members, *p.shape[1:])[:, :m].reshape(-1, *p.shape[1:]) for p in ps]
        # (L, B, d) → (L·m, B, d): a view for L = 1 (the broadcast member axis has stride 0), one
        # small copy otherwise.
        x = obs_act.unsqueeze(1).expand(lead, m, rows, width).reshape(lead * m, rows, width)
        q = self.net(x, detach_params=detach_params, params=params, stats=stats)
        if self.bins > 1:
            return q.view(lead, m, rows, self.bins)
        return q.squeeze(-1).view(lead, m, rows)
