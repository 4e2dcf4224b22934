"""One random stream per learner.

Every random draw of learner k — network initialisation, warm-up actions, replay sampling, the
update's noise, exploration — comes from learner k's own generators seeded with its seed, in the
same order whatever else runs in the process. So learner k of a batched run draws exactly the
numbers a single run with seed k draws, and the global torch generator is never touched (a
library must not reseed its user's program).

On the CPU one generator serves everything. On CUDA the device draws (sampling, noise, acting)
use a CUDA generator and the host draws (initialisation, warm-up actions) a CPU generator, both
seeded with the learner's seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class LearnerRNG:
    def __init__(self, seeds: Sequence[int], device: torch.device) -> None:
        self.seeds = tuple(int(s) for s in seeds)
        self.device = device
        self.host = [torch.Generator().manual_seed(s) for s in self.seeds]
        if device.type == "cpu":
            self.dev = self.host
        else:
            self.dev = [torch.Generator(device=device).manual_seed(s) for s in self.seeds]

    def __len__(self) -> int:
        return len(self.seeds)

    def normal_(self, out: Tensor) -> Tensor:
        """Fill ``out`` (leading dim = learners) with N(0, 1), slice k from learner k's stream. A
        contiguous slice draws the same numbers as ``torch.randn`` of its shape would."""
        for k, gen in enumerate(self.dev):
            out[k].normal_(generator=gen)
        return out

    def uniform_(self, out: Tensor, host: bool = False) -> Tensor:
        """Fill ``out`` (leading dim = learners) with U[0, 1) from each learner's stream."""
        gens = self.host if host else self.dev
        for k, gen in enumerate(gens):
            out[k].uniform_(generator=gen)
        return out

    # -- checkpoints ------------------------------------------------------------------------
    def state(self, k: int) -> dict[str, Tensor]:
        out = {"host": self.host[k].get_state()}
        if self.dev is not self.host:
            out["device"] = self.dev[k].get_state()
        return out

    def set_state(self, k: int, state: dict[str, Tensor]) -> None:
        self.host[k].set_state(state["host"])
        # A checkpoint written on the CPU has no device stream: the CUDA one keeps its seeding.
        if self.dev is not self.host and "device" in state:
            self.dev[k].set_state(state["device"])
