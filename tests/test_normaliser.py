"""The observation normaliser: Chan et al.'s merge against numpy, per-learner independence,
frozen mode, clipping, and a bit-identical state round trip through safetensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from softac.data.normaliser import ObservationNormaliser


def _batches(seed: int, sizes: list[int], dim: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(loc=[1.0, -5.0, 100.0][:dim], scale=[0.5, 3.0, 20.0][:dim], size=(n, dim)) for n in sizes]


def test_matches_numpy_moments_of_concatenated_batches() -> None:
    batches = _batches(0, [3, 7, 1, 20, 2])
    norm = ObservationNormaliser((), (3,))
    for b in batches:
        norm.update(torch.from_numpy(b))
    data = np.concatenate(batches)
    n, eps_count = len(data), 1e-4
    # exact: all data merged with the prior (mean 0, var 1, weight 1e-4)
    mean = data.sum(0) / (n + eps_count)
    var = eps_count * 1.0 + ((data - data.mean(0)) ** 2).sum(0) + data.mean(0) ** 2 * eps_count * n / (n + eps_count)
    np.testing.assert_allclose(norm.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(norm.var.numpy(), var / (n + eps_count), rtol=1e-12)
    assert float(norm.count) == pytest.approx(n + eps_count)
    # and, up to the tiny prior, numpy's mean and population variance
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-3)  # prior at 0, data at 100


def test_learners_are_independent() -> None:
    a, b = _batches(1, [5, 9]), _batches(2, [5, 9])
    stacked = ObservationNormaliser((2,), (3,))
    alone = ObservationNormaliser((), (3,))
    for xa, xb in zip(a, b, strict=True):
        stacked.update(torch.from_numpy(np.stack([xa, xb])))  # (L = 2, B, 3)
        alone.update(torch.from_numpy(xb))
    assert torch.equal(stacked.mean[1], alone.mean) and torch.equal(stacked.var[1], alone.var)
    assert not torch.allclose(stacked.mean[0], stacked.mean[1])


def test_several_batch_dims_equal_flattened() -> None:
    x = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (L, T, E, obs)
    a, b = ObservationNormaliser((2,), (5,)), ObservationNormaliser((2,), (5,))
    a.update(x)
    b.update(x.reshape(2, 12, 5))
    torch.testing.assert_close(a.mean, b.mean, rtol=0, atol=1e-15)
    torch.testing.assert_close(a.var, b.var, rtol=1e-14, atol=0)
    assert a.normalise(x).shape == x.shape


def test_normalise_on_numbers_and_clip() -> None:
    norm = ObservationNormaliser((), (1,), initial_count=1e-300)  # negligible prior: stats are the data's
    norm.update(torch.tensor([[0.0], [4.0]], dtype=torch.float64))  # mean 2, population var 4
    out = norm.normalise(torch.tensor([[2.0], [6.0], [1e6]], dtype=torch.float32))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([[0.0], [2.0], [10.0]]), rtol=1e-6, atol=0)  # 4 / √(4 + 1e-8); clipped


def test_frozen_does_not_update_and_normalise_never_does() -> None:
    norm = ObservationNormaliser((), (2,))
    norm.update(torch.randn(10, 2, generator=torch.Generator().manual_seed(0)))
    before = norm.state_tensors()
    norm.normalise(torch.randn(4, 2))
    norm.frozen = True
    norm.update(torch.randn(10, 2) + 100.0)
    after = norm.state_tensors()
    assert all(torch.equal(before[k], after[k]) for k in before)
    norm.frozen = False
    norm.update(torch.randn(10, 2) + 100.0)
    assert not torch.equal(before["mean"], norm.mean)


def test_state_round_trip_through_safetensors_is_bit_identical(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    data = [torch.randn(2, 8, 4, generator=g) * 7 + 3 for _ in range(6)]
    uninterrupted = ObservationNormaliser((2,), (4,))
    for x in data:
        uninterrupted.update(x)
    first = ObservationNormaliser((2,), (4,))
    for x in data[:3]:
        first.update(x)
    save_file(first.state_tensors(), str(tmp_path / "norm.safetensors"))
    resumed = ObservationNormaliser((2,), (4,))
    resumed.load_state(load_file(str(tmp_path / "norm.safetensors")))
    for k, v in first.state_tensors().items():
        assert torch.equal(getattr(resumed, k), v)
    for x in data[3:]:
        resumed.update(x)
    for k in ObservationNormaliser.STATE_KEYS:
        assert torch.equal(getattr(resumed, k), getattr(uninterrupted, k))
    probe = torch.randn(2, 5, 4, generator=g)
    assert torch.equal(resumed.normalise(probe), uninterrupted.normalise(probe))


def test_state_tensors_are_copies() -> None:
    norm = ObservationNormaliser((), (2,))
    state = norm.state_tensors()
    state["mean"].add_(5.0)
    assert torch.equal(norm.mean, torch.zeros(2, dtype=torch.float64))


def test_load_state_rejects_mismatches() -> None:
    norm = ObservationNormaliser((2,), (3,))
    good = norm.state_tensors()
    with pytest.raises(ValueError, match="missing keys"):
        norm.load_state({"mean": good["mean"], "var": good["var"]})
    with pytest.raises(ValueError, match="shape"):
        norm.load_state({**good, "mean": torch.zeros(3, 3, dtype=torch.float64)})
    with pytest.raises(ValueError, match="float64"):
        norm.load_state({**good, "var": good["var"].float()})


def test_shape_mismatch_is_an_error() -> None:
    norm = ObservationNormaliser((2,), (3,))
    with pytest.raises(ValueError, match="do not match"):
        norm.update(torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="batch dimension"):
        norm.update(torch.zeros(2, 3))
