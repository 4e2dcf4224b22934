"""The natural range of each loaded state tensor, checked before a checkpoint's values reach an agent.

Why: a checkpoint's SHA-256 proves the file is the one ``state.json`` lists, not that its values can
occur. An edited (and re-hashed) or badly converted file with a negative observation variance, a
negative Adam step counter or a second moment below zero was accepted; the run then failed later
with NaN actions, reported as a divergence ("try a lower learning rate") or a bad environment.
Every tensor whose values have a domain is checked here, by its name in the one listing of an
agent's state (``softac.protocols.state_tensors``: ``net/``, ``extra/``, ``optim/``), and a value
outside it is one line naming the file, the tensor and the domain.

Finiteness is checked for every floating tensor by ``softac.io.state.check_finite``; these are the
ranges on top of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from softac.errors import SoftacError

# exp(x) of a float32 is finite only for x < 88.72 and non-zero only for x > −103.3 (denormals
# included): a log-scale value outside these makes α = exp(log α) or σ = exp(log σ) inf or 0.
_EXP_MAX = 88.0
_EXP_MIN = -103.0


@dataclass(frozen=True)
class Domain:
    pattern: re.Pattern[str]
    what: str  # what the tensor is and its range, as the error line says it
    bad: Callable[[Tensor], Tensor]  # elementwise: True where a (finite) value is outside the domain


def _negative(t: Tensor) -> Tensor:
    return t < 0


def _not_count(t: Tensor) -> Tensor:
    return (t < 0) | (t != torch.round(t)) if t.is_floating_point() else t < 0


DOMAINS: tuple[Domain, ...] = (
    # Running statistics (``softac.data.normaliser``): observations, PPO's returns.
    Domain(re.compile(r"^extra/\w+_norm/var$"), "a running variance, which is ≥ 0", _negative),
    Domain(re.compile(r"^extra/\w+_norm/count$"), "a running count, which is ≥ 0", _negative),
    # Batch renormalisation (CrossQ; ``softac.nn.batched``): running variances and its step clock.
    Domain(re.compile(r"^net/.*\.ra_var_\d+$"), "a running variance, which is ≥ 0", _negative),
    Domain(re.compile(r"^net/.*\.renorm_steps$"), "a step count, which is a whole number ≥ 0", _not_count),
    # Adam (``softac.optim``): the step counter t of the bias corrections 1 − β^t, and v = E[g²].
    Domain(re.compile(r"^optim/.*/step$"), "an optimizer step counter, which is a whole number ≥ 0", _not_count),
    Domain(re.compile(r"^optim/.*/(max_)?exp_avg_sq$"), "Adam's second moment (a mean of squares), which is ≥ 0",
           _negative),
    # Log-scale parameters: their exponential (α, the policy's σ) must be a finite float32.
    Domain(re.compile(r"(^|/)log_alpha$"), f"log α, which is at most {_EXP_MAX:g} (α = exp(log α) must be finite)",
           lambda t: t > _EXP_MAX),
    Domain(re.compile(r"(^|[/.])log_std$"),
           f"a log standard deviation, which is in [{_EXP_MIN:g}, {_EXP_MAX:g}] (σ = exp(log σ) must be finite "
           "and positive)", lambda t: (t > _EXP_MAX) | (t < _EXP_MIN)),
)  # fmt: skip


def domain_of(name: str) -> Domain | None:
    return next((d for d in DOMAINS if d.pattern.search(name)), None)


def check_domains(path: Path, tensors: dict[str, Tensor]) -> None:
    """Refuse the first tensor of ``tensors`` (read from the file ``path``) with a value outside its
    domain, naming the file, the tensor, the value and the domain. NaN/inf are left to the
    finiteness check, which names them as such."""
    for name in sorted(tensors):
        domain = domain_of(name)
        if domain is None:
            continue
        t = tensors[name].detach()
        if t.dtype == torch.bool:
            continue
        finite = torch.isfinite(t) if t.is_floating_point() else torch.ones_like(t, dtype=torch.bool)
        bad = domain.bad(t) & finite
        if bool(bad.any()):
            index = int(torch.nonzero(bad.reshape(-1))[0])
            value = t.reshape(-1)[index].item()
            at = f" at index {index}" if t.numel() > 1 else ""
            raise SoftacError(
                f"checkpoint file {path}: tensor {name} holds {value:g}{at}, but it is {domain.what}; the file is "
                "corrupted (or was edited): use an earlier checkpoint"
            )
