"""Two ways to run L learners' image encoders at once, side by side: grouped convolutions (the
implementation, ``softac.nn.encoders.BatchedConvEncoder``) against ``torch.func.stack_module_state``
+ ``vmap`` over L single encoders (kept only here), and L single encoders called one after the other.

    PYTHONPATH=src .venv/bin/python benchmarks/pixel_encoder.py --size 64 --batch 64 --learners 1 4

One forward + backward (the gradient of the features' sum, through every weight) per call, on the
same uint8 batch; the forms take turns within each round, in an order rotated every round, and the
median over rounds is printed with the ratio to the grouped form. One thread by default (the test
machine's share of its cores). Before timing, the vmap form's output and gradients are checked
against the grouped form's on the same weights.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from softac.nn.encoders import BatchedConvEncoder


class SingleEncoder(nn.Module):
    """One learner's encoder as plain modules (DrQ-v2's convolutions, SAC-AE's head)."""

    def __init__(self, channels: int, flat_dim: int, feature_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.convs = nn.ModuleList(nn.Conv2d(channels if i == 0 else 32, 32, 3, stride=2 if i == 0 else 1)
                                   for i in range(4))  # fmt: skip
        self.fc = nn.Linear(flat_dim, feature_dim)
        self.ln = nn.LayerNorm(feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = x.float() / 255.0 - 0.5
        for conv in self.convs:
            h = F.relu(conv(h))
        return torch.tanh(self.ln(self.fc(h.flatten(1))))


def singles_from(enc: BatchedConvEncoder) -> list[SingleEncoder]:
    """L single encoders holding the batched encoder's learner-k weights."""
    out = []
    for k in range(enc.learners):
        single = SingleEncoder(enc.in_shape[0], enc.flat_dim, enc.feature_dim)
        with torch.no_grad():
            convs: list[nn.Conv2d] = list(single.convs)  # type: ignore[arg-type]
            for conv, w, b in zip(convs, enc.conv_weights, enc.conv_biases, strict=True):
                conv.weight.copy_(w[k])
                conv.bias.copy_(b[k])  # type: ignore[union-attr]
            single.fc.weight.copy_(enc.fc_weight[k].T)
            single.fc.bias.copy_(enc.fc_bias[k, 0])
            single.ln.weight.copy_(enc.ln_gain[k, 0])
            single.ln.bias.copy_(enc.ln_bias[k, 0])
        out.append(single)
    return out


def vmap_form(singles: list[SingleEncoder]) -> tuple[Callable[[Tensor], Tensor], dict[str, Tensor]]:
    params, buffers = stack_module_state(singles)
    first = singles[0]
    base = SingleEncoder(first.channels, first.fc.in_features, first.fc.out_features).to("meta")

    def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    run = torch.vmap(one)
    return (lambda x: run(params, buffers, x)), params


def timed(fn: Callable[[], None], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def measure(learners: int, shape: tuple[int, int, int], args: argparse.Namespace) -> dict[str, float]:
    """Median ms of one fwd+bwd per form for ``learners`` learners."""
    enc = BatchedConvEncoder(learners, shape)
    enc.reset_parameters([torch.Generator().manual_seed(k) for k in range(learners)])
    singles = singles_from(enc)
    vmapped, vparams = vmap_form(singles)
    x = torch.randint(0, 256, (learners, args.batch, *shape), dtype=torch.uint8)
    feats = enc(x)
    feats.sum().backward()
    ref = vmapped(x)
    ref.sum().backward()
    assert torch.allclose(feats, ref, atol=1e-5), "the vmap form disagrees with the grouped form"
    grad = vparams["fc.weight"].grad
    assert grad is not None and enc.fc_weight.grad is not None
    assert torch.allclose(enc.fc_weight.grad, grad.transpose(1, 2), rtol=1e-4, atol=1e-4)

    def singles_step() -> None:
        total = sum((s(x[k]).sum() for k, s in enumerate(singles)), torch.zeros(()))
        total.backward()

    forms: dict[str, Callable[[], None]] = {
        "grouped": lambda: enc(x).sum().backward(),
        "vmap": lambda: vmapped(x).sum().backward(),
        "singles": singles_step,
    }
    times: dict[str, list[float]] = {name: [] for name in forms}
    names = list(forms)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(forms[name], args.repeats))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64, help="image side (square)")
    parser.add_argument("--stack", type=int, default=3, help="frames stacked: 3·K input channels")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="calls per form per round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = (3 * args.stack, args.size, args.size)
    print(f"fwd+bwd of {shape} uint8 images, batch {args.batch}, {args.threads} thread(s), "
          f"median of {args.rounds} rounds × {args.repeats} calls")  # fmt: skip
    head = ("L", "grouped ms", "vmap ms", "L singles ms", "vmap/grouped", "singles/grouped")
    print(f"{head[0]:>3} {head[1]:>11} {head[2]:>9} {head[3]:>13} {head[4]:>13} {head[5]:>16}")
    for learners in args.learners:
        med = measure(learners, shape, args)
        print(f"{learners:>3} {med['grouped']:>11.1f} {med['vmap']:>9.1f} {med['singles']:>13.1f} "
              f"{med['vmap'] / med['grouped']:>13.2f} {med['singles'] / med['grouped']:>16.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
