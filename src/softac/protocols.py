"""What the trainer and the checkpoint code know about an agent: this protocol, never a concrete
algorithm (DESIGN.md principle 9). ``softac.algos.base.Agent`` implements it.

The learner axis: an agent holds L ≥ 1 independent learners (seeds) stacked on the leading
dimension of every learned tensor, learner-major; a single run is L = 1. Everything per learner
(seed, episodes, replay region, random streams, run directory) is indexed by k in [0, L).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from softac.collector import Transitions
from softac.data.replay import ReplayBuffer
from softac.env_sources import EnvSource
from softac.envs import EnvSpec
from softac.preset_apply import AppliedPreset
from softac.rng import LearnerRNG


class AgentLike(Protocol):
    algo: ClassVar[str]
    family: ClassVar[str]  # "off-policy" | "on-policy" (registry.FAMILIES)
    config: Any  # a frozen config dataclass (softac.config.BaseConfig)
    spec: EnvSpec
    env_source: EnvSource  # where the training and evaluation environments come from
    device: torch.device
    seeds: tuple[int, ...]
    rng: LearnerRNG
    env_steps: int  # environment steps per learner (all learners step together)
    updates: int  # gradient steps per learner
    episodes: list[int]  # finished training episodes, per learner
    resume_state: list[dict[str, Any]] | None  # per learner: env RNG, logger position, ...
    loaded_from: Path | None
    preset: AppliedPreset | None  # the preset the config started from (recorded in config.json)

    @property
    def learners(self) -> int: ...

    def learner_config(self, k: int) -> Any:
        """The config of learner k alone (``seed`` = its seed): what its checkpoint records."""

    def modules(self) -> dict[str, nn.Module]:
        """Every network, target networks included, by name."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def extra_tensors(self) -> dict[str, Tensor]:
        """Learned tensors that are not in a module (SAC's log α), learner-major like the rest."""

    def data_tensors(self, k: int) -> dict[str, Tensor]:
        """Learner k's training data worth a checkpoint (the replay buffer's filled rows)."""

    def data_meta(self, k: int) -> dict[str, Any]:
        """JSON-able description of that data (fill level, cursor)."""

    def data_targets(self, k: int) -> dict[str, Tensor]:
        """Where stored data is copied back to: learner k's whole preallocated regions."""

    def load_data_meta(self, k: int, meta: dict[str, Any]) -> None: ...

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """The library's actions (e.g. in [−1, 1]) → the environment's."""

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for observations (L, B, obs_dim), in the library's action space."""

    def start_notes(self) -> list[str]:
        """Lines to print before a run starts (what it will cost, where that is surprising)."""


class OffPolicyLike(AgentLike, Protocol):
    buffer: ReplayBuffer

    def update_phase(self, index: int) -> Hashable:
        """Which variant update number ``index`` is (e.g. TD3's delayed actor step)."""

    def explore(self, obs: np.ndarray) -> np.ndarray: ...

    def add_transitions(self, tr: Transitions) -> None:
        """Store one step's transitions (those with ``tr.ok``) in each learner's replay region."""

    def cut_episodes(self) -> None:
        """A new collector starts fresh episodes: end what the agent holds of the old ones (the
        pending steps of n-step returns)."""

    def updates_due(self) -> int: ...

    def update(self) -> dict[str, Tensor]: ...


class OnPolicyLike(AgentLike, Protocol):
    def rollout_act(self, t: int, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Act at rollout step t on observations (L, n, obs_dim); ``starts`` (L, n) marks the envs
        whose episode begins now. Returns the environments' actions in the library's space."""

    def rollout_record(self, t: int, tr: Transitions, ended: np.ndarray) -> None:
        """Store step t's outcome; ``ended`` (L, n): the envs whose episode ended (any reason)."""

    def update(self) -> dict[str, Tensor]:
        """Learn from the finished rollout; metrics of shape (L,)."""


def state_tensors(agent: AgentLike) -> dict[str, Tensor]:
    """THE definition of an agent's learned state: every tensor an update may change, by
    checkpoint name, as the live tensors themselves (a ``copy_`` into one changes the agent):

    - ``net/<module>/<key>``: each module's ``state_dict`` — parameters *and buffers* (batch
      renormalisation's running statistics), target networks included;
    - ``extra/<name>``: learned tensors outside modules (log α, observation statistics);
    - ``optim/<optimizer>/<i>/<key>``: each optimizer's per-parameter state (Adam's moments, step).

    Checkpoints (``softac.io.state``), the snapshots of graph warm-ups and failed compilations
    (``Agent.mutable_tensors``), the divergence check and the tests all derive from this one
    listing, so a new layer kind with state is covered everywhere at once."""
    out: dict[str, Tensor] = {}
    for name, module in agent.modules().items():
        for key, value in module.state_dict(keep_vars=True).items():
            out[f"net/{name}/{key}"] = value.detach()
    for name, value in agent.extra_tensors().items():
        out[f"extra/{name}"] = value
    for name, opt in agent.optimizers().items():
        params = [p for group in opt.param_groups for p in group["params"]]
        for i, p in enumerate(params):
            for key, value in opt.state[p].items():
                out[f"optim/{name}/{i}/{key}"] = value
    return out


def learner_names(seeds: Sequence[int]) -> list[str]:
    """Per-learner subdirectory names of a batched run directory."""
    return [f"seed_{s}" for s in seeds]
