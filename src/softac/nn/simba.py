"""SimBa trunks (Lee et al. 2024, "SimBa: Simplicity Bias for Scaling Up Parameters in Deep RL"),
batched over a group axis exactly as :class:`softac.nn.batched.BatchedMLP` (G = learners × members,
learner-major), with the same interface, so the policies and critics take either unchanged.

    h₀ = x W_in + b_in                                   (input projection to width w)
    h_{i+1} = h_i + MLP_i(LN_i(h_i)),  MLP(u) = ReLU(u W₁ + b₁) W₂ + b₂,  W₁: w→4w, W₂: 4w→w
    out = LN_out(h_N) W_out + b_out                      (final LayerNorm, output linear)

The paper's third ingredient, running observation normalisation, is softac's ``normalize_obs``
(``softac.data.normaliser``): the ``--network simba`` presets turn it on (docs/networks.md).
Initialisation: nn.Linear's, per group from the learner's generator (learner k of a batched run ==
a single run with seed k); the paper uses orthogonal weights — the numbers differ, not the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from softac.nn.batched import cached_params


class BatchedSimba(nn.Module):
    """x (G, B, in) → (G, B, out) through ``blocks`` pre-LN residual blocks of width ``width``.

    ``layer_norm = True`` tells the acting code (``OffPolicyAgent._policy``) that the numpy path,
    which only knows Linear/ReLU stacks, does not cover this network; ``fused`` is never used."""

    layer_norm = True
    # What the fused CPU node and the numpy acting path cover (``BatchedMLP.plain_relu``): not this.
    plain_relu = False
    norm = "simba"
    activation = "relu"

    def __init__(self, groups: int, in_dim: int, width: int, blocks: int, out_dim: int) -> None:
        super().__init__()
        self.groups, self.width, self.blocks = groups, width, blocks
        self.fused = False
        # Linear layers in order: input, (up, down) per block, output.
        shapes = [(in_dim, width)] + [(width, 4 * width), (4 * width, width)] * blocks + [(width, out_dim)]
        self.weights = nn.ParameterList(nn.Parameter(torch.zeros(groups, i, o)) for i, o in shapes)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(groups, 1, o)) for _, o in shapes)
        # One LayerNorm per block plus the final one.
        self.norm_gains = nn.ParameterList(nn.Parameter(torch.ones(groups, 1, width)) for _ in range(blocks + 1))
        self.norm_biases = nn.ParameterList(nn.Parameter(torch.zeros(groups, 1, width)) for _ in range(blocks + 1))

    @torch.no_grad()
    def reset_parameters(self, generators: Sequence[torch.Generator], members: int = 1) -> None:
        """nn.Linear's initialisation, group by group from learner k's generator; LayerNorms at
        gain 1, bias 0."""
        if len(generators) * members != self.groups:
            raise ValueError(f"{len(generators)} learners × {members} members ≠ {self.groups} groups")
        for w, b in zip(self.weights, self.biases, strict=True):
            bound = 1.0 / math.sqrt(w.shape[1])
            for k, gen in enumerate(generators):
                for g in range(k * members, (k + 1) * members):
                    w[g].uniform_(-bound, bound, generator=gen)
                    b[g].uniform_(-bound, bound, generator=gen)
        for gain, bias in zip(self.norm_gains, self.norm_biases, strict=True):
            gain.fill_(1.0)
            bias.zero_()

    def params(self, detach: bool = False) -> list[Tensor]:
        """[W₀, b₀, …, W_last, b_last, then each LayerNorm's gain and bias], built once (see
        ``BatchedMLP.params``: the Parameter objects never change)."""
        return cached_params(self, detach)

    def forward(
        self,
        x: Tensor,
        detach_params: bool = False,
        params: list[Tensor] | None = None,
        stats: list[tuple[Tensor, Tensor]] | None = None,
    ) -> Tensor:
        """As ``BatchedMLP.forward``: ``detach_params`` passes gradients to the input only,
        ``params`` evaluates the network at other tensors (a functional loss). ``stats`` is accepted
        for the interface and unused: LayerNorm keeps no running state."""
        if params is None:
            params = self.params(detach_params)
        elif detach_params:
            params = [p.detach() for p in params]
        n_linear = 2 * len(self.weights)
        norms = params[n_linear:]

        def linear(h: Tensor, i: int) -> Tensor:
            return torch.baddbmm(params[2 * i + 1], h, params[2 * i])

        def norm(h: Tensor, j: int) -> Tensor:
            return F.layer_norm(h, h.shape[-1:]) * norms[2 * j] + norms[2 * j + 1]

        h = linear(x, 0)
        for j in range(self.blocks):
            h = h + linear(torch.relu(linear(norm(h, j), 1 + 2 * j)), 2 + 2 * j)
        return linear(norm(h, self.blocks), 1 + 2 * self.blocks)
