"""Memory that cannot exist is refused before anything is allocated.

Why: ``--dist-bins 10000000`` grew to 24 GB until the kernel killed the process without a word,
``--n-step 1000000000`` allocated an 11 GiB window, and ``--buffer-size 1e12`` failed only after
a long pause. Every structure whose size a user controls is known from the config and the
environment's spaces before any is made, so an agent lists them (``Agent.memory_estimate``) from
the functions below — **one function per structure**: a new storage layout (image observations,
frame stacks) adds its own function and one line in the agent that holds it. The estimate is
compared with the memory the machine (or the GPU) has free, and a refusal names the config field
to lower and the largest value of it that fits (``check_fits``).

Bytes are those each structure's constructor allocates (float32 = 4 bytes, int64/float64 = 8).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import resource
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from softac.errors import SoftacError

FLOAT = 4  # bytes of a float32
WIDE = 8  # bytes of an int64 / float64
# Each parameter is held as weights, gradients, Adam's two moments and (where the algorithm has
# one) a target copy: at most 5 times.
PARAM_COPIES = 5
# Activations of one minibatch per hidden unit: the forward output, what autograd saves for the
# backward pass, its gradient, and the second pass the actor's loss makes through the critics.
ACTIVATION_COPIES = 4
# Tensors of shape (learners, members, batch, bins) a distributional critic's update holds at once:
# the online and target logits, their softmax and log-softmax, the gradient of the logits, the
# target histogram, HL-Gauss's bin-edge CDF, and the member gather of C51 (losses.distributional).
DIST_COPIES = 8
# One environment instance, the least measured (Pendulum-v1 and CartPole-v1: 3–5 KB each, RSS
# growth over 2,000 instances). MuJoCo environments take ≈1.1 MB each; this bound does not see it.
ENV_BYTES = 4096


# -- one function per structure ------------------------------------------------------------------
def replay_buffer(learners: int, rows: int, obs_dim: int, act_dim: int, discount_column: bool) -> int:
    """``ReplayBuffer.storage``: (L, rows, 2·obs + act + 2 [+ γ^m]) float32."""
    return learners * rows * (2 * obs_dim + act_dim + 2 + int(discount_column)) * FLOAT


def priority_tree(learners: int, capacity: int) -> int:
    """``SumTree.nodes``: (L, 2P) float64, P the power of two ≥ capacity; zeroed up front, so every
    page is touched at once."""
    return learners * 2 * (1 << max(1, (capacity - 1).bit_length())) * WIDE


def nstep_window(learners: int, n_envs: int, n: int, obs_dim: int, act_dim: int) -> int:
    """``NStepAccumulator``: per learner and environment the last n steps' observation, action and
    reward (float32), the newest s', a count, and γ^0 … γ^n (float64); zeroed up front."""
    per_env = n * (obs_dim + act_dim + 1) * FLOAT + obs_dim * FLOAT + WIDE
    return learners * n_envs * per_env + (n + 1) * WIDE


def rollout(learners: int, n_steps: int, n_envs: int, obs_dim: int, act_dim: int) -> int:
    """``Rollout``: observations, actions and 8 scalar columns of (L, T, E), and the samples' rows
    [s | a | log π | V | Â | R] gathered for the minibatches; zeroed up front."""
    lead = learners * n_steps * n_envs
    return lead * (obs_dim + act_dim + 8) * FLOAT + lead * (obs_dim + act_dim + 4) * FLOAT


def environments(learners: int, n_envs: int, obs_dim: int, act_dim: int) -> int:
    """The L·E training environments (``ENV_BYTES`` each) and each step's arrays of them: the
    observation, action, next observation, reward and flags the collector keeps per environment."""
    envs = learners * n_envs
    return envs * (ENV_BYTES + (3 * obs_dim + 2 * act_dim + 8) * FLOAT)


def mlp_params(sizes: Sequence[int]) -> int:
    """Weights and biases of Linear layers ``sizes[0] → … → sizes[-1]``."""
    return sum(i * o + o for i, o in itertools.pairwise(sizes))


def simba_params(in_dim: int, blocks: int, width: int, out_dim: int) -> int:
    """``BatchedSimba``: input projection, per block a w → 4w → w MLP, the output layer, and a
    LayerNorm (gain, bias) per block plus the final one."""
    return (in_dim * width + width + blocks * (8 * width * width + 5 * width) + width * out_dim + out_dim
            + 2 * width * (blocks + 1))  # fmt: skip


def trunk_params(in_dim: int, hidden: Sequence[int], out_dim: int, simba: tuple[int, int] | None = None) -> int:
    """One member of ``nn.make_trunk``: an MLP of ``hidden`` (with a normalisation layer's gain and
    bias per hidden layer, an upper bound for LayerNorm and batch (re)normalisation) or, with
    ``simba=(blocks, width)``, a SimBa trunk."""
    if simba is not None:
        return simba_params(in_dim, simba[0], simba[1], out_dim)
    return mlp_params([in_dim, *hidden, out_dim]) + 2 * (in_dim + sum(hidden))


def trunk_units(hidden: Sequence[int], out_dim: int, simba: tuple[int, int] | None = None) -> int:
    """Activations one input row leaves in a trunk (per member): every hidden unit and the output
    (SimBa: the projection, and per block its LayerNorm, 4w expansion and residual)."""
    if simba is not None:
        blocks, width = simba
        return width + blocks * 6 * width + width + out_dim
    return sum(hidden) + out_dim


def network(groups: int, params: int, batch: int, units: int, copies: int = PARAM_COPIES) -> int:
    """A trunk of ``groups`` (learners × members) members of ``params`` parameters each, held
    ``copies`` times, and one minibatch of ``batch`` rows through it (``units`` per row)."""
    return groups * (copies * params + ACTIVATION_COPIES * batch * units) * FLOAT


def trunk(groups: int, in_dim: int, hidden: Sequence[int], out_dim: int, batch: int,
          simba: tuple[int, int] | None = None, copies: int = PARAM_COPIES) -> int:  # fmt: skip
    """``groups`` members of one ``nn.make_trunk`` network (``trunk_params``) and a minibatch of
    ``batch`` rows through it."""
    return network(groups, trunk_params(in_dim, hidden, out_dim, simba), batch, trunk_units(hidden, out_dim, simba),
                   copies)  # fmt: skip


def distributional_head(learners: int, members: int, batch: int, bins: int) -> int:
    """A distributional critic's support (``losses.distributional.support``) and the minibatch's
    tensors over it (``DIST_COPIES`` of (L, members, batch, bins)). Its output layer's weights
    (hidden × bins) are the trunk's: ``trunk_params`` with ``out_dim = bins``."""
    return bins * FLOAT + DIST_COPIES * learners * members * batch * bins * FLOAT


def generic_networks(cfg: Any, spec: Any, learners: int) -> int:
    """A bound for an algorithm that lists no networks of its own: an actor and ``n_critics``
    critics of ``hidden_sizes``."""
    hidden, batch = cfg.hidden_sizes, int(getattr(cfg, "batch_size", 1))
    critics = learners * int(getattr(cfg, "n_critics", 1))
    return trunk(learners, spec.obs_dim, hidden, 2 * spec.act_dim, batch) + trunk(
        critics, spec.obs_dim + spec.act_dim, hidden, 1, batch)


# -- the machine ---------------------------------------------------------------------------------
def _meminfo(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2 memory limit (containers, CI), if there is one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def _address_space() -> tuple[int, int] | None:
    """(room left, limit) under this process's address-space limit (``ulimit -v``), if it has one:
    an allocation beyond it fails however much memory the machine has free."""
    try:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        used = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None
    return None if limit == resource.RLIM_INFINITY else (max(0, limit - used), limit)


def available(device: torch.device) -> tuple[int, int] | None:
    """(free, total) bytes for new allocations on ``device``, or None where it cannot be told."""
    if device.type == "cuda":
        gpu_free, gpu_total = torch.cuda.mem_get_info(device)
        return int(gpu_free), int(gpu_total)
    free, total = _meminfo("MemAvailable"), _meminfo("MemTotal")
    if free is None or total is None:
        return None
    cgroup, space = _cgroup_room(), _address_space()
    if cgroup is not None:
        free = min(free, cgroup)
    if space is not None:
        free, total = min(free, space[0]), min(total, space[1])
    return free, total


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB"):
        if n < 1000 or unit == "ZB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError("unreachable")


def fits(parts: dict[str, int], reserved: dict[str, int], room: tuple[int, int]) -> bool:
    """Whether ``parts`` (name → bytes the run will touch) fit the free memory ``room[0]`` and each
    of ``reserved`` (name → one allocation reserved whole, touched as it fills: the replay buffer)
    fits all of the device's memory ``room[1]``."""
    return sum(parts.values()) <= room[0] and all(size <= room[1] for size in reserved.values())


# -- the refusal ---------------------------------------------------------------------------------
# Config fields that size a structure (ties in a refusal go to the earlier).
SIZE_FIELDS = (
    "dist_bins", "n_step", "buffer_size", "n_envs", "n_steps", "critic_hidden_sizes", "hidden_sizes",
    "simba_width_critic", "simba_width_actor", "simba_blocks_critic", "simba_blocks_actor", "batch_size",
    "minibatch_size", "n_critics",
)  # fmt: skip
# config → (bytes by part the run touches, single allocations reserved whole): ``fits``' arguments.
Estimate = Callable[[Any], tuple[dict[str, int], dict[str, int]]]


def _set(cfg: Any, name: str, value: int, check: bool = True) -> Any:
    """``cfg`` with field ``name`` at ``value`` (a tuple of widths: each capped at it); with
    ``check``, None where the config refuses that value (``batch_size`` above ``buffer_size``,
    ``minibatch_size`` not dividing the rollout). Unchecked, only for the estimate to read."""
    old = getattr(cfg, name)
    new = tuple(min(h, value) for h in old) if isinstance(old, tuple) else value
    if not check:
        out = copy.copy(cfg)
        object.__setattr__(out, name, new)
        return out
    try:
        return cfg.replace(**{name: new})
    except SoftacError:
        return None


def _size(value: Any) -> int:
    return max(value) if isinstance(value, tuple) else int(value)


def _largest_fitting(cfg: Any, name: str, estimate: Estimate, room: tuple[int, int]) -> int | None:
    """The largest value of ``name`` below today's with which the run fits (the other fields as
    given) and that the config accepts, None if there is none. Memory grows with each size, so
    the largest fitting value is a bisection; the config's own rules (``dist_bins`` ≥ 2,
    ``minibatch_size`` dividing the rollout) are then met by stepping down from it."""
    lo, hi = 0, _size(getattr(cfg, name))  # lo fits (or is 0), hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(*estimate(_set(cfg, name, mid, check=False)), room) else (lo, mid)
    for value in range(lo, max(0, lo - 4096), -1):
        if _set(cfg, name, value) is not None:
            return value
    return None


def _shown(name: str, value: Any) -> str:
    return f"{name}={' '.join(map(str, value)) if isinstance(value, tuple) else value}"


def check_fits(cfg: Any, estimate: Estimate, room: tuple[int, int] | None, where: str = "this machine") -> None:
    """Refuse, in one line, a config whose structures (``estimate``) do not fit ``room`` = (free,
    total) bytes: what needs the most, the field to lower and the largest value of it that fits.
    The field named is, of those whose lowering alone makes the run fit, the one furthest above its
    default (the value the user most likely mistyped: ``dist_bins`` 10,000,000 against 101, not a
    ``batch_size`` of 256 that would also fit at 2)."""
    if room is None:
        return
    parts, reserved = estimate(cfg)
    if fits(parts, reserved, room):
        return
    too_big = [name for name, size in reserved.items() if size > room[1]]
    if too_big:
        head = (f"the {too_big[0]} would need {human(reserved[too_big[0]])}, more than all of {where}'s memory "
                f"({human(room[0])} available of {human(room[1])})")  # fmt: skip
    else:
        need = sum(parts.values())
        top = sorted(((b, n) for n, b in parts.items() if b >= need / 20), reverse=True)[:3]
        head = (f"{' and '.join(f'the {n} ({human(b)})' for b, n in top)} would need about {human(need)}, more "
                f"than {where} has ({human(room[0])} available of {human(room[1])})")  # fmt: skip
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    ranked = []  # (how far above its default, name)
    for name in (n for n in SIZE_FIELDS if n in fields):
        default = fields[name].default
        ranked.append((_size(getattr(cfg, name)) / max(1, _size(default)), -SIZE_FIELDS.index(name), name))
    for _, _, name in sorted(ranked, reverse=True):
        value = _largest_fitting(cfg, name, estimate, room)
        if value is not None:
            now, fit = getattr(cfg, name), getattr(_set(cfg, name, value), name)
            raise SoftacError(f"{head}: lower {name} (now {_shown(name, now)}); {_shown(name, fit)} fits")
    names = " and ".join(n for _, _, n in sorted(ranked, reverse=True)[:2]) or "the sizes"
    raise SoftacError(f"{head}: no single size lowered alone makes it fit; lower {names}, or use a machine with "
                      "more memory")


def check_growth(before: Any, cfg: Any, estimate: Estimate, room: tuple[int, int] | None, where: str) -> None:
    """A run extended past the budget it was checked with (``learn(total_steps)``, ``--resume
    --total-steps``) touches more of what it reserved (the replay buffer's rows): what it adds
    must fit the memory free now. Refused naming the largest ``total_steps`` that fits."""
    if room is None:
        return
    held = sum(estimate(before)[0].values())

    def growth(c: Any) -> int:
        return sum(estimate(c)[0].values()) - held

    if growth(cfg) <= room[0]:
        return
    lo, hi = before.total_steps, cfg.total_steps  # lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if growth(_set(cfg, "total_steps", mid, check=False)) <= room[0] else (lo, mid)
    raise SoftacError(f"total_steps={cfg.total_steps} would fill {human(growth(cfg))} more of the replay buffer than "
                      f"the run holds now, more than {where} has ({human(room[0])} available of {human(room[1])}): "
                      f"total_steps={lo} fits")  # fmt: skip
