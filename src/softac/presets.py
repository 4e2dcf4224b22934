"""Per-(algorithm, environment) hyper-parameters, each with its source.

Values are rl-zoo3's published hyper-parameters (``hyperparams/{sac,td3,ddpg,dqn,ppo}.yml``,
DLR-RM/rl-baselines3-zoo, read at commit 22e3ff2, April 2026) with every Stable-Baselines3
default that the zoo leaves implicit written out, so that a preset does not depend on softac's own
defaults. The zoo tunes MuJoCo v4 (PPO's Reacher and InvertedPendulum: v2); the presets apply
those to v5, whose dynamics are the same models with bug fixes (Gymnasium's v5 notes), and say so.
Budgets are the zoo's ``n_timesteps``, as ``total_steps``. Where a zoo setting has no softac
counterpart the preset says what was changed in ``note``. Two CartPole presets are not the zoo's,
and their notes say why: DQN (CleanRL's) and discrete SAC (no library publishes one).

CartPole-v1 must learn with nothing but its preset, so the dqn, ppo and sac-discrete presets there
were checked: "checked with softac's losses in a plain loop" means a minimal training loop written
for the check (not part of softac) that calls ``softac.losses`` and ``softac.distributions`` with
the preset's values and SB3's semantics, and evaluates the greedy policy.

Field names (checked against ``ALLOWED_FIELDS`` in the tests; the core validates them against its
config classes):
- all off-policy: total_steps, n_envs, buffer_size, batch_size, gamma, tau, learning_starts,
  hidden_sizes, n_critics.
- sac, td3, ddpg: + utd_ratio, actor_lr, critic_lr; sac: + autotune_alpha, alpha, alpha_init,
  alpha_lr, target_entropy, and for the goal tasks (``softac.presets_goals``) her, her_k, her_strategy,
  normalize_obs; td3/ddpg: + policy_delay, target_noise, target_noise_clip,
  exploration_noise. SB3's ``train_freq``/``gradient_steps`` become ``utd_ratio`` = their ratio.
- dqn: + utd_ratio, lr, target_update_interval, exploration_fraction, exploration_initial_eps,
  exploration_final_eps, max_grad_norm, double_q, loss ("huber"|"mse"). SB3's ``train_freq`` /
  ``gradient_steps`` (a burst of gradient_steps every train_freq env steps) become ``utd_ratio`` =
  gradient_steps / train_freq (the same number of updates, spread evenly); ``target_update_interval``
  counts ENV steps (SB3's ``_on_step``), τ = 1 is a hard copy; ``max_grad_norm`` = 0 clips nothing;
  ``burst_every`` = train_freq keeps SB3's burst instead of spreading it.
- sac-discrete: + utd_ratio, actor_lr, critic_lr, target_update_interval (env steps between Polyak
  updates with τ; 1 = after every step, as softac's SAC), autotune_alpha, alpha, alpha_init,
  alpha_lr, target_entropy_scale (H̄ = scale · log|A|).
- ppo: total_steps, n_envs, gamma, hidden_sizes, activation ("tanh"|"relu"), ortho_init, lr,
  anneal_lr, n_steps (per env), n_epochs, minibatch_size (SB3's ``batch_size``), gae_lambda,
  clip_range, anneal_clip_range, clip_vloss, ent_coef, vf_coef (for an un-halved MSE, as SB3),
  max_grad_norm, normalize_advantage, normalize_obs, normalize_reward, log_std_init.
  The zoo's ``lin_X`` becomes X with anneal_lr / anneal_clip_range; its ``normalize: true`` is
  VecNormalize on observations AND rewards (normalize_obs, normalize_reward).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from softac.presets_goals import GOAL_PRESETS, HER_ZOO
from softac.presets_pixels import DRQV2, PIXEL_PRESETS

__all__ = ["ALLOWED_FIELDS", "Preset", "get_preset", "list_presets"]

_OFF = {"total_steps", "n_envs", "buffer_size", "batch_size", "gamma", "tau", "learning_starts", "hidden_sizes",
        "n_critics"}  # fmt: skip
_ACTOR_CRITIC = _OFF | {"utd_ratio", "actor_lr", "critic_lr"}
_TD3 = {"policy_delay", "target_noise", "target_noise_clip", "exploration_noise"}
_PIXELS = {"pixels", "frame_stack", "action_repeat", "augment", "image_features"}  # softac.presets_pixels
ALLOWED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "sac": frozenset(_ACTOR_CRITIC | {"autotune_alpha", "alpha", "alpha_init", "alpha_lr", "target_entropy", "her",
                                      "her_k", "her_strategy", "normalize_obs"}),
    "td3": frozenset(_ACTOR_CRITIC | _TD3),
    "ddpg": frozenset(_ACTOR_CRITIC | _TD3 | _PIXELS),
    "dqn": frozenset(_OFF - {"n_critics"} | {
        "utd_ratio", "lr", "target_update_interval", "exploration_fraction", "exploration_initial_eps",
        "exploration_final_eps", "max_grad_norm", "double_q", "loss", "burst_every"}),
    "sac-discrete": frozenset(_OFF | {
        "utd_ratio", "actor_lr", "critic_lr", "target_update_interval", "autotune_alpha", "alpha", "alpha_init",
        "alpha_lr", "target_entropy_scale"}),
    "crossq": frozenset(_OFF - {"tau"} | {
        "utd_ratio", "actor_lr", "critic_lr", "alpha_lr", "critic_hidden_sizes", "policy_delay", "adam_beta1",
        "renorm_momentum", "renorm_warmup", "autotune_alpha", "alpha_init"}),
    "ppo": frozenset({
        "total_steps", "n_envs", "gamma", "hidden_sizes", "activation", "ortho_init", "lr", "anneal_lr", "n_steps",
        "n_epochs", "minibatch_size", "gae_lambda", "clip_range", "anneal_clip_range", "clip_vloss", "ent_coef",
        "vf_coef", "max_grad_norm", "normalize_advantage", "normalize_obs", "normalize_reward", "log_std_init"}),
})  # fmt: skip


@dataclass(frozen=True)
class Preset:
    """Hyper-parameters for one (algorithm, environment): ``params`` maps softac field names to values."""

    algo: str
    env_id: str
    params: Mapping[str, Any]
    source: str
    note: str = ""


_ZOO = "https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/hyperparams/{}.yml"
# Stable-Baselines3 2.x defaults, the values the zoo leaves implicit.
_SB3: dict[str, dict[str, Any]] = {
    "sac": dict(n_envs=1, buffer_size=1_000_000, batch_size=256, gamma=0.99, tau=0.005, learning_starts=100,
                hidden_sizes=(256, 256), n_critics=2, utd_ratio=1.0, actor_lr=3e-4, critic_lr=3e-4,
                autotune_alpha=True, alpha_init=1.0, alpha_lr=3e-4),
    "td3": dict(n_envs=1, buffer_size=1_000_000, batch_size=256, gamma=0.99, tau=0.005, learning_starts=100,
                hidden_sizes=(400, 300), n_critics=2, utd_ratio=1.0, actor_lr=1e-3, critic_lr=1e-3, policy_delay=2,
                target_noise=0.2, target_noise_clip=0.5, exploration_noise=0.1),
    "ddpg": dict(n_envs=1, buffer_size=1_000_000, batch_size=256, gamma=0.99, tau=0.005, learning_starts=100,
                 hidden_sizes=(400, 300), n_critics=1, utd_ratio=1.0, actor_lr=1e-3, critic_lr=1e-3, policy_delay=1,
                 target_noise=0.0, target_noise_clip=0.0, exploration_noise=0.1),
    "dqn": dict(n_envs=1, buffer_size=1_000_000, batch_size=32, gamma=0.99, tau=1.0, learning_starts=100,
                hidden_sizes=(64, 64), lr=1e-4, utd_ratio=0.25, target_update_interval=10_000,
                exploration_fraction=0.1, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                max_grad_norm=10.0, double_q=False, loss="huber"),
    "ppo": dict(n_envs=1, gamma=0.99, hidden_sizes=(64, 64), activation="tanh", ortho_init=True, lr=3e-4,
                anneal_lr=False, n_steps=2048, n_epochs=10, minibatch_size=64, gae_lambda=0.95, clip_range=0.2,
                anneal_clip_range=False, clip_vloss=False, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                normalize_advantage=True, normalize_obs=False, normalize_reward=False, log_std_init=0.0),
}  # fmt: skip
_PRESETS: dict[tuple[str, str], Preset] = {}


def _add(algo: str, env_ids: str, note: str = "", source: str = "", **overrides: Any) -> None:
    base = _SB3.get(algo, {})
    for env_id in env_ids.split():
        params = MappingProxyType({**base, **overrides})
        _PRESETS[(algo, env_id)] = Preset(algo, env_id, params, source or _ZOO.format(algo), note)


_V5 = "Tuned by rl-zoo3 on the v4 task; applied to v5 (same model, Gymnasium's bug fixes)."
_NO_SDE = "rl-zoo3 uses gSDE (use_sde) here, which softac does not have: plain Gaussian exploration instead, "
_NORM = ("rl-zoo3's normalize: true is VecNormalize with its defaults: normalize_obs and normalize_reward here "
         "(same statistics, clipping at 10, γ of the preset).")

# -- SAC ------------------------------------------------------------------------------------------
_add("sac", "Pendulum-v1", total_steps=20_000, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)
_add("sac", "MountainCarContinuous-v0", _NO_SDE + "so this task (sparse reward) may not be solved. "
     "train_freq = gradient_steps = 32 → utd_ratio 1.", total_steps=50_000, buffer_size=50_000, batch_size=512,
     autotune_alpha=False, alpha=0.1, gamma=0.9999, tau=0.01, learning_starts=0, hidden_sizes=(64, 64))  # fmt: skip
_add("sac", "HalfCheetah-v5 Ant-v5 Hopper-v5 Walker2d-v5", _V5, total_steps=1_000_000, learning_starts=10_000)
_add("sac", "Humanoid-v5", _V5, total_steps=2_000_000, learning_starts=10_000)
_add("sac", "Swimmer-v5", _V5, total_steps=1_000_000, learning_starts=10_000, gamma=0.999)
_add("sac", "Reacher-v5 InvertedPendulum-v5", "Not tuned by rl-zoo3: its MuJoCo block (1M steps, 10k random steps) "
     "with SB3 defaults.", total_steps=1_000_000, learning_starts=10_000)  # fmt: skip

# -- CrossQ (Bhatt et al., ICLR 2024): the paper's settings, which are CrossQConfig's defaults --------
_CROSSQ = ("Bhatt et al. 2024 (CrossQ), Appendix: lr 1e-3, Adam β₁ 0.5, policy delay 3, batch 256, critics "
           "2048 × 2048 with batch renormalisation (sb3-contrib's CrossQ implements the same; it defaults to "
           "1024-wide critics for speed); 5,000 random steps.")
_add("crossq", "HalfCheetah-v5 Ant-v5 Hopper-v5 Walker2d-v5 Humanoid-v5", _CROSSQ,
     "https://arxiv.org/abs/1902.05605", total_steps=1_000_000, n_envs=1, buffer_size=1_000_000, batch_size=256,
     gamma=0.99, learning_starts=5_000, hidden_sizes=(256, 256), critic_hidden_sizes=(2048, 2048), n_critics=2,
     utd_ratio=1.0, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, policy_delay=3, adam_beta1=0.5,
     autotune_alpha=True, alpha_init=1.0)  # fmt: skip

# -- TD3 and DDPG (the zoo gives both the same settings) ------------------------------------------
for _algo in ("td3", "ddpg"):
    _add(_algo, "Pendulum-v1", total_steps=20_000, gamma=0.98, buffer_size=200_000, learning_starts=10_000)
    _add(_algo, "MountainCarContinuous-v0", "rl-zoo3 explores with Ornstein-Uhlenbeck noise σ = 0.5; softac's "
         "exploration noise is Gaussian, with the same σ.", total_steps=300_000, exploration_noise=0.5)  # fmt: skip
    _add(_algo, "HalfCheetah-v5 Ant-v5 Hopper-v5 Walker2d-v5", _V5, total_steps=1_000_000, learning_starts=10_000)
    _add(_algo, "Humanoid-v5", _V5, total_steps=2_000_000, learning_starts=10_000)
    _add(_algo, "Swimmer-v5", _V5, total_steps=1_000_000, learning_starts=10_000, gamma=0.9999)
    _add(_algo, "Reacher-v5 InvertedPendulum-v5", "Not tuned by rl-zoo3: its MuJoCo block (1M steps, 10k random "
         "steps) with SB3 defaults.", total_steps=1_000_000, learning_starts=10_000)  # fmt: skip

# -- DQN ------------------------------------------------------------------------------------------
# CartPole: CleanRL's dqn.py rather than rl-zoo3. The zoo's 50k-step preset (its benchmark: one agent at 500)
# oscillates late: checked with softac's losses in a plain loop with SB3's semantics, its final greedy
# evaluation was ≥ 450 on 5 of 10 seeds (lr 1e-3: 8 of 10; Double DQN: 2 of 5). See the note for CleanRL's.
# Rerun 2026-12-04 in softac itself with the zoo's burst kept (burst_every 256, utd_ratio 0.5: 128
# updates every 256 steps, target copied between bursts; lr 2.3e-3, batch 64, 256×256, ε 1 → 0.04
# over 8k steps, target_update_interval 10, SB3 defaults otherwise), threads=1, greedy evaluation
# of 10 episodes every 5k steps: seeds 0, 1, 2 ended at 116, 500, 405 at 50k, and seed 0 never
# passed 299 (seed 1: 119, 230, 355, 171, 132, 500, 189, 433, 216, 500). Not reliable: CleanRL's stays.
_add("dqn", "CartPole-v1", "CleanRL dqn.py defaults (docs: 488.69 ± 16.11 on CartPole-v1, 3 seeds). Checked "
     "with softac's losses in a plain loop (greedy policy, 10 episodes every 50k steps): final evaluation "
     "≥ 489 on 10 of 10 seeds; from 300k steps on, 49 of 50 evaluations ≥ 432 (one 370). 500k env steps are "
     "~49k gradient steps. CleanRL clips no gradient: max_grad_norm = 0. train_frequency 10 = utd_ratio 0.1.",
     source="https://docs.cleanrl.dev/rl-algorithms/dqn/#dqnpy", total_steps=500_000, buffer_size=10_000,
     batch_size=128, gamma=0.99, tau=1.0, target_update_interval=500, exploration_fraction=0.5,
     exploration_initial_eps=1.0, exploration_final_eps=0.05, learning_starts=10_000, utd_ratio=0.1, lr=2.5e-4,
     hidden_sizes=(120, 84), loss="mse", max_grad_norm=0.0)  # fmt: skip
_add("dqn", "MountainCar-v0", "train_freq 16, gradient_steps 8 → utd_ratio 0.5 (one update every 2 steps rather "
     "than 8 every 16).", total_steps=120_000, lr=4e-3, batch_size=128, buffer_size=10_000, learning_starts=1000,
     gamma=0.98, target_update_interval=600, utd_ratio=0.5, exploration_fraction=0.2, exploration_final_eps=0.07,
     hidden_sizes=(256, 256))  # fmt: skip
_add("dqn", "LunarLander-v3 Acrobot-v1", "train_freq 4 with gradient_steps −1 (as many as env steps) → "
     "utd_ratio 1.", total_steps=100_000, lr=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
     target_update_interval=250, utd_ratio=1.0, exploration_fraction=0.12,
     exploration_final_eps=0.1, hidden_sizes=(256, 256))  # fmt: skip

# -- PPO ------------------------------------------------------------------------------------------
_add("ppo", "CartPole-v1", "rl-zoo3 benchmark: 500 ± 0 at 100k steps (benchmark.md). Checked with softac's "
     "losses in a plain loop (SB3's networks: 64×64 tanh, orthogonal init, Adam ε = 1e-5; greedy policy, 10 episodes "
     "every 10k steps): 5 of 5 seeds scored 500 at every evaluation from 30k steps on.", total_steps=100_000,
     n_envs=8, n_steps=32, minibatch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, lr=1e-3, anneal_lr=True,
     clip_range=0.2, anneal_clip_range=True)  # fmt: skip
_add("ppo", "Pendulum-v1", _NO_SDE + "expect a weaker result.", n_envs=4, total_steps=100_000, n_steps=1024,
     gae_lambda=0.95, gamma=0.9, n_epochs=10, lr=1e-3, clip_range=0.2)  # fmt: skip
_add("ppo", "MountainCar-v0", _NORM, normalize_obs=True, normalize_reward=True, n_envs=16, total_steps=1_000_000,
     n_steps=16, gae_lambda=0.98, gamma=0.99, n_epochs=4)  # fmt: skip
_add("ppo", "Acrobot-v1", _NORM, normalize_obs=True, normalize_reward=True, n_envs=16, total_steps=1_000_000,
     n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4)  # fmt: skip
_WHOLE = ("rl-zoo3's batch_size {} exceeds the {}-step rollout; SB3 then uses the whole rollout as one minibatch, "
          "so minibatch_size = {}. ")
_add("ppo", "MountainCarContinuous-v0", _NO_SDE + "with rl-zoo3's log_std_init. " + _WHOLE.format(256, 8, 8) + _NORM,
     normalize_obs=True, normalize_reward=True, total_steps=20_000, minibatch_size=8, n_steps=8, gamma=0.9999,
     lr=7.77e-5, ent_coef=0.00429, clip_range=0.1, n_epochs=10, gae_lambda=0.9, max_grad_norm=5.0, vf_coef=0.19,
     log_std_init=-3.29, ortho_init=False)  # fmt: skip
_add("ppo", "LunarLander-v3", n_envs=16, total_steps=1_000_000, n_steps=1024, minibatch_size=64, gae_lambda=0.98,
     gamma=0.999, n_epochs=4, ent_coef=0.01)  # fmt: skip
_MJ: dict[str, Any] = dict(normalize_obs=True, normalize_reward=True, total_steps=1_000_000)
_RELU: dict[str, Any] = dict(log_std_init=-2.0, ortho_init=False, activation="relu", hidden_sizes=(256, 256))
_add("ppo", "Ant-v5", _V5 + " " + _NORM, **_MJ)
_add("ppo", "Swimmer-v5", _V5 + " " + _NORM, **_MJ, gamma=0.9999, n_envs=4, n_steps=1024, minibatch_size=256,
     lr=6e-4, gae_lambda=0.98)  # fmt: skip
_add("ppo", "HalfCheetah-v5", _V5 + " " + _NORM, **_MJ, **_RELU, minibatch_size=64, n_steps=512, gamma=0.98,
     lr=2.0633e-5, ent_coef=0.000401762, clip_range=0.1, n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8,
     vf_coef=0.58096)  # fmt: skip
_add("ppo", "Hopper-v5", _V5 + " " + _NORM, **_MJ, **_RELU, minibatch_size=32, n_steps=512, gamma=0.999,
     lr=9.80828e-5, ent_coef=0.00229519, clip_range=0.2, n_epochs=5, gae_lambda=0.99, max_grad_norm=0.7,
     vf_coef=0.835671)  # fmt: skip
_add("ppo", "Walker2d-v5", _V5 + " " + _NORM, **_MJ, minibatch_size=32, n_steps=512, gamma=0.99,
     lr=5.05041e-5, ent_coef=0.000585045, clip_range=0.1, n_epochs=20, gae_lambda=0.95, max_grad_norm=1.0,
     vf_coef=0.871923)  # fmt: skip
_add("ppo", "Humanoid-v5", _V5 + " " + _NORM, **{**_MJ, "total_steps": 10_000_000}, **_RELU, minibatch_size=256,
     n_steps=512, gamma=0.95, lr=3.56987e-5, ent_coef=0.00238306, clip_range=0.3, n_epochs=5, gae_lambda=0.9,
     max_grad_norm=2.0, vf_coef=0.431892)  # fmt: skip
_V2 = "Tuned by rl-zoo3 on the v2 task; applied to v5. "
_add("ppo", "InvertedPendulum-v5", _V2 + _WHOLE.format(64, 32, 32) + _NORM, **_MJ, minibatch_size=32, n_steps=32,
     gamma=0.999, lr=0.000222425, ent_coef=1.37976e-07, clip_range=0.4, n_epochs=5, gae_lambda=0.9,
     max_grad_norm=0.3, vf_coef=0.19816)  # fmt: skip
_add("ppo", "Reacher-v5", _V2 + _NORM, **_MJ, minibatch_size=32, n_steps=512, gamma=0.9, lr=0.000104019,
     ent_coef=7.52585e-08, clip_range=0.3, n_epochs=5, gae_lambda=1.0, max_grad_norm=0.9, vf_coef=0.950368)  # fmt: skip

# -- discrete SAC ---------------------------------------------------------------------------------
# Neither rl-zoo3 nor SB3 has discrete SAC, and no published run reaching 500 on CartPole-v1 was
# found (Tianshou's test lowers its goal to 170 and fixes α). So this preset is softac's own, built
# from sourced parts and checked: Christodoulou's algorithm; small networks, critic lr 1e-3 and
# actor lr below it as in Tianshou's test_discrete_sac.py; polyak τ = 0.005 every step, as softac's
# SAC; H̄ = 0.7 · log 2 (see losses.discrete_sac.target_entropy: 0.89 let α run away here).
_add("sac-discrete", "CartPole-v1", "Checked with softac's losses in a plain loop (greedy policy, 10 episodes "
     "every 5k steps): 5 of 5 seeds scored 500 at every evaluation from 40k steps on (≥ 464 from 35k); α "
     "stayed in [0.94, 2.4].",
     source="https://arxiv.org/abs/1910.07207", total_steps=50_000, n_envs=1, buffer_size=100_000, batch_size=64,
     gamma=0.99, tau=0.005, learning_starts=1000, hidden_sizes=(64, 64), n_critics=2, actor_lr=3e-4,
     critic_lr=1e-3, utd_ratio=1.0, target_update_interval=1, autotune_alpha=True,
     alpha_init=1.0, alpha_lr=3e-4, target_entropy_scale=0.7)  # fmt: skip

# -- goal-conditioned tasks with hindsight experience replay (softac.presets_goals) --------------
for _algo, _ids, _note, _params in GOAL_PRESETS:
    _add(_algo, _ids, _note, HER_ZOO, **_params)
for _algo, _ids, _note, _params in PIXEL_PRESETS:
    _add(_algo, _ids, _note, DRQV2, **_params)


def get_preset(algo: str, env_id: str) -> Preset | None:
    """The preset for ``algo`` on ``env_id``, or None when there is none (an unknown algo is an error)."""
    if algo not in ALLOWED_FIELDS:
        raise ValueError(f"unknown algorithm {algo!r}: expected one of {', '.join(sorted(ALLOWED_FIELDS))}")
    return _PRESETS.get((algo, env_id))


def list_presets(algo: str | None = None) -> list[Preset]:
    """Every preset (of ``algo`` if given), sorted by algorithm then environment id."""
    if algo is not None and algo not in ALLOWED_FIELDS:
        raise ValueError(f"unknown algorithm {algo!r}: expected one of {', '.join(sorted(ALLOWED_FIELDS))}")
    return [p for key, p in sorted(_PRESETS.items()) if algo is None or key[0] == algo]
