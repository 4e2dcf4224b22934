"""What a run will do, said before it starts: whether it makes any gradient update at all.

An off-policy run whose budget ends before ``learning_starts`` only collects uniformly random
actions: it exits 0 with a learning curve at the random policy's level, which looks like a run that
trained and learned nothing. The presets make this easy to hit (TD3's and DDPG's Pendulum-v1
presets start learning at step 10,000, so any try under 10k steps makes no update). ``softac train``
refuses such a run unless both numbers were given on its command line, and warns then; the Python
API warns (a script that sets the numbers in code means them, e.g. to collect random-action data).
An on-policy run always updates after its first rollout, which the budget never cuts short.
"""

from __future__ import annotations

from typing import Any

from softac.config import OffPolicyConfig


def final_step(cfg: Any) -> int:
    """The step count the run ends at: the loop takes steps of ``n_envs`` transitions until it
    reaches ``total_steps`` (``softac.train.shell``)."""
    n = int(cfg.n_envs)
    return -(-int(cfg.total_steps) // n) * n


def updates_at_end(cfg: Any) -> int | None:
    """The gradient updates an off-policy run has made when it ends (the schedule of
    ``OffPolicyAgent.updates_due``); None for a config without a warm-up (on-policy)."""
    if not isinstance(cfg, OffPolicyConfig):
        return None
    return max(0, int((final_step(cfg) - cfg.learning_starts) * cfg.utd_ratio))


def no_update_reason(cfg: Any) -> str | None:
    """Why the run would end without one gradient update; None when it makes one."""
    updates = updates_at_end(cfg)
    if updates is None or updates > 0:
        return None
    if cfg.total_steps <= cfg.learning_starts:
        return f"total_steps {cfg.total_steps} ends before learning starts at step {cfg.learning_starts}"
    return (f"with utd_ratio {cfg.utd_ratio}, the {final_step(cfg) - cfg.learning_starts} steps after "
            f"learning_starts {cfg.learning_starts} owe no update")  # fmt: skip


def no_update_warning(cfg: Any) -> str | None:
    """The warning line of a run that will make no update (the Python API, or both numbers given)."""
    reason = no_update_reason(cfg)
    if reason is None:
        return None
    return f"softac: warning: this run makes no gradient update ({reason}); it only collects random actions"
