"""Typed, frozen configuration: the settings every algorithm shares, and how every field is checked.

Each field carries its help text and its valid range in its metadata; :mod:`softac.cli` turns
every field into a ``--flag`` with that text, so the CLI, ``config.json`` and the Python API never
drift apart. A config is validated when it is constructed (DESIGN.md principle 7): by type first —
a bool is not an int, a string is not a number, ``hidden_sizes=16`` is not a tuple — then by
range, and the error names the field. Each algorithm's own config class lives in its module under
``softac.algos``. Defaults come from the literature: SAC v2 (Haarnoja et al. 2018b), TD3 (Fujimoto
et al. 2018), and the defaults of Stable-Baselines3 and CleanRL, which agree on most of them.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

# The field machinery (metadata, type and range checks, env_kwargs) lives in softac.config_fields;
# the names below are re-exported because every algorithm's config module imports them from here.
from softac.config_fields import (  # noqa: F401  (re-exported)
    _CHECKS,
    COMPILE_AUTO_UPDATES,
    MAX_INT,
    MAX_SEED,
    Kwargs,
    _check_type,
    _f,
    check_first_rows,
    check_sizes,
    kwargs_to_json,
)
from softac.errors import SoftacError


@dataclass(frozen=True)
class BaseConfig:
    """Settings every algorithm shares: environment, budget, evaluation, output, hardware."""

    env_id: str = _f("Pendulum-v1", "Gymnasium environment id.")
    env_kwargs: tuple[tuple[str, Any], ...] = _f(
        (), "Keyword arguments for gymnasium.make, as KEY=VALUE ... (VALUE read as JSON if it parses, else a string)."
    )
    seed: int = _f(0, "Seed for networks, replay sampling, exploration and the environments.", "seed")
    total_steps: int = _f(20_000, "Environment steps to train for (counted over all parallel envs).", "positive")
    n_envs: int = _f(1, "Parallel environments collecting transitions (a Gymnasium vector env).", "positive")
    vectorization: str = _f(
        "sync", "Vector env kind: 'sync' (one process) or 'async' (subprocesses).", choices=("sync", "async")
    )
    hidden_sizes: tuple[int, ...] = _f((256, 256), "Hidden layer widths of every network.")
    gamma: float = _f(0.99, "Discount factor γ in [0, 1].", "probability")
    eval_freq: int = _f(5_000, "Evaluate the deterministic policy every this many environment steps.", "positive")
    eval_episodes: int = _f(10, "Episodes per evaluation (on a separate environment).", "positive")
    log_freq: int = _f(1_000, "Write training scalars (and check for divergence) every this many steps.", "positive")
    checkpoint_freq: int = _f(
        10_000, "Save a full checkpoint every this many steps (0: only at the end).", "non-negative"
    )
    keep_checkpoints: int = _f(2, "How many of the newest checkpoints to keep on disk.", "positive")
    device: str = _f("auto", "Torch device: 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:N'.")
    threads: int = _f(0, "Torch intra-op CPU threads (0: the free cores; docs/speed.md).", "threads")
    fast_update: bool = _f(
        True,
        "Run each network's Linear/ReLU stack as one fused autograd node (softac.nn.fused) on the CPU; "
        "--no-fast-update builds it from separate autograd ops. Same function, verified equal in the tests.",
    )
    compile_update: bool | None = _f(
        None,
        "Run the update through torch.compile (Inductor): 20-40 s of compilation at the first update "
        "(cached on disk for later runs), then less time per update. Needs a C++ compiler on CPU (without "
        "one: a warning and the eager update). Verified equal to the eager update up to rounding in the "
        "tests. Unset (default): on for CPU runs of at least 50,000 gradient updates, where the compilation "
        "pays back many times, off otherwise; --compile-update / --no-compile-update decide.",
    )
    cuda_graph: bool = _f(
        True,
        "On CUDA, capture the update (replay sampling, noise, losses, backward, Adam, Polyak) in a CUDA "
        "graph and replay it: one launch instead of hundreds. Ignored on the CPU.",
    )
    tf32: bool = _f(
        False,
        "On CUDA, let float32 matrix products use TF32 tensor cores (torch.backends.cuda.matmul.allow_tf32): "
        "several times faster wide layers (CrossQ's 2048-wide critics) at a 10-bit mantissa per product, as "
        "JAX's default GPU precision. Process-wide; ignored on the CPU.",
    )
    skip_nonfinite: bool = _f(
        False, "Drop transitions whose observation or reward is NaN/inf (default: stop with an error)."
    )
    normalize_obs: bool = _f(
        False,
        "Normalise observations with running per-learner statistics, clip((o - mean) / sqrt(var + 1e-8), -10, 10) "
        "as SB3's VecNormalize: updated with every observation the training policy acts on, frozen in "
        "evaluation, saved in checkpoints. Off-policy: the buffer keeps raw observations, normalised at "
        "sampling with the current statistics.",
    )

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check_type(f.name, hints[f.name], getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Range checks from each field's metadata, then the cross-field ones; the first failure
        raises :class:`SoftacError` naming the field."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and f.name != "env_kwargs":
                check_sizes(f.name, value)
            if value is None or isinstance(value, (bool, tuple)):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise SoftacError(f"{f.name} must be a finite number, got {value}")
            choices = f.metadata.get("choices", ())
            if choices and value not in choices:
                raise SoftacError(f"{f.name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
            if isinstance(value, int) and abs(value) > MAX_INT:
                raise SoftacError(f"{f.name} must be an integer below 2**62, got {value}")
            check, message = _CHECKS[f.metadata.get("check", "any")]
            if not isinstance(value, str) and not check(value):
                kind = "integer" if isinstance(value, int) else "number"
                raise SoftacError(message.format(name=f.name, kind=kind, value=value))
        if not self.env_id:
            raise SoftacError("env_id must be a non-empty environment id")

    def compiles(self, device_type: str) -> bool:
        """Whether the update runs compiled: ``compile_update`` when set; unset, on the CPU for runs
        that plan at least ``COMPILE_AUTO_UPDATES`` gradient updates. Why CPU only: there every
        compiled update is held to the eager one by the test suite on each CI run; on a GPU, CUDA
        graphs already remove most of the overhead compiling would, and compiled + graphed updates
        have run there only for SAC and TD3 so far. The choice depends on the config alone, so a
        resumed run makes it again the same way (exact resume), unless a budget change crosses the
        threshold."""
        if self.compile_update is not None:
            return self.compile_update
        return device_type == "cpu" and self.planned_updates() >= COMPILE_AUTO_UPDATES

    def planned_updates(self) -> int:
        """The gradient updates the whole run will make, from the config alone (each family says)."""
        return self.total_steps

    def replace(self, **changes: Any) -> Any:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SoftacError(f"unknown {type(self).__name__} field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["env_kwargs"] = kwargs_to_json(self.env_kwargs)
        return out

    @classmethod
    def added_later(cls) -> dict[str, Any]:
        """Fields newer than some files, with the value that means "as before the field existed"."""
        return {}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> Any:
        """A config from ``config.json``/``state.json``: every field required (a missing one is
        not silently replaced by today's default), no unknown field, types and ranges checked."""
        if not isinstance(data, dict):
            raise SoftacError(f"{where}: the config is not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        # A field added after a file was written may be absent from it only where its listed value
        # reproduces what the run did before the field existed (``ADDED_LATER``); any other missing
        # field is refused, never silently replaced by today's default.
        later = {k: v for k, v in cls.added_later().items() if k in names and k not in data}
        data = {**data, **later}
        missing = sorted(names - set(data))
        if unknown:
            raise SoftacError(f"{where}: unknown {cls.__name__} field(s): {', '.join(unknown)}")
        if missing:
            raise SoftacError(f"{where}: missing {cls.__name__} field(s): {', '.join(missing)}")
        try:
            return cls(**data)
        except SoftacError as exc:
            raise SoftacError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class OffPolicyConfig(BaseConfig):
    """Settings of the off-policy family: replay buffer, collection schedule. (Target networks are a
    part some algorithms have: ``tau`` lives with them, so CrossQ, which has none, has no --tau.)"""

    buffer_size: int = _f(1_000_000, "Replay buffer capacity in transitions.", "positive")
    batch_size: int = _f(256, "Minibatch size of each gradient step.", "positive")
    learning_starts: int = _f(
        5_000, "Environment steps of uniform random actions before updates begin.", "non-negative"
    )
    utd_ratio: float = _f(1.0, "Gradient steps per environment step (update-to-data ratio).", "positive")
    n_step: int = _f(
        1, "n-step returns: store R = Σ_{i<n} γ^i r_{t+i} and bootstrap with γ^n (1 = one-step TD).", "positive"
    )

    def planned_updates(self) -> int:
        """⌊(total_steps − learning_starts) · utd_ratio⌋, the schedule of ``OffPolicyAgent.updates_due``."""
        return max(0, int((self.total_steps - self.learning_starts) * self.utd_ratio))

    def updates_owed(self, steps: int, learning_starts: int) -> int:
        """Gradient updates owed after ``steps`` steps of every environment (``updates_due``'s rule)."""
        return max(0, int((steps * self.n_envs - learning_starts) * self.utd_ratio))

    def validate(self) -> None:
        super().validate()
        if self.batch_size > self.buffer_size:
            raise SoftacError(f"batch_size ({self.batch_size}) must not exceed buffer_size ({self.buffer_size})")
        if self.n_step > self.buffer_size:
            raise SoftacError(f"n_step ({self.n_step}) must not exceed buffer_size ({self.buffer_size})")
        check_first_rows(self)


@dataclass(frozen=True)
class PrioritizedReplayConfig(OffPolicyConfig):
    """Prioritized replay (Schaul et al. 2016, proportional; ``softac.data.per``, docs/replay.md), for the
    algorithms whose TD loss takes importance weights (SAC, TD3, DDPG, discrete SAC, DQN; not CrossQ)."""

    per: bool = _f(False, "Prioritized experience replay: sample rows by priority |δ|+ε, weight by importance.")
    per_alpha: float = _f(0.6, "PER priority exponent α in [0, 1]: P(i) ∝ p_i^α (0: uniform, 1: fully "
                          "prioritized; Schaul et al. 2016).", "probability")  # fmt: skip
    per_beta: float = _f(0.4, "PER importance exponent β₀ in [0, 1], annealed linearly to 1 over total_steps.",
                         "probability")  # fmt: skip
    per_eps: float = _f(1e-6, "PER ε in p = |δ| + ε (keeps every row drawable).", "positive")


@dataclass(frozen=True)
class SimbaActorConfig:
    """The network kind and the SimBa actor's shape, for every config whose actor can be a SimBa trunk
    (SAC, TD3, DDPG through ``ActorCriticConfig``; CrossQ): defined once, listed first in the bases."""

    network: str = _f("mlp", "Networks: 'mlp' (hidden_sizes) or 'simba' (Lee et al. 2024; docs/networks.md; "
                      "hidden_sizes unused, pair with --normalize-obs).", choices=("mlp", "simba"))  # fmt: skip
    simba_blocks_actor: int = _f(1, "SimBa residual blocks of the actor (paper: 1).", "positive")
    simba_width_actor: int = _f(128, "SimBa width of the actor (paper: 128; blocks expand to 4×).", "positive")

    def simba(self, part: str) -> tuple[int, int] | None:
        """(blocks, width) of the 'actor' (or, where the config has its fields, the 'critic') SimBa
        trunk, None for the MLP (``nn.make_trunk``)."""
        if self.network != "simba":
            return None
        return getattr(self, f"simba_blocks_{part}"), getattr(self, f"simba_width_{part}")


@dataclass(frozen=True)
class ActorCriticConfig(SimbaActorConfig, PrioritizedReplayConfig):
    """An actor and an ensemble of critics with Polyak-averaged targets (SAC, TD3, DDPG)."""

    tau: float = _f(0.005, "Polyak coefficient τ = 1 − ρ in (0, 1]: φ_targ ← (1 − τ) φ_targ + τ φ.", "fraction")
    actor_lr: float = _f(3e-4, "Adam learning rate of the actor.", "positive")
    critic_lr: float = _f(3e-4, "Adam learning rate of the critics.", "positive")
    n_critics: int = _f(2, "Number of Q functions in the critic ensemble (min over them in the target).", "positive")
    critic_layer_norm: bool = _f(
        False, "LayerNorm before each hidden ReLU of the critics (as in RLPD/CrossQ-style critics)."
    )
    simba_blocks_critic: int = _f(2, "SimBa residual blocks of each critic (paper: 2).", "positive")
    simba_width_critic: int = _f(512, "SimBa width of each critic (paper: 512).", "positive")

    # Distributional critics (docs/networks.md). Defaults: FastTD3 (Seo et al. 2025, fast_td3/hyperparams.py:
    # 101 atoms on [−250, 250]); SimbaV2 uses 101 on [−5, 5] after scaling rewards, which softac does not.
    critic_dist: str = _f("none", "Critic output: 'none' (a scalar Q) or logits over dist_bins atoms trained by "
                          "cross-entropy to a 'c51', 'hl_gauss' or 'two_hot' target (docs/networks.md).",
                          choices=("none", "c51", "hl_gauss", "two_hot"))  # fmt: skip
    dist_bins: int = _f(101, "Atoms of the distributional critic's support (FastTD3, SimbaV2: 101).", "positive")
    dist_v_min: float = _f(-250.0, "Lowest atom; [v_min, v_max] must hold the task's discounted returns "
                           "(FastTD3: -250).")  # fmt: skip
    dist_v_max: float = _f(250.0, "Highest atom (FastTD3: 250).")
    hl_gauss_sigma: float = _f(0.75, "HL-Gauss σ as a fraction of the bin width (Farebrother et al. 2024: 0.75).",
                               "positive")  # fmt: skip

    def validate(self) -> None:
        super().validate()
        if self.dist_bins < 2:  # the support's spacing (v_max − v_min)/(K − 1) needs two atoms
            raise SoftacError(f"dist_bins must be at least 2 (the atoms of the support), got {self.dist_bins}")
        if not self.dist_v_min < self.dist_v_max:
            raise SoftacError(f"dist_v_min ({self.dist_v_min}) must be below dist_v_max ({self.dist_v_max})")
        if self.per and self.critic_dist != "none":
            # PER's priority |δ| and importance weight are defined here on a scalar TD error; their
            # distributional forms (a per-row cross-entropy as priority) are not implemented yet.
            raise SoftacError(f"--per cannot be combined with --critic-dist {self.critic_dist} yet: choose one")


@dataclass(frozen=True)
class OnPolicyConfig(BaseConfig):
    """Settings of the on-policy family: rollouts, advantage estimation, the actor-critic networks.
    Defaults: Stable-Baselines3's PPO/ActorCriticPolicy (CleanRL's ppo*.py agree on all but lr
    annealing, which CleanRL switches on)."""

    hidden_sizes: tuple[int, ...] = _f((64, 64), "Hidden layer widths of the policy and of the value network.")
    activation: str = _f("tanh", "Activation of both networks.", choices=("tanh", "relu"))
    ortho_init: bool = _f(
        True, "Orthogonal initialisation (gains √2 hidden, 0.01 policy head, 1 value head); else nn.Linear's."
    )
    log_std_init: float = _f(0.0, "Initial value of the state-independent log σ of the Gaussian policy (Box).")
    n_steps: int = _f(2048, "Steps per environment in each rollout (a rollout is n_steps × n_envs per learner).",
                      "positive")  # fmt: skip
    gae_lambda: float = _f(0.95, "λ of generalised advantage estimation, in [0, 1].", "probability")
    normalize_reward: bool = _f(
        False,
        "Scale rewards by a running std of the discounted return, clipped to ±10 (SB3's VecNormalize); "
        "the episode returns logged and evaluated stay raw.",
    )
