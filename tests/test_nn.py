"""Networks: Polyak averaging, batched MLPs with a group (member × learner) axis, the critic
ensemble, actors."""

from __future__ import annotations

import itertools

import pytest
import torch

from softac.nn import BatchedMLP, CriticEnsemble, DeterministicActor, GaussianActor
from softac.optim import frozen_copy, polyak_update


def _tensors(seed: int, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=dtype) for shape in [(4, 5), (5,), (2, 3, 7)]]


def _gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


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
    net = BatchedMLP(1, 3, [8], 2)
    net.reset_parameters(_gens(0))
    targ = frozen_copy(net)
    assert all(torch.equal(a, b) for a, b in zip(targ.parameters(), net.parameters(), strict=True))
    assert not any(p.requires_grad for p in targ.parameters())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    before = [p.clone() for p in targ.parameters()]
    polyak_update(targ.parameters(), net.parameters(), 0.25)
    for p, b in zip(targ.parameters(), before, strict=True):
        torch.testing.assert_close(p, b + 0.25, rtol=1e-6, atol=1e-6)


def test_initialisation_is_per_learner_and_independent_of_the_number_of_learners() -> None:
    """Learner k of a batched network starts exactly where a single network with learner k's seed
    starts, members included: the draws come from the learner's own stream, in the same order."""
    batched = BatchedMLP(3 * 2, 5, [16, 8], 1)
    batched.reset_parameters(_gens(10, 11, 12), members=2)
    for k, seed in enumerate((10, 11, 12)):
        single = BatchedMLP(2, 5, [16, 8], 1)
        single.reset_parameters(_gens(seed), members=2)
        for big, small in zip(batched.params(), single.params(), strict=True):
            assert torch.equal(big[2 * k : 2 * k + 2], small)
    w = batched.weights[0]
    assert not torch.equal(w[0], w[1])  # members differ
    bound = 1 / 5**0.5  # nn.Linear's U(−1/√fan_in, 1/√fan_in)
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound


def _member_forward(ens: CriticEnsemble, g: int, x: torch.Tensor) -> torch.Tensor:
    """Group g as an ordinary MLP built from its own weight slices."""
    net = ens.net
    n_layers = len(net.weights)
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        x = x @ w[g] + b[g, 0]
        if i < n_layers - 1:
            x = torch.relu(x)
    return x.squeeze(-1)


@pytest.mark.parametrize(("learners", "n"), [(1, 1), (1, 2), (1, 5), (3, 2)])
@pytest.mark.parametrize("fused", [True, False])
def test_critic_ensemble_members_are_independent_mlps(learners: int, n: int, fused: bool) -> None:
    ens = CriticEnsemble(learners, n, 4, [16, 8])
    ens.net.reset_parameters(_gens(*range(learners)), members=n)
    ens.net.fused = fused
    x = torch.randn(learners, 33, 4)
    q = ens(x)
    assert q.shape == (learners, n, 33)
    for k in range(learners):
        for j in range(n):
            torch.testing.assert_close(q[k, j], _member_forward(ens, k * n + j, x[k]), rtol=1e-5, atol=1e-5)
    if n > 1:
        assert not torch.allclose(q[0, 0], q[0, 1])  # members are initialised independently


@pytest.mark.parametrize("fused", [True, False])
def test_critic_ensemble_member_gradients_are_disjoint(fused: bool) -> None:
    ens = CriticEnsemble(2, 3, 3, [8])
    ens.net.reset_parameters(_gens(0, 1), members=3)
    ens.net.fused = fused
    q = ens(torch.randn(2, 10, 3))
    q[1, 1].sum().backward()  # only learner 1's member 1 (group 4)
    for w in ens.net.params():
        assert w.grad is not None
        assert w.grad[4].abs().sum() > 0
        assert all(w.grad[g].abs().sum() == 0 for g in range(6) if g != 4)


@pytest.mark.parametrize("fused", [True, False])
def test_critic_ensemble_detach_params_grads_input_only(fused: bool) -> None:
    ens = CriticEnsemble(1, 2, 3, [8, 8])
    ens.net.reset_parameters(_gens(0), members=2)
    ens.net.fused = fused
    x = torch.randn(1, 10, 3, requires_grad=True)
    q = ens(x, detach_params=True)
    torch.testing.assert_close(q, ens(x))  # same values
    q.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ens.parameters())
    # control: without detaching, the same backward does reach the parameters
    ens(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ens.parameters())


def test_gaussian_actor_clamps_log_std_and_shapes() -> None:
    actor = GaussianActor(1, 3, 2, [16], log_std_min=-1.0, log_std_max=0.5)
    actor.trunk.reset_parameters(_gens(0))
    with torch.no_grad():
        actor.trunk.biases[-1][..., 2:] = 100.0  # the log-std half of the output
    mean, log_std = actor(torch.randn(1, 7, 3))
    assert mean.shape == (1, 7, 2) and log_std.shape == (1, 7, 2)
    assert torch.all(log_std == 0.5)
    with torch.no_grad():
        actor.trunk.biases[-1][..., 2:] = -100.0
    _, log_std = actor(torch.randn(1, 7, 3))
    assert torch.all(log_std == -1.0)


def test_deterministic_actor_is_bounded() -> None:
    actor = DeterministicActor(2, 3, 2, [16])
    actor.trunk.reset_parameters(_gens(0, 1))
    a = actor(torch.randn(2, 100, 3) * 1000)
    assert a.shape == (2, 100, 2)
    assert a.abs().max() <= 1.0


def test_layer_norm_critic_normalises_hidden_features() -> None:
    ens = CriticEnsemble(1, 2, 3, [16, 16], layer_norm=True)
    ens.net.reset_parameters(_gens(0), members=2)
    x = torch.randn(1, 50, 3) * 100  # inputs far from unit scale
    q = ens(x)
    assert q.shape == (1, 2, 50) and torch.isfinite(q).all()
    # with unit gains and zero biases the pre-ReLU features have zero mean and unit variance per row
    z = torch.nn.functional.layer_norm(x.expand(2, 50, 3) @ ens.net.weights[0] + ens.net.biases[0], (16,))
    torch.testing.assert_close(z.mean(-1), torch.zeros(2, 50), atol=1e-5, rtol=0)
    q.sum().backward()
    assert all(p.grad is not None for p in ens.parameters())


def test_tanh_stack_and_orthogonal_initialisation_per_learner() -> None:
    """PPO's networks: tanh between layers (never the fused ReLU node), orthogonal weights scaled
    by each layer's gain, zero biases; learner k's from learner k's stream alone."""
    net = BatchedMLP(2, 6, [16], 4, activation="tanh")
    net.reset_parameters(_gens(3, 4), gains=[2**0.5, 0.01])
    w0, w1 = net.weights[0], net.weights[1]
    for g in range(2):  # (in, out) with orthonormal columns or rows, times the gain
        torch.testing.assert_close(w0[g] @ w0[g].T, 2.0 * torch.eye(6), atol=1e-5, rtol=0)
        torch.testing.assert_close(w1[g].T @ w1[g], 1e-4 * torch.eye(4), atol=1e-8, rtol=0)
    assert all(torch.equal(b, torch.zeros_like(b)) for b in net.biases)
    single = BatchedMLP(1, 6, [16], 4, activation="tanh")
    single.reset_parameters(_gens(4), gains=[2**0.5, 0.01])
    assert torch.equal(single.weights[0][0], w0[1])
    x = torch.randn(2, 5, 6)
    expected = torch.tanh(x @ w0 + net.biases[0]) @ w1 + net.biases[1]
    torch.testing.assert_close(net(x), expected)
    assert net(x.requires_grad_()).grad_fn.name() != "_LinearReLUStackBackward"  # the plain ops


def test_batchnorm_equals_torch_batchnorm1d_per_group_in_training_and_evaluation() -> None:
    """``norm="batchnorm"`` is torch's BatchNorm1d(affine=False) before each affine layer, group by
    group: training-mode outputs (biased batch variance), gradients, the running-statistics update
    (unbiased variance, momentum m) and evaluation with the running statistics. ``renorm_warmup=0``
    would make batch *re*normalisation correct the second update: batchnorm never does."""
    groups, sizes, m, eps = 3, [5, 16, 4], 0.1, 1e-3
    net = BatchedMLP(groups, sizes[0], sizes[1:-1], sizes[-1], norm="batchnorm", renorm_momentum=m, renorm_eps=eps,
                     renorm_warmup=0)  # fmt: skip
    net.reset_parameters(_gens(0, 1, 2))
    with torch.no_grad():  # gains and shifts away from 1 and 0, so that their use is checked
        for p in [*net.norm_gains, *net.norm_biases]:
            p.add_(0.3 * torch.randn(p.shape))
    refs = [[torch.nn.BatchNorm1d(w, eps=eps, momentum=m, affine=False, dtype=torch.float64) for w in sizes[:-1]]
            for _ in range(groups)]  # fmt: skip

    def reference(g: int, x: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        for i, bn in enumerate(refs[g]):
            gain, shift = params[4 + 2 * i][g], params[5 + 2 * i][g]
            x = bn(x) * gain + shift
            x = x @ params[2 * i][g] + params[2 * i + 1][g]
            x = torch.relu(x) if i == 0 else x
        return x

    for step in range(3):
        x = torch.randn(groups, 32, sizes[0]) * 3 + step
        stats: list[tuple[torch.Tensor, torch.Tensor]] = []
        y = net(x, stats=stats)
        grads = torch.autograd.grad(y.square().sum(), net.params())
        ref_params = [p.detach().double().requires_grad_() for p in net.params()]
        y_ref = torch.stack([reference(g, x[g].double(), ref_params) for g in range(groups)])
        ref_grads = torch.autograd.grad(y_ref.square().sum(), ref_params)
        torch.testing.assert_close(y, y_ref.float(), rtol=1e-4, atol=1e-5)
        for got, want in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(got, want.float(), rtol=1e-4, atol=1e-4)
        with torch.no_grad():  # the new state is returned, not written: write it as gradient_step does
            assert not torch.equal(stats[0][0], stats[0][1])
            for live, new in stats:
                live.copy_(new)
        for i in range(len(sizes) - 1):
            ra_mean = torch.stack([refs[g][i].running_mean for g in range(groups)]).unsqueeze(1).float()
            ra_var = torch.stack([refs[g][i].running_var for g in range(groups)]).unsqueeze(1).float()
            torch.testing.assert_close(getattr(net, f"ra_mean_{i}"), ra_mean, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(getattr(net, f"ra_var_{i}"), ra_var, rtol=1e-5, atol=1e-6)
    for bn in itertools.chain(*refs):
        bn.eval()
    x = torch.randn(groups, 7, sizes[0])
    with torch.no_grad():
        y_ref = torch.stack([reference(g, x[g].double(), [p.double() for p in net.params()]) for g in range(groups)])
        torch.testing.assert_close(net(x), y_ref.float(), rtol=1e-4, atol=1e-5)
