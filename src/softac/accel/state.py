"""Snapshots of an agent's mutable tensors and random streams: wrappers that must run the update
before it counts (a CUDA graph's warm-up) or that may fail half-way through (a compilation with
graph breaks) put everything back, so the wrapped update starts from exactly the agent's state."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class Snapshot:
    def __init__(self, tensors: Sequence[Tensor], generators: Sequence[torch.Generator]) -> None:
        self.tensors = list(tensors)
        self.values = [t.detach().clone() for t in self.tensors]
        self.generators = list(generators)
        self.gen_states = [g.get_state() for g in self.generators]

    @torch.no_grad()
    def restore(self) -> None:
        for t, v in zip(self.tensors, self.values, strict=True):
            t.copy_(v)
        for g, s in zip(self.generators, self.gen_states, strict=True):
            g.set_state(s)
