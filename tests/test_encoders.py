"""The image encoder on the learner axis (``softac.nn.encoders``) and DrQ's random shift
(``softac.nn.augment``): learner k of a stacked encoder equals a single encoder seeded k (weights,
features, gradients), the architecture equals DrQ-v2's convolutions with SAC-AE's head written
with plain modules, DrQ-v2's initialisation, and the shift's range, determinism, independence
across learners and agreement with DrQ-v2's ``grid_sample`` formulation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from softac.nn.augment import draw_shifts, random_shift, shift
from softac.nn.encoders import BatchedConvEncoder, conv_out

SHAPE = (6, 20, 20)  # two stacked RGB frames of 20×20: small, and past the four convolutions


def _encoders(seeds: list[int]) -> tuple[BatchedConvEncoder, list[BatchedConvEncoder]]:
    stacked = BatchedConvEncoder(len(seeds), SHAPE, feature_dim=7)
    stacked.reset_parameters([torch.Generator().manual_seed(s) for s in seeds])
    singles = []
    for s in seeds:
        single = BatchedConvEncoder(1, SHAPE, feature_dim=7)
        single.reset_parameters([torch.Generator().manual_seed(s)])
        singles.append(single)
    return stacked, singles


def test_learner_k_equals_the_single_encoder_seeded_k() -> None:
    """Same initial weights bit for bit; the same features and weight gradients (the grouped
    convolution sums in another order than a plain one: to float32 rounding)."""
    seeds = [3, 8, 5]
    stacked, singles = _encoders(seeds)
    for name, p in stacked.named_parameters():
        for k in range(3):
            assert torch.equal(p[k], dict(singles[k].named_parameters())[name][0]), name
    x = torch.randint(0, 256, (3, 5, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    feats = stacked(x)
    assert feats.shape == (3, 5, 7) and bool((feats.abs() < 1).all())
    (feats * torch.linspace(-1, 1, 7)).sum().backward()  # a loss that is not symmetric in the features
    for k, single in enumerate(singles):
        one = single(x[k : k + 1])
        torch.testing.assert_close(feats[k], one[0], rtol=0, atol=1e-5)
        (one * torch.linspace(-1, 1, 7)).sum().backward()
        for (name, p), q in zip(stacked.named_parameters(), single.parameters(), strict=True):
            assert p.grad is not None and q.grad is not None
            torch.testing.assert_close(p.grad[k], q.grad[0], rtol=1e-5, atol=1e-4, msg=name)  # |grad| ≈ 1–30


class PlainEncoder(nn.Module):
    """DrQ-v2's ``Encoder`` (x/255 − 0.5, four 3×3 convolutions of 32, stride 2 then 1, ReLU) and
    SAC-AE's head (Linear, LayerNorm, tanh), with torch's own modules."""

    def __init__(self, channels: int, flat: int, features: int) -> None:
        super().__init__()
        self.convnet = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Linear(flat, features), nn.LayerNorm(features), nn.Tanh())

    def forward(self, obs: Tensor) -> Tensor:
        return self.head(self.convnet(obs / 255.0 - 0.5).flatten(1))


def test_architecture_equals_plain_modules() -> None:
    enc, _ = _encoders([1, 2])
    with torch.no_grad():  # non-trivial biases and norm affine, so that every parameter matters
        for p in enc.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
    x = torch.randint(0, 256, (2, 4, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = enc(x)
    for k in range(2):
        plain = PlainEncoder(SHAPE[0], enc.flat_dim, 7)
        with torch.no_grad():
            for i, conv in enumerate(plain.convnet[::2]):
                conv.weight.copy_(enc.conv_weights[i][k])
                conv.bias.copy_(enc.conv_biases[i][k])
            plain.head[0].weight.copy_(enc.fc_weight[k].T)
            plain.head[0].bias.copy_(enc.fc_bias[k, 0])
            plain.head[1].weight.copy_(enc.ln_gain[k, 0])
            plain.head[1].bias.copy_(enc.ln_bias[k, 0])
        torch.testing.assert_close(out[k], plain(x[k].float()), rtol=0, atol=1e-5)
    assert enc.flat_dim == 32 * 3 * 3 and conv_out(84) == 35  # 20 → 9 → 3; DrQ-v2's repr_dim 32·35·35 at 84×84


def test_drqv2_initialisation() -> None:
    """Orthogonal weights (gain √2 for the convolutions, 1 for the linear layer), zero biases,
    LayerNorm 1/0; learners differ."""
    enc, _ = _encoders([0, 1])
    for w, b in zip(enc.conv_weights, enc.conv_biases, strict=True):
        m = w[0].reshape(32, -1)
        torch.testing.assert_close(m @ m.T, 2.0 * torch.eye(32), atol=1e-5, rtol=0)
        assert not torch.equal(w[0], w[1]) and not b.any()
    fc = enc.fc_weight[1].T  # (out, in) rows orthonormal
    torch.testing.assert_close(fc @ fc.T, torch.eye(7), atol=1e-5, rtol=0)
    assert not enc.fc_bias.any() and bool((enc.ln_gain == 1).all()) and not enc.ln_bias.any()


def test_encoder_refusals() -> None:
    with pytest.raises(ValueError, match="too small"):
        BatchedConvEncoder(1, (3, 14, 14))
    enc = BatchedConvEncoder(2, SHAPE)
    with pytest.raises(ValueError, match="generators for 2 learners"):
        enc.reset_parameters([torch.Generator()])
    with pytest.raises(ValueError, match="expected images"):
        enc(torch.zeros(1, 3, *SHAPE, dtype=torch.uint8))


# -- random shift -----------------------------------------------------------------------------
def _coded(learners: int, batch: int, h: int = 24, w: int = 24) -> Tensor:
    """Images whose pixel (i, j) holds i·w + j in every channel: a pixel says where it came from."""
    grid = torch.arange(h * w).view(h, w)
    return grid.expand(learners, batch, 2, h, w).contiguous()


def test_shift_moves_by_the_drawn_offsets_within_pad() -> None:
    x = _coded(2, 400)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    shifts = draw_shifts(2, 400, gens, pad=4)
    out = shift(x, shifts)
    centre = out[:, :, 0, 12, 12]  # far from the border: the source pixel (12 + dy, 12 + dx)
    assert torch.equal(centre // 24 - 12, shifts[..., 0]) and torch.equal(centre % 24 - 12, shifts[..., 1])
    assert int(shifts.min()) == -4 and int(shifts.max()) == 4  # 1,600 draws reach both ends
    corner = out[:, :, 0, 0, 0]  # clamped: the replicated border, never a zero
    assert torch.equal(corner, shifts[..., 0].clamp(min=0) * 24 + shifts[..., 1].clamp(min=0))


def test_random_shift_is_deterministic_and_per_learner() -> None:
    """Same generator states → same images (a resume restores the states); learner k of a stacked
    call equals a single call with learner k's generator; two learners' draws differ."""
    x = torch.randint(0, 256, (2, 16, 3, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    states = [g.get_state() for g in gens]
    first = random_shift(x, gens)
    for g, s in zip(gens, states, strict=True):
        g.set_state(s)
    assert first.dtype == torch.uint8 and torch.equal(first, random_shift(x, gens))
    for k, seed in enumerate((5, 6)):
        assert torch.equal(first[k], random_shift(x[k : k + 1], [torch.Generator().manual_seed(seed)])[0])
    a = draw_shifts(2, 64, [torch.Generator().manual_seed(5), torch.Generator().manual_seed(6)])
    assert not torch.equal(a[0], a[1])


def test_shift_equals_drqv2_grid_sample() -> None:
    """DrQ-v2's ``RandomShiftsAug`` (replicate pad, then ``grid_sample`` on a grid moved by whole
    pixels) with the same offsets gives the same images, to interpolation rounding."""
    pad, n, h = 4, 32, 16
    x = torch.rand((1, n, 3, h, h), generator=torch.Generator().manual_seed(7)) * 255
    shifts = draw_shifts(1, n, [torch.Generator().manual_seed(8)], pad)
    padded = F.pad(x[0], (pad,) * 4, mode="replicate")
    eps = 1.0 / (h + 2 * pad)
    arange = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad)[:h]
    arange = arange.unsqueeze(0).repeat(h, 1).unsqueeze(2)
    base = torch.cat([arange, arange.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    offset = (shifts[0].flip(1) + pad).view(n, 1, 1, 2).float() * (2.0 / (h + 2 * pad))  # grid is (x, y)
    ref = F.grid_sample(padded, base + offset, padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(shift(x, shifts)[0], ref, rtol=0, atol=1e-3)
    assert math.isclose(float((shift(x, shifts)[0] - ref).abs().max()), 0.0, abs_tol=1e-3)


@pytest.mark.parametrize(("learners", "channels"), [(1, 1), (1, 2), (1, 3), (2, 2), (2, 9)])
def test_gradients_match_a_float64_reference(learners: int, channels: int) -> None:
    """The encoder's weight gradients against the same network written out in float64, for single
    and grouped (several learners) convolutions: a faster convolution path must not change them
    beyond float32 rounding."""
    enc = BatchedConvEncoder(learners, (channels, 20, 20), 8)
    enc.reset_parameters([torch.Generator().manual_seed(s) for s in range(learners)])
    x = torch.randint(0, 256, (learners, 6, channels, 20, 20), dtype=torch.uint8)
    params = [p.detach().clone().requires_grad_() for p in enc.params()]
    grads = torch.autograd.grad(enc(x, params).sum(), params)
    ref = [p.detach().double().requires_grad_() for p in enc.params()]
    convs, (fc_w, fc_b, gain, bias) = list(zip(ref[:4], ref[4:8], strict=True)), ref[8:]
    outs = []
    for k in range(learners):
        hid = x[k].double() / 255.0 - 0.5
        for i, (w, b) in enumerate(convs):
            hid = torch.relu(torch.nn.functional.conv2d(hid, w[k], b[k], stride=2 if i == 0 else 1))
        out = hid.reshape(6, -1) @ fc_w[k] + fc_b[k]
        outs.append(torch.tanh(torch.nn.functional.layer_norm(out, (8,)) * gain[k] + bias[k]))
    expected = torch.autograd.grad(torch.stack(outs).sum(), ref)
    for got, want in zip(grads, expected, strict=True):
        scale = float(want.abs().max()) or 1.0
        assert float((got.double() - want).abs().max()) / scale < 1e-4
