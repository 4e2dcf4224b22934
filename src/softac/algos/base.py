"""What every agent shares: construction, the learner axis, the SB3-style API (learn, predict, save,
load), and the state the trainer and the checkpoint code read through ``softac.protocols``.

Algorithms subclass a family base (``OffPolicyAgent``, ``OnPolicyAgent``) once, no deeper
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

from softac import memory
from softac.algos.setup import check_action_space, configure
from softac.config import BaseConfig
from softac.config_pixels import pixel_spec
from softac.data.normaliser import ObservationNormaliser
from softac.env_sources import EnvLike
from softac.envs import EnvSpec, action_mapper
from softac.errors import SoftacError
from softac.io.load import load_agent
from softac.io.rundir import as_path
from softac.io.state import save_checkpoint
from softac.memory import available, check_fits, check_growth, generic_networks
from softac.nn.encoder import check_encoder
from softac.obs import observation_array
from softac.optim import adam_step, adam_step_traceable, gradient_step
from softac.perf import tune_allocator
from softac.pixels import predict_rows
from softac.preset_apply import AppliedPreset
from softac.protocols import state_tensors
from softac.rng import LearnerRNG
from softac.runtime import apply_tf32, apply_threads, parse_seeds, resolve_device
from softac.train import train


class Agent(abc.ABC):
    algo: ClassVar[str]
    config_cls: ClassVar[type[BaseConfig]]
    family: ClassVar[str]
    takes_encoder: ClassVar[bool] = False  # whether ``encoder=`` is supported (softac.nn.encoder)
    preset: AppliedPreset | None

    def __init__(
        self,
        env: EnvLike | None = None,
        config: BaseConfig | None = None,
        *,
        seeds: Iterable[int] | None = None,
        eval_env: gym.Env | Callable[[], gym.Env] | None = None,
        preset: str | None = None,
        encoder: type[nn.Module] | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        """``SAC("HalfCheetah-v5", batch_size=256)``: an environment, a config, and/or config fields.

        The environment is an id (``env_kwargs={...}`` go to ``gymnasium.make``), or a
        ``gymnasium.Env`` instance (trained on as given, wrappers and all), a function returning a
        new env, or a Gymnasium vector env (autoreset disabled); the evaluation environments come
        from the id, the factory, ``eval_env``, or the instance's spec. Only an id makes a run
        resumable from its files (see ``softac.env_sources``). ``seeds=range(8)`` trains 8
        independent learners (one per seed) in one process, their networks stacked on a learner
        axis and updated in one call. ``preset="auto"`` starts from the preset of (algorithm,
        environment) in ``softac.presets`` where there is one (the fields given here override it;
        ``self.preset`` says what was applied); by default, none. ``encoder=MyModule`` (with
        ``encoder_kwargs``) puts the user's own network between the observation and the actor and
        critics (``softac.nn.encoder``); it is code, never saved: ``load`` needs it again."""
        if preset not in (None, "none") and config is not None:
            raise SoftacError("pass a config or a preset, not both: a preset would replace the config's values")
        cfg = config if config is not None else self.config_cls()
        # The exact class: a config carries only its algorithm's fields, and a subclass's config
        # (DDPG's of TD3's) describes another algorithm, which this agent must not silently run.
        if type(cfg) is not self.config_cls:
            raise SoftacError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(cfg).__name__}")
        if seeds is not None:
            if "seed" in overrides:  # Why: one of the two was silently ignored
                raise SoftacError("seeds= and seed= conflict: give seeds (several learners) or seed (one), not both")
            self.seeds = parse_seeds(seeds)
            overrides["seed"] = self.seeds[0]
        learners = len(self.seeds) if seeds is not None else 1
        cfg, source, self.preset = configure(self.algo, type(self).__name__, cfg, env, eval_env, preset, overrides,
                                             learners)  # fmt: skip
        self.config = cfg
        self.encoder_spec = check_encoder(encoder, encoder_kwargs, self.algo, self.takes_encoder)
        if seeds is None:
            self.seeds = (cfg.seed,)
        self.env_source = source
        self.spec: EnvSpec = source.spec()
        check_action_space(self.algo, cfg.env_id, self.spec)
        # An image observation's frame layout (softac.pixels), or None; refused for what cannot read it.
        self.pixels = pixel_spec(cfg, self.spec, self.algo, self.takes_encoder, self.encoder_spec[0] is not None)
        self.scaler = action_mapper(self.spec)
        self.device = resolve_device(cfg.device)
        apply_tf32(cfg.tf32, self.device)
        apply_threads(cfg.threads)
        tune_allocator()
        self.check_before_allocating()
        self.rng = LearnerRNG(self.seeds, self.device)
        self.env_steps = 0  # environment steps collected per learner
        self.updates = 0  # gradient steps done per learner
        self.episodes = [0] * self.learners
        self.resume_state: list[dict[str, Any]] | None = None  # env RNG and logger position to continue from
        self.loaded_from: Path | None = None  # the checkpoint this agent was loaded from, if any
        self.obs_norm: ObservationNormaliser | None = None
        if cfg.normalize_obs:
            self.obs_norm = ObservationNormaliser((self.learners,), (self.spec.obs_dim,), device=self.device)
        self._build()

    @property
    def learners(self) -> int:
        return len(self.seeds)

    @property
    def obs_width(self) -> int:
        """The policy's row: the observation's columns, and with an image the K frames' pixels."""
        return self.spec.obs_dim if self.pixels is None else self.pixels.width

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
        """Learned tensors that are not in a module: the observation statistics here; an algorithm
        adds its own (SAC's log α) to ``super().extra_tensors()``."""
        if self.obs_norm is None:
            return {}
        return {f"obs_norm/{name}": t for name, t in self.obs_norm.live_tensors().items()}

    def check_before_allocating(self) -> None:
        """Every structure's memory (``softac.memory.check_fits``), before any is allocated; a
        family adds its checks against the environment (n-step returns against the episode)."""
        check_fits(self.config, self._memory, available(self.device), memory.place(self.device))
        self._checked = self.config  # what ``learn`` checks an extended budget against

    def _memory(self, cfg: Any) -> tuple[dict[str, int], dict[str, int]]:
        return self.memory_estimate(cfg), self.memory_reserved(cfg)

    def memory_estimate(self, cfg: Any = None) -> dict[str, int]:
        """Bytes the agent with config ``cfg`` (default: its own) will touch, by structure (one
        ``softac.memory`` function each): an algorithm lists its networks, a family its data."""
        cfg = self.config if cfg is None else cfg
        envs = memory.environments(self.learners, cfg.n_envs, self.spec.obs_dim, self.spec.act_dim,
                                   self.spec.sim_bytes)  # fmt: skip
        return {"networks": generic_networks(cfg, self.spec, self.learners), "environments": envs}

    def memory_reserved(self, cfg: Any = None) -> dict[str, int]:
        """Single allocations reserved whole but touched as they fill (``softac.memory``)."""
        return {}

    def start_notes(self) -> list[str]:
        """Lines the training shell prints before a run starts: a cost the user would not expect."""
        return []

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
        loss_fn: Callable[..., Any],
        *args: Any,
        max_grad_norm: float | None = None,
    ) -> dict[str, Tensor]:
        """One optimizer step on ``loss_fn(params, *args) -> (loss per learner (L,), metrics[,
        new_state])`` (``optim.gradient_step``: new non-gradient state is returned, never written
        by the loss), stepping through ``step_optimizer``."""
        return gradient_step(opt, loss_fn, args, self.learners, self.step_optimizer, max_grad_norm)

    def network_input(self, obs: np.ndarray | Tensor, update: bool = False) -> Tensor:
        """Observations (L, ..., obs_dim) as the networks take them: a float32 tensor on the device,
        normalised when ``normalize_obs`` is on. ``update=True`` (the training policy acting) first
        merges them into the running statistics; evaluation and ``predict`` never do."""
        x = torch.as_tensor(obs, dtype=torch.float32).to(self.device, non_blocking=True)
        if self.obs_norm is None:
            return x
        if update:
            self.obs_norm.update(x)
        return self.obs_norm.normalise(x)

    def state_tensors(self) -> dict[str, Tensor]:
        """The agent's learned state by name (``softac.protocols.state_tensors``: the one listing)."""
        return state_tensors(self)

    def mutable_tensors(self) -> list[Tensor]:
        """Everything an update changes in place (for the wrappers that snapshot it): the state
        listing, plus what an algorithm keeps between updates outside it (TD3's last actor loss)."""
        return list(self.state_tensors().values())

    def to_env(self, action: np.ndarray) -> np.ndarray:
        return self.scaler.to_env(action)

    # -- the SB3-style API --------------------------------------------------------------------
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's signature, so SB3's ``evaluate_policy`` and other SB3 tooling can drive a softac
        model: environment-scaled action(s) for one observation or a batch, and ``None`` for the
        recurrent state (``state`` and ``episode_start`` are accepted and unused: the policies are
        not recurrent). Unlike SB3 the default is the deterministic action, as in softac 0.1."""
        if not isinstance(deterministic, (bool, np.bool_)):  # "no" is truthy: it acted deterministically
            raise SoftacError(f"deterministic must be true or false, got {deterministic!r}")
        if self.learners > 1:
            raise SoftacError("predict acts for one learner: load one seed's run (e.g. SAC.load('RUN/seed_0'))")
        if self.pixels is not None:
            obs = predict_rows(self.spec.obs_layout, self.pixels, observation)
        else:
            obs = observation_array(observation, self.spec.obs_dim, self.spec.obs_layout)
        single = obs.ndim == 1
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
        callback: Any = None,
    ) -> Agent:
        """Train until ``total_steps`` environment steps (default: the config's). On an agent
        loaded from a checkpoint (or trained before) this continues the run where it stopped.
        With ``run_dir`` the run writes config.json, progress.csv, TensorBoard events,
        checkpoints and a learning curve there (one ``seed_<s>/`` each for several seeds);
        ``overwrite`` replaces another run's files. ``callback``: a function, an object with
        hooks (``on_step``, ``on_evaluation``, ...) or a list of them; a hook returning False stops
        training with a checkpoint (``softac.train.callbacks``, docs/callbacks.md). Callbacks are
        never saved: a resumed run uses the ones given to its ``learn``."""
        for name, flag in (("progress", progress), ("overwrite", overwrite)):
            if not isinstance(flag, bool):
                raise SoftacError(f"{name} must be true or false, got {flag!r}")
        cfg = self.config.replace(total_steps=total_steps) if total_steps is not None else self.config
        check_growth(self._checked, cfg, self._memory, available(self.device), memory.place(self.device))
        self.config = self._checked = cfg
        where = as_path(run_dir, "run_dir") if run_dir is not None else None
        train(self, where, progress=progress, overwrite=overwrite, callback=callback)
        return self

    def save(self, path: str | os.PathLike[str], include_buffer: bool = True) -> Path:
        """Write a checkpoint directory (weights, optimizers, counters, random streams, config, and
        by default the replay buffer); with several seeds, one per seed under ``path/seed_<s>``.
        No pickle: tensors in safetensors, the rest in JSON. Only ever replaces a softac checkpoint."""
        path = as_path(path, "path")
        if not isinstance(include_buffer, bool):
            raise SoftacError(f"include_buffer must be true or false, got {include_buffer!r}")
        if self.learners == 1:
            return save_checkpoint(self, 0, path, include_data=include_buffer)
        for k, seed in enumerate(self.seeds):
            save_checkpoint(self, k, path / f"seed_{seed}", include_data=include_buffer)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: str | None = None,
        *,
        env: EnvLike | None = None,
        allow_import: Iterable[str] = (),
        encoder: type[nn.Module] | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Load a checkpoint directory, a run directory (its newest checkpoint) or a batched run.

        ``env`` gives the environment again (needed for a run made from an instance, a factory or
        a vector env, which a checkpoint cannot record). Loading never imports a module a file
        names: a run on a ``module:EnvId`` environment loads only with ``allow_import=["module"]``, and
        a run trained with the user's ``encoder`` class only with that class given again."""
        spec = check_encoder(encoder, encoder_kwargs, getattr(cls, "algo", "this algorithm"), True)
        agent = load_agent(as_path(path, "path"), device=device, env=env, allow_import=tuple(allow_import),
                           encoder=spec)  # fmt: skip
        # Exact type: DDPG subclasses TD3 only to share its update, a DDPG run is not a TD3 run.
        if getattr(cls, "algo", None) is not None and type(agent) is not cls:
            raise SoftacError(
                f"{path} holds a {agent.algo} checkpoint, not {cls.algo}: use softac.{type(agent).__name__}.load"
            )
        return agent
