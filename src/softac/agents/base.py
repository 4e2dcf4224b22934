"""What every off-policy agent shares: construction, acting, the SB3-style API.

Algorithms subclass :class:`OffPolicyAgent` once (no deeper hierarchy) and provide their networks,
optimizers, ``_policy_action`` and ``update``. Everything else (buffer, collection, the training
loop, logging, checkpoints) lives in the shared core modules and is called from here.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from softac.buffer import Batch, ReplayBuffer
from softac.config import OffPolicyConfig
from softac.envs import ActionScaler, EnvSpec, env_spec, make_env
from softac.errors import SoftacError
from softac.perf import tune_allocator


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SoftacError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SoftacError(f"device '{name}' requested but CUDA is not available: use --device cpu")
    return device


class OffPolicyAgent(abc.ABC):
    algo: ClassVar[str]
    config_cls: ClassVar[type[OffPolicyConfig]]

    def __init__(self, env: str | gym.Env | None = None, config: OffPolicyConfig | None = None, **overrides: Any):
        """``SAC("HalfCheetah-v5", batch_size=256)``: an env id (or a registered env instance, whose
        id is used to make the training and evaluation envs), a config, and/or config fields."""
        cfg = config if config is not None else self.config_cls()
        if not isinstance(cfg, self.config_cls):
            raise SoftacError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(cfg).__name__}")
        if isinstance(env, gym.Env):
            if env.spec is None:
                raise SoftacError("pass a registered environment id (or an env made with gymnasium.make)")
            overrides["env_id"] = env.spec.id
        elif env is not None:
            overrides["env_id"] = env
        try:
            cfg = cfg.replace(**overrides)
        except TypeError as exc:
            raise SoftacError(f"invalid {type(self).__name__} option: {exc}") from None
        cfg.validate()
        self.config = cfg
        probe = make_env(cfg.env_id)
        self.spec: EnvSpec = env_spec(probe, cfg.env_id)
        probe.close()
        self.scaler = ActionScaler(self.spec.action_low, self.spec.action_high)
        self.device = resolve_device(cfg.device)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        tune_allocator()
        torch.manual_seed(cfg.seed)  # network initialisation, then replay sampling and noise
        self.buffer = ReplayBuffer(cfg.buffer_size, self.spec.obs_dim, self.spec.act_dim, self.device)
        self.env_steps = 0  # environment steps collected (over all envs)
        self.updates = 0  # gradient steps (critic updates) done
        self.episodes = 0
        self.resume_state: dict[str, Any] | None = None  # env RNG and logger position to continue from
        self.loaded_from: Path | None = None  # the checkpoint this agent was loaded from, if any
        self._fast: Callable[[Batch], dict[str, Tensor]] | None = None
        self._numpy_views: dict[int, list[tuple[Tensor, int, np.ndarray]]] = {}  # see _mlp_numpy
        self._build()

    # -- what an algorithm provides ---------------------------------------------------------
    @abc.abstractmethod
    def _build(self) -> None:
        """Create networks, targets and optimizers on ``self.device``."""

    @abc.abstractmethod
    def _policy_action(self, obs: Tensor, deterministic: bool) -> Tensor:
        """Behaviour (or deterministic) actions in [−1, 1] for a batch of observations."""

    def update(self, batch: Batch) -> dict[str, Tensor]:
        """One gradient step on ``batch``; returns detached scalar tensors (no host sync).
        ``fast_update`` picks the hand-written update (softac.fastpath), else the autograd one."""
        if not self.config.fast_update:
            return self._update_reference(batch)
        if self._fast is None:  # built at the first update, when the optimizers exist
            self._fast = self._make_fast_update()
        return self._fast(batch)

    @abc.abstractmethod
    def _update_reference(self, batch: Batch) -> dict[str, Tensor]:
        """The update written with autograd from the loss functions: the readable reference."""

    @abc.abstractmethod
    def _make_fast_update(self) -> Callable[[Batch], dict[str, Tensor]]:
        """The same update without autograd (see softac.fastpath)."""

    @abc.abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Every network, target networks included, by name (for checkpoints)."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer by name (for checkpoints)."""

    def extra_tensors(self) -> dict[str, Tensor]:
        """Learned tensors that are not in a module (SAC's log α)."""
        return {}

    # -- acting -----------------------------------------------------------------------------
    def updates_due(self) -> int:
        """Gradient steps owed at the current step count: ⌊(t − learning_starts) · utd⌋ − done.
        Derived from the counters alone, so a resumed run schedules exactly the same updates."""
        owed = int((self.env_steps - self.config.learning_starts) * self.config.utd_ratio)
        return max(0, owed - self.updates)

    @torch.inference_mode()
    def explore(self, obs: np.ndarray) -> np.ndarray:
        """Behaviour actions in [−1, 1] for a batch of observations (uniform during warm-up)."""
        if self.env_steps < self.config.learning_starts:
            shape = (obs.shape[0], self.spec.act_dim)
            return (torch.rand(shape, dtype=torch.float32) * 2.0 - 1.0).numpy()
        if self.config.fast_update and obs.shape[0] == 1 and self.device.type == "cpu":
            return self._explore_one(np.ascontiguousarray(obs, dtype=np.float32))
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs).to(self.device, non_blocking=True)
            return self._policy_action(obs_t, deterministic=False).cpu().numpy()

    @abc.abstractmethod
    def _explore_one(self, obs: np.ndarray) -> np.ndarray:
        """``_policy_action(obs, deterministic=False)`` for one observation on the CPU, in numpy.

        Why: with one environment (the default) the behaviour action is three vector-matrix
        products and a handful of elementwise ops on 256 numbers, and PyTorch's fixed cost per op
        (dispatch, tensor creation, waking the thread pool for the products) made it ≈0.3–0.5 ms
        of each ≈9 ms training step on 2 cores; numpy does the same float32 arithmetic in ≈0.05
        ms. The noise must be drawn with ``torch.randn`` from the global generator, in the same
        order and shape as ``_policy_action``, so that the random stream — and exact resume — is
        unchanged; the actions must agree with the torch path to float32 rounding
        (``tests/test_fastpath.py``). Single rows only: numpy's BLAS runs larger products on its
        own thread pool, whose spinning threads would compete with PyTorch's for the 2 cores."""

    def _mlp_numpy(self, trunk: nn.Module, x: np.ndarray) -> np.ndarray:
        """A Linear/ReLU ``trunk`` applied in numpy to float32 rows ``x``: x Wᵀ + b, ReLU between.
        The arrays are views of the parameters (no copy: they always hold the current weights,
        which the optimizers update in place); they are rebuilt if a parameter's memory moved."""
        cached = self._numpy_views.get(id(trunk))
        if cached is None or any(t.data_ptr() != ptr for t, ptr, _ in cached):
            params = [p for m in trunk.modules() if isinstance(m, nn.Linear) for p in (m.weight, m.bias)]
            cached = [(p, p.data_ptr(), p.detach().numpy().T) for p in params]
            self._numpy_views[id(trunk)] = cached
        last = len(cached) // 2 - 1
        for i in range(last + 1):
            x = x @ cached[2 * i][2] + cached[2 * i + 1][2]
            if i < last:
                np.maximum(x, 0.0, out=x)
        return x

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions in [−1, 1] for a batch of observations (tanh(μ) when deterministic)."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        return self._policy_action(obs_t, deterministic).cpu().numpy()

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """SB3-style: environment-scaled action(s) for one observation or a batch, and ``None``
        in place of SB3's recurrent state, so ``action, _ = model.predict(obs)`` works as there."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.spec.obs_dim:
            raise SoftacError(f"observation has shape {obs.shape}; this policy expects ({self.spec.obs_dim},)")
        action = self.act(obs[None] if single else obs, deterministic)
        env_action = self.scaler.to_env(action).astype(np.float32)
        return (env_action[0] if single else env_action), None

    # -- the SB3-style API --------------------------------------------------------------------
    def learn(
        self,
        total_steps: int | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        overwrite: bool = False,
    ) -> OffPolicyAgent:
        """Train until ``total_steps`` environment steps (default: the config's). On an agent
        loaded from a checkpoint (or trained before) this continues the run where it stopped.
        With ``run_dir`` the run writes config.json, progress.csv, TensorBoard events,
        checkpoints and a learning curve there; ``overwrite`` replaces another run's files."""
        from softac.trainer import train

        if total_steps is not None:
            if total_steps <= 0:
                raise SoftacError(f"total_steps must be a positive integer, got {total_steps}")
            self.config = self.config.replace(total_steps=int(total_steps))
        train(self, Path(run_dir) if run_dir is not None else None, progress=progress, overwrite=overwrite)
        return self

    def save(self, path: str | os.PathLike[str], include_buffer: bool = True) -> Path:
        """Write a checkpoint directory (weights, optimizers, counters, RNG, config, and by default
        the replay buffer). No pickle: tensors in safetensors, the rest in JSON."""
        from softac.checkpoint import save_checkpoint

        return save_checkpoint(self, Path(path), include_buffer=include_buffer)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | None = None) -> Any:
        """Load a checkpoint directory or a run directory (its newest checkpoint)."""
        from softac.checkpoint import load_agent

        agent = load_agent(Path(path), device=device)
        # Exact type: DDPG subclasses TD3 only to share its update, a DDPG run is not a TD3 run.
        if cls is not OffPolicyAgent and type(agent) is not cls:
            raise SoftacError(
                f"{path} holds a {agent.algo} checkpoint, not {cls.algo}: use softac.{type(agent).__name__}.load"
            )
        return agent
