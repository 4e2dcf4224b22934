"""Adam's options (β, decoupled weight decay = AdamW): softac's direct fused step and its traceable
form (the one ``torch.compile`` runs) both equal ``torch.optim``'s own ``step()``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from softac.optim import adam, adam_step, adam_step_traceable


@pytest.mark.parametrize(
    "options",
    [{}, {"betas": (0.5, 0.999)}, {"weight_decay": 0.1}, {"betas": (0.5, 0.99), "weight_decay": 0.01}],
)
def test_adam_options_equal_torch_optim(options: dict[str, Any]) -> None:
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=gen), torch.randn(5, generator=gen)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(4)]
    results = []
    for how in ("torch", "fused", "traceable"):
        params = [p.clone().requires_grad_(True) for p in start]
        opt = adam(params, 1e-2, torch.device("cpu"), **options)
        for gs in grads:
            if how == "torch":
                for p, g in zip(params, gs, strict=True):
                    p.grad = g.clone()
                opt.step()
            else:
                (adam_step if how == "fused" else adam_step_traceable)(opt, gs)
        results.append([p.detach() for p in params])
    moved = any(not torch.equal(a, b) for a, b in zip(results[0], start, strict=True))
    assert moved
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    if options.get("weight_decay"):
        assert isinstance(adam([torch.zeros(1)], 1e-3, torch.device("cpu"), **options), torch.optim.AdamW)
