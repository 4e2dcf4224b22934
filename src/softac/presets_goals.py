"""Presets of the goal-conditioned robotics tasks: rl-zoo3's ``hyperparams/her.yml`` (DLR-RM/rl-baselines3-zoo,
read at commit 22e3ff2, April 2026) mapped onto softac's SAC fields, with SB3's implicit defaults written out.

The zoo tuned the ``-v1`` Fetch tasks (mujoco-py); Gymnasium-Robotics' ``-v4`` are the same tasks on
the ``mujoco`` bindings, which softac runs (``softac.robotics``). Mapping, field by field:
- ``n_sampled_goal`` → ``her_k``; ``goal_selection_strategy`` → ``her_strategy``; ``online_sampling: True``
  (relabel when sampling) is what softac's HER always does;
- ``learning_rate`` → ``actor_lr``, ``critic_lr`` and ``alpha_lr`` (SB3 uses one rate for all three);
- ``policy_kwargs.net_arch`` → ``hidden_sizes``; ``n_critics`` → ``n_critics``; ``ent_coef: 'auto'``
  (SB3's default) → ``autotune_alpha`` with α₀ = 1;
- ``normalize: true`` (VecNormalize) → ``normalize_obs`` only: softac's off-policy family has no reward
  normalisation, and a relabelled reward comes from ``compute_reward``, which VecNormalize's reward
  scaling would not see.
What does not map is in each preset's note: TQC (``model_class: tqc``, truncated quantile critics,
Kuznetsov et al. 2020) becomes SAC with its twin-minimum critics; sb3-contrib's ``TimeFeatureWrapper``
(the remaining time as an observation feature) is not applied.
"""

from __future__ import annotations

from typing import Any

HER_ZOO = "https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/hyperparams/her.yml"
_HER: dict[str, Any] = dict(her=True, her_k=4, her_strategy="future", n_envs=1, buffer_size=1_000_000, gamma=0.95,
                            autotune_alpha=True, alpha_init=1.0, utd_ratio=1.0)  # fmt: skip
_TQC = ("rl-zoo3 tunes TQC here (truncated quantile critics, which softac does not have): SAC with the same "
        "networks, learning rate, τ, batch and HER settings; sb3-contrib's TimeFeatureWrapper is not applied. "
        "Tuned on the -v1 task (mujoco-py), applied to -v4 (the same task on the mujoco bindings).")


def _lr(rate: float) -> dict[str, float]:
    return dict(actor_lr=rate, critic_lr=rate, alpha_lr=rate)


# (algorithm, environment ids, note, fields): read by ``softac.presets``.
GOAL_PRESETS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("sac", "FetchReach-v4", "rl-zoo3's SAC + HER. normalize: true → normalize_obs (no reward normalisation: see "
     "softac.presets_goals). Tuned on FetchReach-v1, applied to -v4.",
     {**_HER, **_lr(1e-3), "total_steps": 20_000, "batch_size": 256, "learning_starts": 1000, "tau": 0.005,
      "hidden_sizes": (256, 256), "n_critics": 2, "normalize_obs": True}),
    ("sac", "FetchPush-v4", _TQC,
     {**_HER, **_lr(1e-3), "total_steps": 1_000_000, "batch_size": 2048, "learning_starts": 100, "tau": 0.05,
      "hidden_sizes": (512, 512, 512), "n_critics": 2}),
    ("sac", "FetchSlide-v4", _TQC,
     {**_HER, **_lr(1e-3), "total_steps": 2_500_000, "batch_size": 2048, "learning_starts": 100, "tau": 0.05,
      "hidden_sizes": (512, 512, 512), "n_critics": 2}),
    ("sac", "FetchPickAndPlace-v4", _TQC,
     {**_HER, **_lr(1e-3), "total_steps": 1_000_000, "batch_size": 1024, "learning_starts": 100, "tau": 0.05,
      "hidden_sizes": (512, 512, 512), "n_critics": 2}),
]  # fmt: skip
