"""One seed of a Stable-Baselines3 suite cell (``softac.suite.sb3_cell``): SB3's SAC, with its
``HerReplayBuffer`` for ``sb3-sac-her``, trained and evaluated on environments made by
``softac.envs.make_env`` (so a Fetch task runs through softac's compatibility adapter, and
``--env-kwargs`` such as ``max_episode_steps`` give both libraries the same episodes), and its
progress.csv written with softac's columns.

Success: where the environment reports it (``softac.success``: ``info["is_success"]`` or
``info["success"]``), each row carries softac's two success columns, with softac's meaning:
``eval_success_rate`` is the mean of every evaluation episode's flag at its last step and
``train_success_rate`` that of the training episodes that ended since the previous row (NaN when
none did). An environment that reports no success gets neither column, as in softac's own cells.

Normalised observations: where softac's preset sets ``normalize_obs`` (rl-zoo3's ``normalize: true``),
SB3 gets what the zoo gives it, a ``VecNormalize`` over the training env, with ``norm_reward=False``
because softac's off-policy family has no reward normalisation (``softac.presets_goals``). SB3 stores
the raw observations in its (HER) buffer and normalises each sampled batch after relabelling, as
softac does; evaluation feeds the policy each observation normalised with the training statistics
(``VecNormalize.normalize_obs``, which does not update them), as softac's frozen evaluation does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from softac.analysis.stats import write_csv_atomic
from softac.envs import make_env
from softac.evaluate import EVAL_SEED_OFFSET
from softac.goals import GOAL_KEYS
from softac.logging import COMMON_FIELDS, SUCCESS_FIELDS, with_success
from softac.success import info_success, success_columns

Kwargs = Sequence[tuple[str, Any]]


def goal_problem(env: gym.Env, env_id: str) -> str | None:
    """Why SB3's ``HerReplayBuffer`` cannot relabel ``env``'s goals (None: it can)."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Dict) or any(k not in space.spaces for k in GOAL_KEYS):
        have = ", ".join(space.spaces) if isinstance(space, gym.spaces.Dict) else f"a {type(space).__name__}"
        return (f"sb3-sac-her needs a goal-conditioned environment (a Dict observation with {', '.join(GOAL_KEYS)}); "
                f"{env_id} gives {have}: use sb3-sac there")  # fmt: skip
    try:
        fn = env.get_wrapper_attr("compute_reward")
    except AttributeError:
        fn = None
    if not callable(fn):
        return f"sb3-sac-her needs the environment's compute_reward to relabel goals; {env_id} has none: use sb3-sac"
    return None


def policy_name(space: gym.Space[Any]) -> str:
    """SB3's policy for an observation space: a Dict observation needs ``MultiInputPolicy``."""
    return "MultiInputPolicy" if isinstance(space, gym.spaces.Dict) else "MlpPolicy"


def train_env(env_id: str, kwargs: Kwargs, normalize_obs: bool) -> Any:
    """SB3's training VecEnv: the one env SB3 would wrap itself (``Monitor`` in a ``DummyVecEnv``),
    made by softac, under the zoo's ``VecNormalize`` (observations only) when ``normalize_obs``."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = DummyVecEnv([lambda: Monitor(make_env(env_id, kwargs))])
    if normalize_obs:
        return VecNormalize(venv, norm_obs=True, norm_reward=False)
    return venv


def evaluate_sb3(model: Any, env: gym.Env, episodes: int, seed: int) -> tuple[np.ndarray, list[float | None]]:
    """Returns and success flags (None: none reported) of ``episodes`` deterministic episodes,
    episode e from ``reset(seed=seed + e)``; observations normalised with the training statistics
    when the model trains under a ``VecNormalize``."""
    norm = model.get_vec_normalize_env()
    returns = np.zeros(episodes)
    flags: list[float | None] = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        done = False
        while not done:
            action, _ = model.predict(obs if norm is None else norm.normalize_obs(obs), deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            returns[e] += float(reward)
            done = bool(terminated or truncated)
        flags.append(info_success(info, f"the evaluation environment (episode {e})"))
    return returns, flags


def run_seed(env_id: str, kwargs: Kwargs, seed: int, budget: int, seed_dir: Path, eval_freq: int,
             eval_episodes: int, kw: dict[str, Any], her: bool, normalize_obs: bool, device: str) -> Any:  # fmt: skip
    """Train one seed, writing its progress.csv after every evaluation; returns the SB3 model."""
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    rows: list[dict[str, Any]] = []
    eval_env = make_env(env_id, kwargs)
    t0 = time.perf_counter()

    class Evaluate(BaseCallback):
        """Why at a rollout's start: SB3 calls ``_on_step`` after the env step and before that step's
        gradient update; a rollout (one step, train_freq=1) starts after it, as softac evaluates."""

        def __init__(self) -> None:
            super().__init__()
            self.episodes, self.last = 0, 0
            self.recent_success: list[float] = []  # training episodes ended since the last row

        def _on_step(self) -> bool:
            infos = self.locals.get("infos") or []
            for i, done in enumerate(np.atleast_1d(self.locals.get("dones", 0))):
                if done:
                    self.episodes += 1
                    flag = info_success(infos[i], f"the training environment (episode {self.episodes})")
                    if flag is not None:
                        self.recent_success.append(flag)
            return True

        def _on_rollout_start(self) -> None:
            step = self.num_timesteps
            if step // eval_freq != self.last // eval_freq and step < budget:
                self.evaluate(step)
            self.last = step

        def evaluate(self, step: int) -> None:
            rets, flags = evaluate_sb3(self.model, eval_env, eval_episodes, seed + EVAL_SEED_OFFSET)
            wall = time.perf_counter() - t0
            recent = [info["r"] for info in self.model.ep_info_buffer or []]  # SB3's last 100 training episodes
            train_mean = float(np.mean(recent)) if recent else ""
            success = success_columns([np.nan if f is None else f for f in flags], self.recent_success)
            rows.append({"step": step, "wall_time_s": wall, "updates": int(self.model._n_updates),
                         "episodes": self.episodes, "eval_return_mean": float(rets.mean()),
                         "eval_return_std": float(rets.std()), "train_return_mean": train_mean,
                         "steps_per_s": step / wall, **success})  # fmt: skip
            self.recent_success.clear()
            # The success columns appear once some row reports success, as softac's RunLogger adds them.
            fields = with_success(COMMON_FIELDS) if any(c in r for r in rows for c in SUCCESS_FIELDS) else COMMON_FIELDS
            write_csv_atomic(seed_dir / "progress.csv", fields, rows)

    venv = train_env(env_id, kwargs, normalize_obs)
    extra: dict[str, Any] = {"replay_buffer_class": HerReplayBuffer} if her else {}
    model = SAC(policy_name(venv.observation_space), venv, seed=seed, device=device, verbose=0, **kw, **extra)
    # A logger of no outputs: SB3's default one makes an empty directory $TMPDIR/SB3-<date-time> at
    # every learn(), one per seed of every cell, left behind.
    model.set_logger(Logger(None, []))
    callback = Evaluate()
    model.learn(total_timesteps=budget, callback=callback, progress_bar=False)
    callback.evaluate(model.num_timesteps)  # at the budget, after its last update
    eval_env.close()
    venv.close()
    return model
