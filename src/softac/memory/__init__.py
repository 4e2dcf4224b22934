"""Memory that cannot exist is refused before anything is allocated.

Why: ``--dist-bins 10000000`` grew to 24 GB until the kernel killed the process without a word,
``--n-step 1000000000`` allocated an 11 GiB window, and ``--buffer-size 1e12`` failed only after
a long pause. Every structure whose size a user controls is known from the config and the
environment's spaces before any is made, so an agent lists them (``Agent.memory_estimate``) from
``softac.memory.structures``, **one function per structure**: a new storage layout (image
observations, frame stacks) adds its own function there and one line in the agent that holds it.
The estimate is compared with the memory the machine (or the GPU) has free, and a refusal names
the config field to lower and the largest value of it that fits (``softac.memory.fit``).

Bytes are those each structure's constructor allocates (float32 = 4 bytes, int64/float64 = 8).
"""

from softac.memory.fit import Estimate, available, check_fits, check_growth, fits, human, place
from softac.memory.structures import (
    ACTIVATION_COPIES,
    DIST_COPIES,
    ENV_BYTES,
    FLOAT,
    PARAM_COPIES,
    WIDE,
    distributional_head,
    environments,
    frame_buffer,
    generic_networks,
    mlp_params,
    network,
    nstep_window,
    pixel_parts,
    priority_tree,
    replay_buffer,
    rollout,
    simba_params,
    trunk,
    trunk_params,
    trunk_units,
)

__all__ = [
    "ACTIVATION_COPIES", "DIST_COPIES", "ENV_BYTES", "FLOAT", "PARAM_COPIES", "WIDE", "Estimate", "available",
    "check_fits", "check_growth", "distributional_head", "environments", "fits", "frame_buffer", "generic_networks",
    "human", "mlp_params", "network", "nstep_window", "pixel_parts", "place", "priority_tree", "replay_buffer",
    "rollout", "simba_params", "trunk", "trunk_params", "trunk_units",
]  # fmt: skip
