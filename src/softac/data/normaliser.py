"""Running observation normalisation with one set of statistics per learner.

The statistics follow SB3's ``RunningMeanStd`` and ``VecNormalize`` defaults: mean 0, variance 1
and a pseudo-count ε = 1e-4 at the start; batches merged with the parallel formula of Chan,
Golub and LeVeque (1979); observations normalised as clip((o − μ) / √(σ² + 1e-8), −10, 10).

Shapes: the statistics have shape (*lead, *obs_shape) with ``lead`` the learner dims, and a
count of shape ``lead``: learners never share statistics, so stacking N learners is the same as
running them apart. Observations given to ``update`` and ``normalise`` have shape
(*lead, *batch, *obs_shape) with any number of batch dims (e.g. (L, n_envs, obs_dim)).
Statistics are kept in float64 (as SB3's numpy arrays are): a float32 running mean drifts once the
count is large, and the normalised output is cast back to the observations' dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ObservationNormaliser"]


class ObservationNormaliser:
    """Running mean/variance of observations per learner; ``frozen`` stops ``update`` (evaluation)."""

    STATE_KEYS = ("mean", "var", "count")

    def __init__(
        self,
        lead_shape: tuple[int, ...],
        obs_shape: tuple[int, ...],
        clip: float = 10.0,
        epsilon: float = 1e-8,
        initial_count: float = 1e-4,
        device: torch.device | str | None = None,
    ) -> None:
        self.lead_shape = tuple(lead_shape)
        self.obs_shape = tuple(obs_shape)
        self.clip = clip
        self.epsilon = epsilon
        self.frozen = False
        shape = (*self.lead_shape, *self.obs_shape)
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        # SB3's epsilon count: the prior (0, 1) weighs as 1e-4 of an observation, so the first
        # batch sets the statistics almost exactly, without a division by zero.
        self.count = torch.full(self.lead_shape, initial_count, dtype=torch.float64, device=device)

    def _batch_dims(self, obs: Tensor) -> int:
        n = obs.ndim - len(self.lead_shape) - len(self.obs_shape)
        if (
            n < 0
            or tuple(obs.shape[: len(self.lead_shape)]) != self.lead_shape
            or (self.obs_shape and tuple(obs.shape[obs.ndim - len(self.obs_shape) :]) != self.obs_shape)
        ):
            raise ValueError(
                f"observations of shape {tuple(obs.shape)} do not match (*{self.lead_shape}, *batch, *{self.obs_shape})"
            )
        return n

    def update(self, obs: Tensor) -> None:
        """Merge a batch into the statistics (nothing happens while ``frozen``).

        Chan et al. (1979): with δ = μ_B − μ, n' = n + n_B,
        μ' = μ + δ n_B / n',  σ²' = (σ² n + σ²_B n_B + δ² n n_B / n') / n',
        where μ_B and σ²_B are the batch's mean and population variance (SB3's ``np.var``).
        The result equals the moments of all observations seen, whatever the batch sizes.
        """
        if self.frozen:
            return
        n_batch_dims = self._batch_dims(obs)
        if n_batch_dims == 0:
            raise ValueError("update needs at least one batch dimension between the learner and observation dims")
        lead = len(self.lead_shape)
        x = obs.detach().to(torch.float64).flatten(lead, lead + n_batch_dims - 1)
        batch_count = x.shape[lead]
        batch_mean = x.mean(dim=lead)
        batch_var = x.var(dim=lead, correction=0)
        count = self.count.reshape(*self.lead_shape, *([1] * len(self.obs_shape)))
        total = count + batch_count
        delta = batch_mean - self.mean
        m2 = self.var * count + batch_var * batch_count + delta.square() * count * batch_count / total
        # In place: the tensors keep their addresses, so a CUDA graph that normalises (an
        # off-policy update that samples the buffer) reads the current statistics, and a
        # checkpoint loader's copy into them is seen by the normaliser.
        self.mean.add_(delta * batch_count / total)
        self.var.copy_(m2 / total)
        self.count.add_(batch_count)

    def normalise(self, obs: Tensor) -> Tensor:
        """clip((o − μ) / √(σ² + ε), −c, c), in the observations' dtype. Never updates the statistics."""
        n_batch_dims = self._batch_dims(obs)
        view = (*self.lead_shape, *([1] * n_batch_dims), *self.obs_shape)
        mean = self.mean.reshape(view)
        std = torch.sqrt(self.var.reshape(view) + self.epsilon)
        return ((obs.to(torch.float64) - mean) / std).clamp(-self.clip, self.clip).to(obs.dtype)

    def state_tensors(self) -> dict[str, Tensor]:
        """The statistics as plain tensors (copies), for a safetensors checkpoint: no pickle."""
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count.clone()}

    def load_state(self, state: dict[str, Tensor]) -> None:
        """Restore ``state_tensors()`` bit for bit, after checking keys, shapes and dtype (float64)."""
        missing = sorted(set(self.STATE_KEYS) - set(state))
        unknown = sorted(set(state) - set(self.STATE_KEYS))
        if missing or unknown:
            raise ValueError(f"normaliser state: missing keys {missing}, unknown keys {unknown}")
        expected = {"mean": self.mean.shape, "var": self.var.shape, "count": self.count.shape}
        for key, shape in expected.items():
            got = state[key]
            if tuple(got.shape) != tuple(shape) or got.dtype != torch.float64:
                raise ValueError(
                    f"normaliser state {key!r} is {got.dtype} of shape {tuple(got.shape)}, "
                    f"expected torch.float64 of shape {tuple(shape)}"
                )
        # The statistics' natural ranges: a negative variance made √(σ² + ε) NaN, a negative count a
        # division by a non-positive total in ``update``; both surfaced as NaN actions much later.
        for key in ("var", "count"):
            values = state[key]
            if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
                raise ValueError(f"normaliser state {key!r} must be finite and >= 0, got {values.min().item():g}")
        for key in self.STATE_KEYS:
            getattr(self, key).copy_(state[key])

    def live_tensors(self) -> dict[str, Tensor]:
        """The statistics themselves (not copies): an agent's checkpoint reads and restores them in
        place, learner-major (mean and var (L, *obs_shape), count (L,))."""
        return {"mean": self.mean, "var": self.var, "count": self.count}
