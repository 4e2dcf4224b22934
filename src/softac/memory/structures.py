"""One function per structure whose size a user controls: the bytes its constructor allocates,
from the config's sizes and the environment's spaces (float32 = 4 bytes, int64/float64 = 8). A new
storage layout (image observations, frame stacks) adds its function here and one line in the agent
that holds it (``Agent.memory_estimate``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

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
# growth over 2,000 instances). A MuJoCo environment's model and data buffers are added to it from
# the environment itself (``softac.envs.simulator_bytes``: ≈1.1 MB each).
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


def environments(learners: int, n_envs: int, obs_dim: int, act_dim: int, sim_bytes: int = 0) -> int:
    """The L·E training environments (``ENV_BYTES`` each, plus their simulator's buffers
    ``sim_bytes``: ``softac.envs.simulator_bytes``) and each step's arrays of them: the observation,
    action, next observation, reward and flags the collector keeps per environment."""
    envs = learners * n_envs
    return envs * (ENV_BYTES + sim_bytes + (3 * obs_dim + 2 * act_dim + 8) * FLOAT)


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


# -- images (softac.pixels) ----------------------------------------------------------------------
def frame_buffer(learners: int, capacity: int, pixels: Any, envs: int) -> int:
    """``FrameBuffer``: the uint8 frame ring and each transition's K + 1 int64 frame numbers."""
    from softac.data.frames import frame_buffer_bytes

    return frame_buffer_bytes(learners, capacity, pixels.chw, pixels.stack, envs)


def pixel_parts(learners: int, rows: int, pixels: Any, cfg: Any) -> dict[str, int]:
    """An image run's own structures: the frame ring for ``rows`` transitions, the convolutional
    encoder (weights, gradients and Adam's moments; no target copy) with one minibatch's feature
    maps, and the minibatch itself: the gathered uint8 stacks of s and s', their shifted copies,
    and the two float32 rows [vector | K frames] the networks read."""
    from softac.nn.encoders import FILTERS, conv_sides

    c, h, w = pixels.chw
    k, batch, feats = pixels.stack, int(cfg.batch_size), int(cfg.image_features)
    frame = c * h * w
    maps = [a * b for a, b in zip(conv_sides(h), conv_sides(w), strict=True)]
    convs = (k * c * 9 * FILTERS + FILTERS) + 3 * (FILTERS * FILTERS * 9 + FILTERS)
    params = convs + FILTERS * maps[-1] * feats + 3 * feats  # + the linear layer, its bias and LayerNorm's
    units = k * frame + FILTERS * sum(maps) + feats
    encoder = learners * (4 * params + ACTIVATION_COPIES * batch * units) * FLOAT
    width = pixels.dim + k * frame
    minibatch = learners * batch * ((k + 1) * frame + 2 * k * frame + 2 * width * FLOAT)
    return {"frame buffer": frame_buffer(learners, rows, pixels, cfg.n_envs), "image encoder": encoder,
            "image minibatch": minibatch}  # fmt: skip
