"""Typed, frozen configuration for every algorithm.

Each field carries its help text in ``metadata["help"]``; :mod:`softac.cli` turns every field into
a ``--flag`` with that text, so the CLI, ``config.json`` and the Python API never drift apart.
Defaults come from the literature: SAC v2 (Haarnoja et al. 2018b), TD3 (Fujimoto et al. 2018),
and the defaults of Stable-Baselines3 and CleanRL, which agree on most of them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from softac.errors import SoftacError


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class OffPolicyConfig:
    """Settings shared by every off-policy algorithm (the core: buffer, collection, training loop)."""

    env_id: str = _f("Pendulum-v1", "Gymnasium environment id (continuous Box action space).")
    seed: int = _f(0, "Seed for networks, replay sampling, exploration and the environments.")
    total_steps: int = _f(20_000, "Environment steps to train for (counted over all parallel envs).")
    n_envs: int = _f(1, "Parallel environments collecting transitions (a Gymnasium vector env).")
    vectorization: str = _f("sync", "Vector env kind: 'sync' (one process) or 'async' (subprocesses).")
    buffer_size: int = _f(1_000_000, "Replay buffer capacity in transitions.")
    batch_size: int = _f(256, "Minibatch size of each gradient step.")
    gamma: float = _f(0.99, "Discount factor γ in [0, 1].")
    tau: float = _f(0.005, "Polyak coefficient τ = 1 − ρ in (0, 1]: φ_targ ← (1 − τ) φ_targ + τ φ.")
    learning_starts: int = _f(5_000, "Environment steps of uniform random actions before updates begin.")
    utd_ratio: float = _f(1.0, "Gradient steps per environment step (update-to-data ratio).")
    hidden_sizes: tuple[int, ...] = _f((256, 256), "Hidden layer widths of the actor and each critic.")
    actor_lr: float = _f(3e-4, "Adam learning rate of the actor.")
    critic_lr: float = _f(3e-4, "Adam learning rate of the critics.")
    n_critics: int = _f(2, "Number of Q functions in the critic ensemble (min over them in the target).")
    eval_freq: int = _f(5_000, "Evaluate the deterministic policy every this many environment steps.")
    eval_episodes: int = _f(10, "Episodes per evaluation (on a separate environment).")
    log_freq: int = _f(1_000, "Write training scalars (and check for divergence) every this many steps.")
    checkpoint_freq: int = _f(10_000, "Save a full checkpoint every this many steps (0: only at the end).")
    keep_checkpoints: int = _f(2, "How many of the newest checkpoints to keep on disk.")
    device: str = _f("auto", "Torch device: 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:N'.")
    threads: int = _f(0, "Torch intra-op CPU threads (0: one per available core).")
    fast_update: bool = _f(
        True,
        "Run the update's hand-written forward/backward passes (softac.fastpath); --no-fast-update runs "
        "the autograd reference. Same equations and random draws, verified equal in the tests.",
    )
    compile_update: bool = _f(
        False,
        "Run the fast update as a torch.compile graph (Inductor): about 30 s of compilation at the first "
        "update on 2 cores (cached on disk for later runs), then less time per update. Needs a C++ "
        "compiler on CPU (gcc). Equal to the eager fast path up to rounding, verified in the tests.",
    )
    skip_nonfinite: bool = _f(
        False, "Drop transitions whose observation or reward is NaN/inf (default: stop with an error)."
    )

    def validate(self) -> None:
        """Raise :class:`SoftacError` naming the first invalid field."""
        positive_ints = [
            "total_steps", "n_envs", "buffer_size", "batch_size", "eval_freq", "eval_episodes",
            "log_freq", "keep_checkpoints", "n_critics",
        ]  # fmt: skip
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise SoftacError(f"{name} must be a positive integer, got {value!r}")
        for name in ["learning_starts", "checkpoint_freq", "threads", "seed"]:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise SoftacError(f"{name} must be a non-negative integer, got {value!r}")
        if not (0.0 <= self.gamma <= 1.0):
            raise SoftacError(f"gamma must be in [0, 1], got {self.gamma}")
        if not (0.0 < self.tau <= 1.0):
            raise SoftacError(f"tau must be in (0, 1], got {self.tau}")
        for name in ["actor_lr", "critic_lr", "utd_ratio"]:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SoftacError(f"{name} must be a positive number, got {value}")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise SoftacError(f"hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.vectorization not in ("sync", "async"):
            raise SoftacError(f"vectorization must be 'sync' or 'async', got {self.vectorization!r}")
        if self.compile_update and not self.fast_update:
            raise SoftacError("compile_update compiles the fast update: drop --no-fast-update or --compile-update")
        if self.batch_size > self.buffer_size:
            raise SoftacError(f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size})")

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise SoftacError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        kwargs = dict(data)
        if "hidden_sizes" in kwargs:
            kwargs["hidden_sizes"] = tuple(int(h) for h in kwargs["hidden_sizes"])
        return cls(**kwargs)


@dataclass(frozen=True)
class SACConfig(OffPolicyConfig):
    """Soft Actor-Critic (Haarnoja et al. 2018a, 2018b) settings."""

    autotune_alpha: bool = _f(
        True, "Learn α towards target_entropy (SAC v2). --no-autotune-alpha keeps α fixed at --alpha."
    )
    alpha: float = _f(0.2, "Fixed entropy coefficient α, used when autotune_alpha is off.")
    alpha_init: float = _f(1.0, "Initial α when autotune_alpha is on (SB3 and CleanRL start at 1).")
    alpha_lr: float = _f(3e-4, "Adam learning rate of log α.")
    target_entropy: float | None = _f(None, "Target entropy H̄ for automatic α (default −dim(A)).")
    log_std_min: float = _f(-20.0, "Lower clamp of the policy's state-dependent log σ.")
    log_std_max: float = _f(2.0, "Upper clamp of the policy's state-dependent log σ.")

    def validate(self) -> None:
        super().validate()
        for name in ["alpha", "alpha_init", "alpha_lr"]:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SoftacError(f"{name} must be a positive number, got {value}")
        if not self.log_std_min < self.log_std_max:
            raise SoftacError("log_std_min must be smaller than log_std_max")
        # Why: a NaN/inf target entropy passed validation and made α (then the policy) NaN at the
        # first update, reported as a divergence instead of as bad input.
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise SoftacError(f"target_entropy must be a finite number, got {self.target_entropy}")


@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 (Fujimoto et al. 2018). lr 3e-4 and 256×256 follow the author's updated reference code
    and CleanRL (the paper's 1e-3 with 400×300 networks was changed there for stability)."""

    learning_starts: int = _f(25_000, "Environment steps of uniform random actions (TD3 paper: 25k).")
    policy_delay: int = _f(2, "Critic updates per actor and target update (delayed policy updates).")
    target_noise: float = _f(0.2, "σ of the target policy smoothing noise (normalised action units).")
    target_noise_clip: float = _f(0.5, "Clip c of the target policy smoothing noise.")
    exploration_noise: float = _f(0.1, "σ of the Gaussian noise added to behaviour actions.")

    def validate(self) -> None:
        super().validate()
        if self.policy_delay <= 0:
            raise SoftacError(f"policy_delay must be a positive integer, got {self.policy_delay}")
        for name in ["target_noise", "target_noise_clip", "exploration_noise"]:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SoftacError(f"{name} must be a non-negative number, got {value}")


@dataclass(frozen=True)
class DDPGConfig(TD3Config):
    """DDPG (Lillicrap et al. 2016) is TD3's machinery with TD3's three additions switched off:
    one critic (no clipped double-Q), no target policy smoothing, no policy delay."""

    n_critics: int = _f(1, "Number of Q functions (DDPG: one).")
    policy_delay: int = _f(1, "Critic updates per actor update (DDPG: every step).")
    target_noise: float = _f(0.0, "Target policy smoothing σ (DDPG: none).")
    target_noise_clip: float = _f(0.0, "Target policy smoothing clip (DDPG: none).")


CONFIGS: dict[str, type[OffPolicyConfig]] = {"sac": SACConfig, "td3": TD3Config, "ddpg": DDPGConfig}
