"""The algorithm-specific halves of ``learning_compare.py``: the same settings written out for
softac and for Stable-Baselines3 (PPO and DQN; SAC/TD3/DDPG use ``softac.bench.make_sb3``)."""

from __future__ import annotations

import math
from typing import Any


def ppo_settings(env_id: str) -> dict[str, Any]:
    """PPO's settings, in softac's field names. CartPole-v1: softac's preset (rl-zoo3's). Any other
    task: SB3's PPO defaults with observation and reward normalisation (VecNormalize), rl-zoo3's
    default MuJoCo recipe (its Ant entry: ``normalize: true`` and nothing else)."""
    from softac.presets import get_preset

    preset = get_preset("ppo", env_id)
    if env_id == "CartPole-v1" and preset is not None:
        return {k: v for k, v in preset.params.items() if k != "total_steps"}
    return dict(n_envs=1, n_steps=2048, minibatch_size=64, n_epochs=10, lr=3e-4, anneal_lr=False, gamma=0.99,
                gae_lambda=0.95, clip_range=0.2, anneal_clip_range=False, clip_vloss=False, ent_coef=0.0,
                vf_coef=0.5, max_grad_norm=0.5, normalize_advantage=True, hidden_sizes=(64, 64), activation="tanh",
                ortho_init=True, log_std_init=0.0, normalize_obs=True, normalize_reward=True)  # fmt: skip


def make_sb3_ppo(env_id: str, seed: int) -> tuple[Any, Any]:
    """SB3's PPO with ``ppo_settings`` translated, and its VecNormalize (or None)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    s = ppo_settings(env_id)
    venv: Any = make_vec_env(env_id, n_envs=s["n_envs"], seed=seed)
    norm = None
    if s["normalize_obs"] or s["normalize_reward"]:
        venv = norm = VecNormalize(venv, norm_obs=s["normalize_obs"], norm_reward=s["normalize_reward"],
                                   gamma=s["gamma"])  # fmt: skip
    lr, clip = s["lr"], s["clip_range"]
    model = PPO(
        "MlpPolicy", venv, n_steps=s["n_steps"], batch_size=s["minibatch_size"], n_epochs=s["n_epochs"],
        learning_rate=(lambda p: lr * p) if s["anneal_lr"] else lr,
        clip_range=(lambda p: clip * p) if s["anneal_clip_range"] else clip,
        gamma=s["gamma"], gae_lambda=s["gae_lambda"], ent_coef=s["ent_coef"], vf_coef=s["vf_coef"],
        max_grad_norm=s["max_grad_norm"], normalize_advantage=s["normalize_advantage"], seed=seed, device="cpu",
        policy_kwargs=dict(net_arch=dict(pi=list(s["hidden_sizes"]), vf=list(s["hidden_sizes"])),
                           activation_fn=torch.nn.Tanh if s["activation"] == "tanh" else torch.nn.ReLU,
                           ortho_init=s["ortho_init"], log_std_init=s["log_std_init"]),
        verbose=0,
    )  # fmt: skip
    return model, norm


def dqn_settings(env_id: str, loss: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """softac's DQN preset for ``env_id`` (its TD loss replaced by ``loss`` if given), as (softac
    fields, the same values as SB3 ``DQN`` arguments). softac's ``utd_ratio`` u is SB3's
    ``train_freq`` 1/u with ``gradient_steps`` 1; both count ``target_update_interval`` in env
    steps; softac's ``max_grad_norm`` 0 (no clipping) is SB3's inf. The loss is not an SB3
    argument: see ``run_sb3``."""
    from softac.presets import get_preset

    preset = get_preset("dqn", env_id)
    if preset is None:
        raise SystemExit(f"softac has no DQN preset for {env_id}")
    p = {**preset.params, "loss": loss or preset.params["loss"]}
    if p["double_q"] or p["n_envs"] != 1 or not (1 / p["utd_ratio"]).is_integer():
        raise SystemExit(f"the {env_id} preset has settings SB3's DQN cannot mirror")
    sb3 = dict(
        learning_rate=p["lr"], buffer_size=p["buffer_size"], learning_starts=p["learning_starts"],
        batch_size=p["batch_size"], tau=p["tau"], gamma=p["gamma"], train_freq=round(1 / p["utd_ratio"]),
        gradient_steps=1, target_update_interval=p["target_update_interval"],
        exploration_fraction=p["exploration_fraction"], exploration_initial_eps=p["exploration_initial_eps"],
        exploration_final_eps=p["exploration_final_eps"], max_grad_norm=p["max_grad_norm"] or math.inf,
        policy_kwargs={"net_arch": list(p["hidden_sizes"])},
    )  # fmt: skip
    return p, sb3
