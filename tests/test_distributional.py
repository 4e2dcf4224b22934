"""The distributional critic's targets on hand-computed numbers (losses/distributional.py)."""

from __future__ import annotations

import math

import pytest
import torch

from softac.losses import distributional as D


def test_support_and_expected_value() -> None:
    atoms = D.support(-1.0, 1.0, 5)
    torch.testing.assert_close(atoms, torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.2]]))
    # Σ p z = −0.1 − 0.1 + 0 + 0.1 + 0.2 = 0.1
    torch.testing.assert_close(D.expected_value(logits, atoms), torch.tensor([0.1]))


def test_categorical_projection_on_hand_computed_numbers() -> None:
    atoms = D.support(0.0, 4.0, 5)  # Δz = 1
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.3, 0.1]])
    # r = 0.5, γ = 0.5, d = 0: T z = 0.5 + 0.5 z = [0.5, 1.0, 1.5, 2.0, 2.5]
    # 0.1 at 0.5 → 0.05 to atom 0, 0.05 to atom 1; 0.2 at 1.0 → atom 1; 0.3 at 1.5 → 0.15/0.15 to 1/2;
    # 0.3 at 2.0 → atom 2; 0.1 at 2.5 → 0.05/0.05 to 2/3
    out = D.categorical_projection(torch.tensor([0.5]), torch.tensor([0.0]), 0.5, probs, atoms)
    torch.testing.assert_close(out, torch.tensor([[0.05, 0.40, 0.50, 0.05, 0.0]]))
    # terminal: all mass on r = 2.3 → 0.7 to atom 2, 0.3 to atom 3
    out = D.categorical_projection(torch.tensor([2.3]), torch.tensor([1.0]), 0.5, probs, atoms)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.7, 0.3, 0.0]]))
    # SAC's entropy term: shift s = 1 moves every atom by −γ s = −0.5 before clipping at v_min = 0
    out = D.categorical_projection(torch.tensor([0.5]), torch.tensor([0.0]), 0.5, probs, atoms, torch.tensor([1.0]))
    # T z = [0, 0.5, 1, 1.5, 2]: 0.1 → 0; 0.2 → 0.1/0.1; 0.3 → 1; 0.3 → 0.15/0.15; 0.1 → 2
    torch.testing.assert_close(out, torch.tensor([[0.2, 0.55, 0.25, 0.0, 0.0]]))
    # beyond the support: clipped to the end atoms
    out = D.categorical_projection(torch.tensor([9.0]), torch.tensor([1.0]), 0.5, probs, atoms)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))


def test_hl_gauss_histogram() -> None:
    atoms = D.support(-5.0, 5.0, 101)  # Δz = 0.1
    y = torch.tensor([0.0, 1.234, -2.05])
    p = D.hl_gauss_target(y, atoms, sigma=0.75 * 0.1)
    torch.testing.assert_close(p.sum(-1), torch.ones(3))
    torch.testing.assert_close((p * atoms).sum(-1), y, rtol=0, atol=1e-4)  # far from the edges: mean ≈ y
    # y = 0 at the centre of bin 50 [−0.05, 0.05]: mass Φ(0.05/σ) − Φ(−0.05/σ) there, by hand
    sigma = 0.075
    centre = math.erf(0.05 / (sigma * math.sqrt(2)))
    assert p[0, 50].item() == pytest.approx(centre, rel=1e-5)
    # y = −2.05 on the edge between bins 29 and 30: the mass splits exactly in half between them
    assert p[2, 29].item() == pytest.approx(p[2, 30].item(), rel=1e-5)
    assert p[2, 28].item() == pytest.approx(p[2, 31].item(), rel=1e-5)


def test_cross_entropy_gradient_reaches_the_logits_only() -> None:
    logits = torch.zeros(1, 3, requires_grad=True)
    target = torch.tensor([[0.2, 0.3, 0.5]], requires_grad=True)
    D.cross_entropy(logits, target).sum().backward()
    # ∂/∂ℓ of −Σ p log softmax(ℓ) = softmax(ℓ) − p
    assert logits.grad is not None
    torch.testing.assert_close(logits.grad, torch.tensor([[1 / 3 - 0.2, 1 / 3 - 0.3, 1 / 3 - 0.5]]))
    assert target.grad is None
