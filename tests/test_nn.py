"""Networks: Polyak averaging, the batched critic ensemble, actors."""

from __future__ import annotations

import pytest
import torch

from softac.nn import CriticEnsemble, DeterministicActor, GaussianActor, hard_update, mlp, polyak_update


def _tensors(seed: int, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=dtype) for shape in [(4, 5), (5,), (2, 3, 7)]]


@pytest.mark.parametrize("tau", [0.005, 0.1, 0.5, 0.9])
def test_polyak_update_matches_formula(tau: float) -> None:
    target, source = _tensors(0), _tensors(1)
    rho = 1.0 - tau
    expected = [rho * t + (1.0 - rho) * s for t, s in zip(target, source, strict=True)]
    source_before = [s.clone() for s in source]
    polyak_update(target, source, tau)
    for t, e in zip(target, expected, strict=True):
        torch.testing.assert_close(t, e, rtol=1e-14, atol=1e-14)
    for s, s0 in zip(source, source_before, strict=True):
        assert torch.equal(s, s0)  # the source is never written


def test_polyak_update_float32_and_tau_one_copies_exactly() -> None:
    target, source = _tensors(0, torch.float32), _tensors(1, torch.float32)
    polyak_update(target, source, 1.0)
    for t, s in zip(target, source, strict=True):
        assert torch.equal(t, s)


def test_polyak_update_on_modules_leaves_target_without_grad() -> None:
    torch.manual_seed(0)
    net, targ = mlp(3, [8], 2), mlp(3, [8], 2)
    hard_update(targ, net)
    assert all(torch.equal(a, b) for a, b in zip(targ.parameters(), net.parameters(), strict=True))
    assert not any(p.requires_grad for p in targ.parameters())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    before = [p.clone() for p in targ.parameters()]
    polyak_update(targ.parameters(), net.parameters(), 0.25)
    for p, b in zip(targ.parameters(), before, strict=True):
        torch.testing.assert_close(p, b + 0.25, rtol=1e-6, atol=1e-6)


def _member_forward(ens: CriticEnsemble, j: int, x: torch.Tensor) -> torch.Tensor:
    """Member j as an ordinary MLP built from its own weight slices."""
    n_layers = len(ens.weights)
    for i, (w, b) in enumerate(zip(ens.weights, ens.biases, strict=True)):
        x = x @ w[j] + b[j, 0]
        if i < n_layers - 1:
            x = torch.relu(x)
    return x.squeeze(-1)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_critic_ensemble_members_are_independent_mlps(n: int) -> None:
    torch.manual_seed(n)
    ens = CriticEnsemble(4, [16, 8], n)
    x = torch.randn(33, 4)
    q = ens(x)
    assert q.shape == (n, 33)
    for j in range(n):
        torch.testing.assert_close(q[j], _member_forward(ens, j, x), rtol=1e-5, atol=1e-5)
    if n > 1:
        # members are initialised independently
        assert not torch.equal(ens.weights[0][0], ens.weights[0][1])
        assert not torch.allclose(q[0], q[1])


def test_critic_ensemble_member_gradients_are_disjoint() -> None:
    torch.manual_seed(0)
    ens = CriticEnsemble(3, [8], 3)
    q = ens(torch.randn(10, 3))
    q[1].sum().backward()  # only member 1's output
    for w in [*ens.weights, *ens.biases]:
        assert w.grad is not None
        assert w.grad[1].abs().sum() > 0
        assert w.grad[0].abs().sum() == 0 and w.grad[2].abs().sum() == 0


def test_critic_ensemble_detach_params_grads_input_only() -> None:
    torch.manual_seed(0)
    ens = CriticEnsemble(3, [8, 8], 2)
    x = torch.randn(10, 3, requires_grad=True)
    q = ens(x, detach_params=True)
    torch.testing.assert_close(q, ens(x))  # same values
    q.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ens.parameters())
    # control: without detaching, the same backward does reach the parameters
    ens(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ens.parameters())


def test_gaussian_actor_clamps_log_std_and_shapes() -> None:
    torch.manual_seed(0)
    actor = GaussianActor(3, 2, [16], log_std_min=-1.0, log_std_max=0.5)
    with torch.no_grad():
        actor.trunk[-1].bias[2:] = 100.0  # the log-std half of the output
    mean, log_std = actor(torch.randn(7, 3))
    assert mean.shape == (7, 2) and log_std.shape == (7, 2)
    assert torch.all(log_std == 0.5)
    with torch.no_grad():
        actor.trunk[-1].bias[2:] = -100.0
    _, log_std = actor(torch.randn(7, 3))
    assert torch.all(log_std == -1.0)


def test_deterministic_actor_is_bounded() -> None:
    torch.manual_seed(0)
    actor = DeterministicActor(3, 2, [16])
    a = actor(torch.randn(100, 3) * 1000)
    assert a.shape == (100, 2)
    assert a.abs().max() <= 1.0
