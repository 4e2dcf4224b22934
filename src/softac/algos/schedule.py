"""When a periodic target-network update falls, from the counters alone.

DQN and discrete SAC update their target networks every ``target_update_interval`` *environment*
steps (Stable-Baselines3's ``DQN._on_step`` and CleanRL's ``dqn.py`` count env steps, not gradient
steps; τ = 1 makes it a hard copy). softac's update runs inside a larger step (compiled, or in a
CUDA graph), so whether update number ``i`` is followed by a target update must be a host decision
known in advance — its *phase* (``OffPolicyAgent.update_phase``) — and a function of the counters
only, so a resumed run and a graph of several updates decide alike.

Update ``i`` (from 0) is done at the environment step count ``e_i`` where the schedule of
``OffPolicyAgent.updates_due`` first owes it: the smallest multiple e of n_envs with
⌊(e − learning_starts) · utd⌋ ≥ i + 1. The target is updated after update ``i`` when a multiple of
the interval lies in (e_{i−1}, e_i]: right after the gradient step of the env step that reaches
it (CleanRL's order: its target update follows the gradient step of the same env step; SB3's
precedes it), or after the next gradient step when no update falls on that env step. Boundaries
before the first update are skipped: the target still equals the network then.
"""

from __future__ import annotations

import math


def _owed(env_steps: int, learning_starts: int, utd: float) -> int:
    """``OffPolicyAgent.updates_due``'s count, with its exact float arithmetic."""
    return int((env_steps - learning_starts) * utd)


def env_step_of_update(index: int, learning_starts: int, utd: float, n_envs: int) -> int:
    """The environment step count e_i at which update ``index`` is done (see the module docstring)."""
    need = index + 1
    e = n_envs * math.ceil((learning_starts + need / utd) / n_envs)
    # The closed form can be one vector step off through float rounding: settle it on the exact rule.
    while e - n_envs >= 0 and _owed(e - n_envs, learning_starts, utd) >= need:
        e -= n_envs
    while _owed(e, learning_starts, utd) < need:
        e += n_envs
    return e


def target_update_due(index: int, interval: int, learning_starts: int, utd: float, n_envs: int) -> bool:
    """Whether the target update follows update ``index``: a multiple of ``interval`` env steps was
    reached since the env step of the previous update (for the first update: the step before it)."""
    e = env_step_of_update(index, learning_starts, utd, n_envs)
    before = env_step_of_update(index - 1, learning_starts, utd, n_envs) if index > 0 else e - n_envs
    return e // interval > before // interval
