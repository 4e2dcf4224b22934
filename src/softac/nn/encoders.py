"""The image encoder of SAC-AE and DrQ-v2 on the learner axis.

    pixels/255 − 0.5 → 4 × [conv 3×3, 32 filters (stride 2, then 1), ReLU] → flatten
                     → linear to ``feature_dim`` → LayerNorm → tanh

The convolutions are DrQ-v2's encoder (Yarats et al. 2021, "Mastering Visual Continuous Control",
``Encoder``: pixels scaled to [−0.5, 0.5], 32·35·35 features for 84×84 input); the linear layer,
LayerNorm and tanh are SAC-AE's encoder head (Yarats et al. 2019, "Improving Sample Efficiency in
Model-free RL from Images", ``PixelEncoder``; DrQ-v2 puts the same trunk at the start of its actor
and critic). ``feature_dim`` defaults to 50 as in SAC-AE, DrQ and DrQ-v2. Initialisation is
DrQ-v2's ``weight_init``: orthogonal weights (gain √2 — ``calculate_gain("relu")`` — for the
convolutions, 1 for the linear layer) and zero biases.

L learners' encoders are one module: every parameter has a leading learner dimension, and the L
convolutions of a layer run as one grouped convolution (``groups=L``: learner k's input channels
meet only learner k's filters). Against ``torch.func.stack_module_state`` + ``vmap`` over L
single encoders, on the CPU side by side (``benchmarks/pixel_encoder.py``), the grouped form was
the faster one (docs/images.md has the figures), so it is the implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FILTERS, LAYERS = 32, 4


def conv_sides(size: int, layers: int = LAYERS) -> list[int]:
    """Side of each layer's feature map: 3×3 kernels, no padding, stride 2 then 1 (84 → 41, 39, 37, 35)."""
    sides = [(size - 3) // 2 + 1]
    for _ in range(layers - 1):
        sides.append(sides[-1] - 2)
    return sides


def conv_out(size: int, layers: int = LAYERS) -> int:
    """Side of the last feature map (84 → 35)."""
    return conv_sides(size, layers)[-1]


class BatchedConvEncoder(nn.Module):
    """x (L, B, C, H, W), pixels in [0, 255] (uint8 or float) → features (L, B, feature_dim)."""

    def __init__(self, learners: int, in_shape: Sequence[int], feature_dim: int = 50) -> None:
        super().__init__()
        c, h, w = (int(s) for s in in_shape)
        if conv_out(min(h, w)) < 1:
            raise ValueError(f"images of {h}×{w} are too small for {LAYERS} 3×3 convolutions (at least 15×15)")
        self.learners, self.in_shape, self.feature_dim = learners, (c, h, w), feature_dim
        self.flat_dim = FILTERS * conv_out(h) * conv_out(w)
        self.conv_weights = nn.ParameterList()
        self.conv_biases = nn.ParameterList()
        for i in range(LAYERS):
            fan_in = c if i == 0 else FILTERS
            self.conv_weights.append(nn.Parameter(torch.zeros(learners, FILTERS, fan_in, 3, 3)))
            self.conv_biases.append(nn.Parameter(torch.zeros(learners, FILTERS)))
        self.fc_weight = nn.Parameter(torch.zeros(learners, self.flat_dim, feature_dim))
        self.fc_bias = nn.Parameter(torch.zeros(learners, 1, feature_dim))
        self.ln_gain = nn.Parameter(torch.ones(learners, 1, feature_dim))
        self.ln_bias = nn.Parameter(torch.zeros(learners, 1, feature_dim))

    @torch.no_grad()
    def reset_parameters(self, generators: Sequence[torch.Generator]) -> None:
        """DrQ-v2's initialisation, learner k's tensors from learner k's generator, layer by layer:
        learner k starts from the weights a single encoder seeded alike starts from."""
        if len(generators) != self.learners:
            raise ValueError(f"{len(generators)} generators for {self.learners} learners")
        relu_gain = math.sqrt(2.0)
        for w, b in zip(self.conv_weights, self.conv_biases, strict=True):
            for k, gen in enumerate(generators):
                nn.init.orthogonal_(w[k], gain=relu_gain, generator=gen)
            b.zero_()
        for k, gen in enumerate(generators):
            nn.init.orthogonal_(self.fc_weight[k].T, gain=1.0, generator=gen)  # nn.Linear's (out, in)
        self.fc_bias.zero_()
        self.ln_gain.fill_(1.0)
        self.ln_bias.zero_()

    def params(self) -> list[Tensor]:
        """The parameters in the order ``forward``'s ``params`` takes them: the convolutions'
        weights, their biases, then the head's."""
        return [*self.conv_weights, *self.conv_biases, self.fc_weight, self.fc_bias, self.ln_gain, self.ln_bias]

    def forward(self, x: Tensor, params: list[Tensor] | None = None) -> Tensor:
        """``params``: other tensors in ``params()``'s order (a loss as a function of them)."""
        learners, batch = x.shape[:2]
        if learners != self.learners or tuple(x.shape[2:]) != self.in_shape:
            raise ValueError(f"expected images (L={self.learners}, B, {self.in_shape}), got {tuple(x.shape)}")
        ps = self.params() if params is None else params
        convs = list(zip(ps[:LAYERS], ps[LAYERS : 2 * LAYERS], strict=True))
        fc_weight, fc_bias, ln_gain, ln_bias = ps[2 * LAYERS :]
        c, h, w = self.in_shape
        # (L, B, C, H, W) → (B, L·C, H, W): one grouped convolution per layer for all learners.
        # The shift by −0.5 and the ReLUs work in place on tensors just made here (same values, and
        # neither div's nor conv2d's backward reads its output): at 84×84, batch 256 each map is
        # 50-65 MB, and a fresh one per op cost more in page faults than the op itself (the
        # out-of-place ReLUs were 8 % of an update in ``benchmarks/pixel_update.py --profile``).
        hid = x.transpose(0, 1).reshape(batch, learners * c, h, w).float().div(255.0).sub_(0.5)
        # Not channels-last (NHWC), though its four layers ran 1.4× faster forward and backward on
        # the project's CPU (84×84, 9 channels, batch 128): with it, the eager and the compiled
        # update of a 2-frame stack disagreed after one update (Adam moments 3e-3 apart, where these
        # contiguous maps agree to 2e-7; 2026-12-06), and the cause is not found yet.
        for i, (wt, bias) in enumerate(convs):
            kernel = wt.reshape(learners * FILTERS, *wt.shape[2:])
            hid = F.conv2d(hid, kernel, bias.reshape(-1), stride=2 if i == 0 else 1, groups=learners).relu_()
        flat = hid.reshape(batch, learners, self.flat_dim).transpose(0, 1)  # (L, B, 32·h'·w')
        out = torch.baddbmm(fc_bias, flat, fc_weight)
        out = F.layer_norm(out, (self.feature_dim,)) * ln_gain + ln_bias
        return torch.tanh(out)
