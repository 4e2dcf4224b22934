"""What every agent shares: construction, the learner axis, the SB3-style API (learn, predict, save,
load), and the state the trainer and the checkpoint code read through ``softac.protocols``.

Algorithms subclass a family base (``OffPolicyAgent``; an on-policy one next) once, no deeper
hierarchy, and provide their networks, optimizers and update.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from softac import registry
from softac.config import BaseConfig
from softac.envs import EnvSpec, action_mapper, env_spec, make_env
from softac.errors import SoftacError
from softac.io.load import load_agent
from softac.io.state import save_checkpoint
from softac.optim import adam_step, adam_step_traceable, clip_grads
from softac.perf import tune_allocator
from softac.preset_apply import AppliedPreset
from softac.preset_apply import resolve as resolve_preset
from softac.rng import LearnerRNG
from softac.train import train


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SoftacError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SoftacError(f"device '{name}' requested but CUDA is not available: use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SoftacError(f"device '{name}' is not supported: use cpu or cuda")
    return device


def parse_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    try:
        out = tuple(seeds)
    except TypeError:
        raise SoftacError(f"seeds must be a list of non-negative integers, got {seeds!r}") from None
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in out):
        raise SoftacError(f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(out)) != len(out):
        raise SoftacError(f"seeds must be distinct, got {list(out)}")
    return out


class Agent(abc.ABC):
    algo: ClassVar[str]
    config_cls: ClassVar[type[BaseConfig]]
    family: ClassVar[str]
    preset: AppliedPreset | None

    def __init__(
        self,
        env: str | gym.Env | None = None,
        config: BaseConfig | None = None,
        *,
        seeds: Iterable[int] | None = None,
        preset: str | None = None,
        **overrides: Any,
    ) -> None:
        """``SAC("HalfCheetah-v5", batch_size=256)``: an env id (or a registered env instance, whose
        id is used to make the training and evaluation envs), a config, and/or config fields.
        ``seeds=range(8)`` trains 8 independent learners (one per seed) in one process, their
        networks stacked on a learner axis and updated in one call. ``preset="auto"`` starts from
        the preset of (algorithm, environment) in ``softac.presets`` where there is one (the fields
        given here override it; ``self.preset`` says what was applied); by default, none."""
        if preset not in (None, "none") and config is not None:
            raise SoftacError("pass a config or a preset, not both: a preset would replace the config's values")
        cfg = config if config is not None else self.config_cls()
        if not isinstance(cfg, self.config_cls):
            raise SoftacError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(cfg).__name__}")
        if isinstance(env, gym.Env):
            if env.spec is None:
                raise SoftacError("pass a registered environment id (or an env made with gymnasium.make)")
            overrides["env_id"] = env.spec.id
        elif env is not None:
            overrides["env_id"] = env
        if seeds is not None:
            self.seeds = parse_seeds(seeds)
            overrides["seed"] = self.seeds[0]
        overrides, self.preset = resolve_preset(self.algo, overrides.get("env_id", cfg.env_id), preset, overrides)
        try:
            cfg = cfg.replace(**overrides)
        except TypeError as exc:
            raise SoftacError(f"invalid {type(self).__name__} option: {exc}") from None
        self.config = cfg
        if seeds is None:
            self.seeds = (cfg.seed,)
        probe = make_env(cfg.env_id)
        try:
            self.spec: EnvSpec = env_spec(probe, cfg.env_id)
        finally:
            probe.close()
        info = registry.get(self.algo)
        if self.spec.action_kind not in info.action_spaces:
            others = [n for n in registry.for_action_space(self.spec.action_kind) if n != self.algo]
            hint = f": use --algo {' or '.join(others)}" if others else ""
            raise SoftacError(
                f"{cfg.env_id} has a {self.spec.action_kind} action space, which {self.algo} does not support "
                f"(it needs {' or '.join(info.action_spaces)}){hint}"
            )
        self.scaler = action_mapper(self.spec)
        self.device = resolve_device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        tune_allocator()
        self.rng = LearnerRNG(self.seeds, self.device)
        self.env_steps = 0  # environment steps collected per learner
        self.updates = 0  # gradient steps done per learner
        self.episodes = [0] * self.learners
        self.resume_state: list[dict[str, Any]] | None = None  # env RNG and logger position to continue from
        self.loaded_from: Path | None = None  # the checkpoint this agent was loaded from, if any
        self._build()

    @property
    def learners(self) -> int:
        return len(self.seeds)

    def learner_config(self, k: int) -> Any:
        return self.config.replace(seed=self.seeds[k])

    # -- what an algorithm provides ---------------------------------------------------------
    @abc.abstractmethod
    def _build(self) -> None:
        """Create networks (initialised from ``self.rng.host``), targets and optimizers."""

    @abc.abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Every network, target networks included, by name (for checkpoints)."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer by name (for checkpoints)."""

    def extra_tensors(self) -> dict[str, Tensor]:
        """Learned tensors that are not in a module (SAC's log α)."""
        return {}

    @abc.abstractmethod
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions (L, B, act_dim) in the library's action space for observations (L, B, obs_dim)."""

    @abc.abstractmethod
    def data_tensors(self, k: int) -> dict[str, Tensor]:
        """Learner k's training data worth a checkpoint (e.g. the replay buffer's filled rows)."""

    @abc.abstractmethod
    def data_meta(self, k: int) -> dict[str, Any]: ...

    @abc.abstractmethod
    def data_targets(self, k: int) -> dict[str, Tensor]: ...

    @abc.abstractmethod
    def load_data_meta(self, k: int, meta: dict[str, Any]) -> None: ...

    # -- shared machinery -------------------------------------------------------------------
    def step_optimizer(self, opt: torch.optim.Optimizer, grads: Sequence[Tensor] | None = None) -> None:
        """One Adam step, in the form the update runs in (traceable under ``torch.compile``)."""
        if torch.compiler.is_compiling():
            adam_step_traceable(opt, grads)
        else:
            adam_step(opt, grads)

    def gradient_step(
        self,
        opt: torch.optim.Optimizer,
        loss_fn: Callable[..., tuple[Tensor, dict[str, Tensor]]],
        *args: Any,
        max_grad_norm: float | None = None,
    ) -> dict[str, Tensor]:
        """One optimizer step on ``loss_fn(params, *args) -> (loss per learner (L,), metrics)``,
        where ``params`` are the optimizer's parameters in group order — the loss is written as a
        function of exactly the tensors it may change, so nothing else can receive a gradient.

        Eagerly the gradient comes from autograd on the agent's own tensors (and is left in
        ``.grad``, where the tests read it); under ``torch.compile`` from ``torch.func.grad``, so
        the forward pass, its backward and the optimizer step trace into one graph instead of
        breaking at ``backward()``. The learners' losses are summed: their parameters are
        disjoint slices, so each learner receives exactly the gradient of its own loss.

        ``max_grad_norm``: each learner's gradient is clipped to that global L2 norm before the step
        (``optim.clip_grads``: per learner, since the learners share every tensor)."""
        params = [p for group in opt.param_groups for p in group["params"]]
        if torch.compiler.is_compiling():

            def total(ps: list[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
                loss, aux = loss_fn(ps, *args)
                return loss.sum(), aux

            grads, metrics = torch.func.grad(total, has_aux=True)(params)
            if max_grad_norm is not None:
                grads, _ = clip_grads(grads, max_grad_norm, self.learners)
        else:
            loss, metrics = loss_fn(params, *args)
            grads = torch.autograd.grad(loss.sum(), params)
            if max_grad_norm is not None:
                grads, _ = clip_grads(grads, max_grad_norm, self.learners)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
        self.step_optimizer(opt, grads)
        return metrics

    def mutable_tensors(self) -> list[Tensor]:
        """Everything an update changes in place (for the wrappers that snapshot it)."""
        out: list[Tensor] = [p for m in self.modules().values() for p in m.parameters()]
        out += list(self.extra_tensors().values())
        for opt in self.optimizers().values():
            out += [v for state in opt.state.values() for v in state.values() if isinstance(v, Tensor)]
        return out

    def to_env(self, action: np.ndarray) -> np.ndarray:
        return self.scaler.to_env(action)

    # -- the SB3-style API --------------------------------------------------------------------
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """SB3-style: environment-scaled action(s) for one observation or a batch, and ``None``
        in place of SB3's recurrent state, so ``action, _ = model.predict(obs)`` works as there."""
        if self.learners > 1:
            raise SoftacError("predict acts for one learner: load one seed's run (e.g. SAC.load('RUN/seed_0'))")
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.spec.obs_dim:
            raise SoftacError(f"observation has shape {obs.shape}; this policy expects ({self.spec.obs_dim},)")
        action = self.act((obs[None] if single else obs)[None], deterministic)[0]
        env_action = np.asarray(self.to_env(action))
        if self.spec.action_kind == "Box":
            env_action = env_action.astype(np.float32)
        return (env_action[0] if single else env_action), None

    def learn(
        self,
        total_steps: int | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        overwrite: bool = False,
    ) -> Agent:
        """Train until ``total_steps`` environment steps (default: the config's). On an agent
        loaded from a checkpoint (or trained before) this continues the run where it stopped.
        With ``run_dir`` the run writes config.json, progress.csv, TensorBoard events,
        checkpoints and a learning curve there (one ``seed_<s>/`` each for several seeds);
        ``overwrite`` replaces another run's files."""
        if total_steps is not None:
            self.config = self.config.replace(total_steps=total_steps)
        train(self, Path(run_dir) if run_dir is not None else None, progress=progress, overwrite=overwrite)
        return self

    def save(self, path: str | os.PathLike[str], include_buffer: bool = True) -> Path:
        """Write a checkpoint directory (weights, optimizers, counters, random streams, config, and
        by default the replay buffer); with several seeds, one per seed under ``path/seed_<s>``.
        No pickle: tensors in safetensors, the rest in JSON. Only ever replaces a softac checkpoint."""
        path = Path(path)
        if self.learners == 1:
            return save_checkpoint(self, 0, path, include_data=include_buffer)
        for k, seed in enumerate(self.seeds):
            save_checkpoint(self, k, path / f"seed_{seed}", include_data=include_buffer)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | None = None) -> Any:
        """Load a checkpoint directory, a run directory (its newest checkpoint) or a batched run."""
        agent = load_agent(Path(path), device=device)
        # Exact type: DDPG subclasses TD3 only to share its update, a DDPG run is not a TD3 run.
        if getattr(cls, "algo", None) is not None and type(agent) is not cls:
            raise SoftacError(
                f"{path} holds a {agent.algo} checkpoint, not {cls.algo}: use softac.{type(agent).__name__}.load"
            )
        return agent
