"""Batched MLPs: G independent networks of the same shape in one module (DESIGN.md principle 3).

Every weight has a leading *group* dimension, ``(G, in, out)``, and is applied with one batched
product per layer. A group is one member of one learner: G = learners × members, learner-major
(groups ``k·M … k·M + M − 1`` belong to learner k). The twin critics are M = 2 members; N seeds
trained in one process are N learners. So one call evaluates every critic of every learner, and
everything that stores a network (checkpoints, the learner split/join) only needs to know that a
tensor's leading dimension is learner-major.

Initialisation is per group and draws from the *learner's* generator, in the same order whatever
the number of learners: learner k of a batched run starts from exactly the weights a single run
with seed k starts from.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from softac.nn.fused import linear_relu_stack, stack_forward

NORMS = ("none", "layer", "batchrenorm", "batchnorm")
# The normalisations with running statistics (buffers ``ra_mean_i``/``ra_var_i``, a training mode).
BATCH_NORMS = ("batchrenorm", "batchnorm")
# Where a loss collects the new running statistics of a network evaluated in training mode
# (``forward(..., stats=[])``): (live buffer, new value) pairs that ``optim.gradient_step`` copies
# into place after the gradient — the loss never writes state itself.
Stats = list[tuple[Tensor, Tensor]]


def cached_params(net: Any, detach: bool = False) -> list[Tensor]:
    """[W₀, b₀, …, then each normalisation's gain and bias] of a network holding ``weights``,
    ``biases``, ``norm_gains`` and ``norm_biases`` ParameterLists (BatchedMLP, BatchedSimba), built
    once per network (see ``BatchedMLP.params`` for why that is safe)."""
    cached: list[Tensor] | None = net.__dict__.get("_params")
    if cached is None:
        cached = [t for pair in zip(net.weights, net.biases, strict=True) for t in pair]
        cached += [t for pair in zip(net.norm_gains, net.norm_biases, strict=True) for t in pair]
        net.__dict__["_params"] = cached
    return [t.detach() for t in cached] if detach else list(cached)


def batch_mean_var(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased variance over the batch axis (dim 1) of ``(learners, batch, features)``.
    Why not ``x.var`` for wide layers: its reduction across rows is slow on the CPU. At batch 512 and
    256 features, forward and backward, one thread: 1.71 ms against 0.86 ms for the two-pass
    form below (the mean, then the sum of the centred squares; the two agree to 2e-15 in float64),
    6.0 against 2.2 ms with three learners; it was 17% of a CrossQ update's CPU time.
    For a few features (an input layer of 3) ``x.var`` is the faster one (0.10 against 0.32 ms;
    2026-12-06), hence the threshold."""
    mean = x.mean(dim=1, keepdim=True)
    if x.shape[-1] < 32:
        return mean, x.var(dim=1, keepdim=True)
    return mean, (x - mean).square().sum(dim=1, keepdim=True) / (x.shape[1] - 1)


class BatchedMLP(nn.Module):
    """x (G, B, in) → (G, B, out): affine layers with an activation between (ReLU, or tanh as PPO's
    networks use), optionally LayerNorm before each activation (Ba et al. 2016; the critic
    normalisation of RLPD/CrossQ-style agents).

    ``fused=True`` runs a Linear/ReLU stack as one autograd node (``softac.nn.fused``): the same
    function, fewer dispatches. Other stacks, and anything under ``torch.compile`` (which fuses
    the plain ops itself), use the plain ops.
    """

    def __init__(
        self,
        groups: int,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        layer_norm: bool = False,
        activation: str = "relu",
        norm: str = "none",
        renorm_momentum: float = 0.01,
        renorm_eps: float = 1e-3,
        renorm_warmup: int = 100_000,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "tanh"):
            raise ValueError(f"unknown activation {activation!r}")
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}: one of {', '.join(NORMS)}")
        norm = "layer" if layer_norm else norm
        self.groups = groups
        self.sizes = [in_dim, *hidden, out_dim]
        self.norm = norm
        self.layer_norm = norm == "layer"
        self.activation = activation
        # The fused CPU node and the numpy acting path cover plain Linear/ReLU stacks only; any
        # normalisation takes the plain ops (``plain_relu`` says which case a network is).
        self.plain_relu = norm == "none" and activation == "relu"
        self.fused = True
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(self.sizes):
            self.weights.append(nn.Parameter(torch.zeros(groups, fan_in, fan_out)))
            self.biases.append(nn.Parameter(torch.zeros(groups, 1, fan_out)))
        self.norm_gains = nn.ParameterList()
        self.norm_biases = nn.ParameterList()
        if self.layer_norm:
            for width in hidden:
                self.norm_gains.append(nn.Parameter(torch.ones(groups, 1, width)))
                self.norm_biases.append(nn.Parameter(torch.zeros(groups, 1, width)))
        if norm in BATCH_NORMS:
            # Batch Renormalization (Ioffe 2017) before every affine layer, input included, as
            # CrossQ's networks (Bhatt et al. 2024; sb3-contrib's BatchRenorm1d, whose defaults
            # these are): an affine scale/bias (parameters) and running mean/variance (state).
            # "batchnorm" is the same layer whose renormalisation never switches on (the warm-up
            # is ignored): plain batch normalisation (Ioffe & Szegedy 2015), see ``_renormed``.
            self.renorm = (renorm_momentum, renorm_eps, renorm_warmup)
            for i, width in enumerate(self.sizes[:-1]):
                self.norm_gains.append(nn.Parameter(torch.ones(groups, 1, width)))
                self.norm_biases.append(nn.Parameter(torch.zeros(groups, 1, width)))
                self.register_buffer(f"ra_mean_{i}", torch.zeros(groups, 1, width))
                self.register_buffer(f"ra_var_{i}", torch.ones(groups, 1, width))
            # Updates in training mode so far (the warm-up clock), per group so that it is
            # learner-major like every other tensor; all groups hold the same count.
            self.register_buffer("renorm_steps", torch.zeros(groups, dtype=torch.int64))

    @torch.no_grad()
    def reset_parameters(
        self, generators: Sequence[torch.Generator], members: int = 1, gains: Sequence[float] | None = None
    ) -> None:
        """Initialise group by group from learner k's generator for its ``members`` groups.

        Default: ``nn.Linear``'s (weights and biases U(−1/√fan_in, 1/√fan_in)). With ``gains`` (one
        per layer): orthogonal weights scaled by the layer's gain and zero biases, the
        initialisation PPO implementations use (SB3, CleanRL: √2 for hidden layers, 0.01 for the
        policy head, 1 for the value head; Engstrom et al. 2020 found it matters)."""
        if len(generators) * members != self.groups:
            raise ValueError(f"{len(generators)} learners × {members} members ≠ {self.groups} groups")
        if gains is not None and len(gains) != len(self.weights):
            raise ValueError(f"{len(gains)} gains for {len(self.weights)} layers")
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            bound = 1.0 / math.sqrt(w.shape[1])
            for k, gen in enumerate(generators):
                for g in range(k * members, (k + 1) * members):
                    if gains is None:
                        w[g].uniform_(-bound, bound, generator=gen)
                        b[g].uniform_(-bound, bound, generator=gen)
                    else:
                        torch.nn.init.orthogonal_(w[g].T, gain=gains[i], generator=gen)
                        b[g].zero_()

    def params(self, detach: bool = False) -> list[Tensor]:
        """[W₀, b₀, W₁, b₁, …, then each normalisation's gain and bias] (detached: the network as a
        constant, see ``forward``). Optimizers take the parameters in this order too.

        The list is built once: iterating ``ParameterList``s cost ≈57 µs a call, five calls an
        update. The Parameter objects never change (``.to()``, ``load_state_dict`` and the
        optimizers write into them; a deep copy — a target network — copies the list with them)."""
        return cached_params(self, detach)

    def forward(
        self, x: Tensor, detach_params: bool = False, params: list[Tensor] | None = None, stats: Stats | None = None
    ) -> Tensor:
        """``detach_params=True`` lets gradients reach the *input* (the action in an actor loss)
        but never this network's parameters: no weight gradients are even computed, which both
        isolates the step (a "frozen" network that is really frozen) and saves two products per
        layer. ``params`` (as ``params()`` lists them) evaluates the network at other tensors than
        its own: a loss written as a function of its parameters, which ``torch.func.grad`` can
        differentiate (``softac.algos.base.Agent.gradient_step``).

        ``stats``: with batch (re)normalisation, a list makes this a *training-mode* call (batch
        statistics, and the new running statistics appended to it); None evaluates with the
        running statistics, as acting and targets do."""
        if params is None:
            params = self.params(detach_params)
        elif detach_params:
            params = [p.detach() for p in params]
        if self.norm in BATCH_NORMS:
            return self._renormed(x, params, stats)
        if self.fused and self.plain_relu and not torch.compiler.is_compiling():
            return linear_relu_stack(x, params)
        return self._plain(x, params)

    def _renormed(self, x: Tensor, params: list[Tensor], stats: Stats | None) -> Tensor:
        """BRN → affine → ReLU per layer (no ReLU after the last affine). In training mode
        (``stats`` given), per group over the batch: μ_B, σ²_B (unbiased, as torch's ``var``), and
        during the first ``warmup`` updates plain batch normalisation; after it the renormalised
        statistics, r = clip(σ_B/σ, 1/r_max, r_max), d = clip((μ_B − μ)/σ, −d_max, d_max) (both
        without gradient), normalising with μ_B − d·√σ²_B / r and σ²_B / r², σ = √(σ²_run + ε).
        Running statistics move by μ ← μ + m (μ_B − μ), σ² ← σ² + m (σ²_B − σ²). Evaluation
        normalises with the running statistics. Exactly sb3-contrib's BatchRenorm (r_max 3, d_max 5).

        ``norm="batchnorm"``: never renormalised, and the batch normalised with the *biased*
        variance σ²_B·(n−1)/n while the running variance takes the unbiased σ²_B — exactly
        ``torch.nn.BatchNorm1d`` and Ioffe & Szegedy's (2015) Algorithm 2. (sb3-contrib's BRN
        warm-up normalises with the unbiased σ²_B, a factor n/(n−1) in the variance: 1.002 at
        n = 256·2; the original JAX CrossQ's flax BatchNorm keeps the biased one in both.)"""
        momentum, eps, warmup = self.renorm
        plain_bn = self.norm == "batchnorm"
        n_linear = 2 * len(self.weights)
        last = len(self.weights) - 1
        steps = self.renorm_steps
        assert isinstance(steps, Tensor)
        for i in range(last + 1):
            gain, shift = params[n_linear + 2 * i], params[n_linear + 2 * i + 1]
            ra_mean: Tensor = getattr(self, f"ra_mean_{i}")
            ra_var: Tensor = getattr(self, f"ra_var_{i}")
            if stats is None:
                mean, var = ra_mean, ra_var
            else:
                b_mean, b_var = batch_mean_var(x)
                if plain_bn:
                    mean, var = b_mean, b_var * ((x.shape[1] - 1) / x.shape[1])
                else:
                    run_std = (ra_var + eps).sqrt()
                    r = ((b_var + eps).sqrt() / run_std).detach().clamp(1 / 3.0, 3.0)
                    d = ((b_mean - ra_mean) / run_std).detach().clamp(-5.0, 5.0)
                    renorm = (steps > warmup).view(-1, 1, 1)  # a tensor condition: no host sync, graph-safe
                    mean = torch.where(renorm, b_mean - d * b_var.sqrt() / r, b_mean)
                    var = torch.where(renorm, b_var / r.square(), b_var)
                stats.append((ra_mean, ra_mean + momentum * (b_mean.detach() - ra_mean)))
                stats.append((ra_var, ra_var + momentum * (b_var.detach() - ra_var)))
            # The normalisation folded into the layer's product: ((x − μ)/σ·g + s) W + b = x (σ⁻¹g ⊙ W) +
            # ((s − μσ⁻¹g) W + b). The same function, but the only (batch × features) operation left is
            # the product, where four elementwise passes over the batch and their backward were (with the
            # variance above, a CrossQ update at 256-wide critics went from 25.6 to 16.5 ms on one CPU thread).
            scale = gain / (var + eps).sqrt()
            weight = params[2 * i]
            bias = torch.baddbmm(params[2 * i + 1], shift - mean * scale, weight)
            x = torch.baddbmm(bias, x, scale.transpose(1, 2) * weight)
            if i < last:
                x = torch.relu(x) if self.activation == "relu" else torch.tanh(x)
        if stats is not None:
            stats.append((steps, steps + 1))
        return x

    def _plain(self, x: Tensor, params: list[Tensor]) -> Tensor:
        """The stack from separate ops (the reference for the fused node, and what ``torch.compile``
        traces: it fuses the bias add into the ReLU loop itself, so the product takes no bias)."""
        n_linear = 2 * len(self.weights)
        if not self.layer_norm and self.activation == "relu" and not torch.is_grad_enabled():
            return stack_forward(x, params[:n_linear])[-1]
        compiling = torch.compiler.is_compiling()
        last = len(self.weights) - 1
        for i in range(last + 1):
            w, b = params[2 * i], params[2 * i + 1]
            x = torch.bmm(x, w) + b if compiling else torch.baddbmm(b, x, w)
            if i < last:
                if self.layer_norm:
                    gain, bias = params[n_linear + 2 * i], params[n_linear + 2 * i + 1]
                    x = F.layer_norm(x, x.shape[-1:]) * gain + bias
                x = torch.relu(x) if self.activation == "relu" else torch.tanh(x)
        return x
