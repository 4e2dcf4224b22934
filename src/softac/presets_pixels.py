"""DrQ-v2's settings for DeepMind Control from pixels (Yarats et al. 2021, "Mastering Visual
Continuous Control: Improved Data-Augmented Reinforcement Learning"; facebookresearch/drqv2,
``cfgs/config.yaml`` and ``cfgs/task/*.yaml``), mapped onto softac's DDPG: DrQ-v2 is DDPG with a
deterministic actor, twin critics, n-step returns and a scheduled exploration noise.

What maps: 84×84 frames (``pixels``; camera 0, 2 for quadruped: ``softac.env_options``), 3 stacked
(``frame_stack``), action repeat 2, random shift (pad 4), the 50-wide encoder with its LayerNorm
and tanh head, twin critics, 1,024-wide MLPs, Adam at 1e-4, batch 256, γ 0.99, τ 0.01, a 1M-frame
replay, one update every 2 agent steps (``update_every_steps: 2`` → ``utd_ratio`` 0.5), and 4,000
seed frames of uniform actions (2,000 agent steps at action repeat 2 → ``learning_starts``).

What does not: DrQ-v2's 3-step returns (softac's frame ring holds one-step transitions, so
``n_step`` stays 1 with images); its exploration σ annealed linearly from 1.0 to 0.1 over 100k
agent steps on the easy tasks (softac's DDPG keeps a constant σ: 0.2 here, the schedule's value at
89k); its target-policy smoothing with that σ clipped at 0.3 (a constant 0.2 clipped at 0.3 here).
Two differences in the update remain: DrQ-v2's target action comes from the online actor and its
actor loss takes the twin critics' minimum, where softac's DDPG uses a Polyak-averaged actor target
and the first critic (the twin minimum is in the critics' target in both). Budgets: DrQ-v2 counts
frames (agent steps × action repeat); ``total_steps`` counts agent steps, so its 1M frames of the
easy tasks are 500,000 here.
"""

from __future__ import annotations

from typing import Any

DRQV2 = "https://github.com/facebookresearch/drqv2/blob/main/cfgs/config.yaml"
_DRQV2: dict[str, Any] = dict(
    pixels=84, frame_stack=3, action_repeat=2, augment="shift", image_features=50, hidden_sizes=(1024, 1024),
    n_critics=2, actor_lr=1e-4, critic_lr=1e-4, batch_size=256, gamma=0.99, tau=0.01, buffer_size=1_000_000,
    utd_ratio=0.5, learning_starts=2000, n_envs=1, policy_delay=1, exploration_noise=0.2, target_noise=0.2,
    target_noise_clip=0.3,
)  # fmt: skip
_NOTE = ("DrQ-v2 (DDPG from pixels): 3-step returns and the annealed exploration σ (1.0 → 0.1) do not map (n_step 1 "
         "with images; a constant σ 0.2, target smoothing 0.2 clipped at 0.3). total_steps counts agent steps: "
         "{frames} frames at action repeat 2.")  # fmt: skip
# DrQ-v2's task groups (its paper, Table 3): easy tasks train for 1M frames, medium 3M, hard 30M.
_EASY = ("cartpole-balance cartpole-swingup cheetah-run finger-spin walker-stand walker-walk reacher-easy "
         "cup-catch hopper-stand")  # fmt: skip
_MEDIUM = "acrobot-swingup hopper-hop quadruped-run quadruped-walk reacher-hard walker-run finger-turn_hard"
PIXEL_PRESETS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("ddpg", " ".join(f"dm_control/{t}-v0" for t in _EASY.split()), _NOTE.format(frames="1M"),
     {**_DRQV2, "total_steps": 500_000}),
    ("ddpg", " ".join(f"dm_control/{t}-v0" for t in _MEDIUM.split()), _NOTE.format(frames="3M"),
     {**_DRQV2, "total_steps": 1_500_000}),
]  # fmt: skip
