"""One suite cell of Stable-Baselines3's SAC (variant ``sb3-sac``), run the way softac's cells are:

    python -m softac.suite.sb3_cell --env E --seeds 0,1 --budget N --run-dir D
        [--eval-freq F] [--eval-episodes K] [--learning-starts L] [--batch-size B] [--hidden-sizes H H]
        [--threads T] [--device cpu] [--tf32]

Each seed (one after another: SB3 has no learner axis) trains ``stable_baselines3.SAC`` for N
environment steps and writes ``D/seed_<s>/progress.csv`` (softac's column names, the ones SB3 can
fill) and ``D/seed_<s>/config.json`` (library, version, every SB3 setting). Settings: softac's
``--preset auto`` for ``sac`` on E translated to SB3's arguments, so both libraries run the same
hyper-parameters; those presets are rl-zoo3's published ones (MuJoCo: SB3's defaults with 10,000
random steps), which are what SB3 users run. An env without a preset gets SB3's own defaults.
Evaluation is softac's protocol: every F steps (crossing a multiple of F) and at N, K deterministic
episodes on a separate environment whose episode e starts from ``reset(seed=s + 100000 + e)``.

Resume: a seed whose progress.csv already reaches N is skipped, untouched. An unfinished seed
restarts from step 0, its old directory moved aside to ``seed_<s>.unfinished-<n>`` (never deleted):
softac does not checkpoint SB3's replay buffer, so nothing can be continued exactly. Every file is
written through a temporary file and a rename, so a kill never leaves half a file.

Of ``softac train``'s flags (a suite's flags after ``--`` reach every cell) this takes --eval-freq,
--eval-episodes, --learning-starts, --batch-size, --hidden-sizes and --tf32, with their meaning in
softac; --checkpoint-freq is accepted and has no effect (no checkpoints, see above). Any other flag
is refused in one line: it would change softac's cells and not this one.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softac.analysis.stats import write_csv_atomic
from softac.cli.args import seeds_arg
from softac.config import BaseConfig
from softac.errors import SoftacError
from softac.evaluate import EVAL_SEED_OFFSET
from softac.logging import COMMON_FIELDS, read_progress
from softac.presets import get_preset

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BaseConfig)}


def sb3_settings(env_id: str, given: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """SB3 SAC keyword arguments for ``env_id`` (softac's sac preset translated) and where they come from."""
    preset = get_preset("sac", env_id)
    if preset is None:
        kw: dict[str, Any] = {}
        source = "Stable-Baselines3's defaults (softac has no sac preset for this env)"
    else:
        p = dict(preset.params)
        lrs = {p["actor_lr"], p["critic_lr"], p.get("alpha_lr", p["actor_lr"])}
        if len(lrs) != 1 or p["n_envs"] != 1 or float(p["utd_ratio"]) != int(p["utd_ratio"]):
            raise SoftacError(f"softac's sac preset for {env_id} has no SB3 equivalent (one lr, one env, whole utd)")
        if p["autotune_alpha"]:
            ent: Any = "auto" if p["alpha_init"] == 1.0 else f"auto_{p['alpha_init']}"
        else:
            ent = float(p["alpha"])
        kw = dict(learning_rate=lrs.pop(), buffer_size=p["buffer_size"], batch_size=p["batch_size"],
                  gamma=p["gamma"], tau=p["tau"], learning_starts=p["learning_starts"], train_freq=1,
                  gradient_steps=int(p["utd_ratio"]), ent_coef=ent,
                  policy_kwargs={"net_arch": list(p["hidden_sizes"]), "n_critics": p["n_critics"]})  # fmt: skip
        if "target_entropy" in p:
            kw["target_entropy"] = p["target_entropy"]
        source = f"softac's sac preset ({preset.source})"
    # softac train's flags that SB3 has under another name or place (None: not given).
    if given.get("learning_starts") is not None:
        kw["learning_starts"] = given["learning_starts"]
    if given.get("batch_size") is not None:
        kw["batch_size"] = given["batch_size"]
    if given.get("hidden_sizes") is not None:
        kw["policy_kwargs"] = {**kw.get("policy_kwargs", {}), "net_arch": list(given["hidden_sizes"])}
    return kw, source


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)


def seed_done(seed_dir: Path, budget: int) -> bool:
    """Whether this seed's progress.csv already holds its evaluation at ``budget``."""
    path = seed_dir / "progress.csv"
    try:
        return any(int(r["step"]) >= budget for r in read_progress(path))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def set_aside(seed_dir: Path) -> Path | None:
    """Move an unfinished seed's directory to ``seed_<s>.unfinished-<n>``; its new path, or None if none."""
    if not seed_dir.exists():
        return None
    n = 0
    while seed_dir.with_name(f"{seed_dir.name}.unfinished-{n}").exists():
        n += 1
    target = seed_dir.with_name(f"{seed_dir.name}.unfinished-{n}")
    seed_dir.rename(target)
    return target


def evaluate_sb3(model: Any, env: Any, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` deterministic episodes, episode e from ``reset(seed=seed + e)``."""
    returns = np.zeros(episodes)
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[e] += float(reward)
            done = bool(terminated or truncated)
    return returns


def run_seed(env_id: str, seed: int, budget: int, seed_dir: Path, eval_freq: int, eval_episodes: int,
             kw: dict[str, Any], device: str) -> Any:  # fmt: skip
    """Train one seed, writing its progress.csv after every evaluation; returns the SB3 model."""
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    rows: list[dict[str, Any]] = []
    eval_env = gym.make(env_id)
    t0 = time.perf_counter()

    def evaluate(model: Any, step: int, episodes: int) -> None:
        rets = evaluate_sb3(model, eval_env, eval_episodes, seed + EVAL_SEED_OFFSET)
        wall = time.perf_counter() - t0
        recent = [info["r"] for info in model.ep_info_buffer or []]  # SB3's last 100 training episodes
        train_mean = float(np.mean(recent)) if recent else ""
        rows.append({"step": step, "wall_time_s": wall, "updates": int(model._n_updates), "episodes": episodes,
                     "eval_return_mean": float(rets.mean()), "eval_return_std": float(rets.std()),
                     "train_return_mean": train_mean, "steps_per_s": step / wall})  # fmt: skip
        write_csv_atomic(seed_dir / "progress.csv", COMMON_FIELDS, rows)

    class Evaluate(BaseCallback):
        """Why at a rollout's start: SB3 calls ``_on_step`` after the env step and before that step's
        gradient update; a rollout (one step, train_freq=1) starts after it, as softac evaluates."""

        def __init__(self) -> None:
            super().__init__()
            self.episodes, self.last = 0, 0

        def _on_step(self) -> bool:
            self.episodes += int(np.sum(self.locals.get("dones", 0)))
            return True

        def _on_rollout_start(self) -> None:
            step = self.num_timesteps
            if step // eval_freq != self.last // eval_freq and step < budget:
                evaluate(self.model, step, self.episodes)
            self.last = step

    model = SAC("MlpPolicy", env_id, seed=seed, device=device, verbose=0, **kw)
    callback = Evaluate()
    model.learn(total_timesteps=budget, callback=callback, progress_bar=False)
    evaluate(model, model.num_timesteps, callback.episodes)  # at the budget, after its last update
    eval_env.close()
    return model


def run(env_id: str, seeds: Sequence[int], budget: int, run_dir: Path, eval_freq: int, eval_episodes: int,
        given: dict[str, Any], device: str) -> None:  # fmt: skip
    import gymnasium as gym
    import stable_baselines3

    space = gym.make(env_id).action_space
    if not isinstance(space, gym.spaces.Box):
        raise SoftacError(f"SB3's SAC needs continuous (Box) actions; {env_id} has {type(space).__name__}")
    kw, source = sb3_settings(env_id, given)
    for seed in seeds:
        seed_dir = run_dir / f"seed_{seed}"
        if seed_done(seed_dir, budget):
            print(f"seed {seed}: already trained to {budget} steps, skipped", flush=True)
            continue
        moved = set_aside(seed_dir)
        if moved is not None:
            print(f"seed {seed}: unfinished run moved to {moved.name}; restarting from step 0", flush=True)
        seed_dir.mkdir(parents=True)
        config = {"library": "stable-baselines3", "version": stable_baselines3.__version__, "algo": "SAC",
                  "env_id": env_id, "seed": seed, "total_steps": budget, "eval_freq": eval_freq,
                  "eval_episodes": eval_episodes, "device": device, "settings": kw, "source": source}  # fmt: skip
        _write_json(seed_dir / "config.json", config)
        # A deep copy: SB3 writes into the policy_kwargs it is given.
        model = run_seed(env_id, seed, budget, seed_dir, eval_freq, eval_episodes, copy.deepcopy(kw), device)
        _write_json(seed_dir / "config.json", {**config, "updates": int(model._n_updates)})
        print(f"seed {seed}: {budget} steps, {model._n_updates} gradient updates", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m softac.suite.sb3_cell", description=__doc__.split("\n")[0])
    p.add_argument("--env", required=True)
    p.add_argument("--seeds", type=seeds_arg, required=True)
    p.add_argument("--budget", type=int, required=True)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--eval-freq", type=int, default=_DEFAULTS["eval_freq"])
    p.add_argument("--eval-episodes", type=int, default=_DEFAULTS["eval_episodes"])
    p.add_argument("--learning-starts", type=int, default=None, help="default: the preset's (or SB3's)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's (or SB3's)")
    p.add_argument("--hidden-sizes", type=int, nargs="+", default=None, help="default: the preset's (or SB3's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tf32", action="store_true", help="TF32 matmuls on CUDA, as softac's --tf32")
    p.add_argument("--checkpoint-freq", type=int, default=None, help="accepted, no effect (no checkpoints)")
    a, unknown = p.parse_known_args(argv)
    try:
        if unknown:
            raise SoftacError(f"sb3-sac cells do not take {' '.join(unknown)} (softac train flags after -- that "
                              "SB3 has no counterpart of); drop them or run sb3-sac in a suite of its own")  # fmt: skip
        if min(a.budget, a.eval_freq, a.eval_episodes, a.threads) < 1:
            raise SoftacError("--budget, --eval-freq, --eval-episodes and --threads must be positive")
        given = {"learning_starts": a.learning_starts, "batch_size": a.batch_size, "hidden_sizes": a.hidden_sizes}
        import torch

        torch.set_num_threads(a.threads)
        if a.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
        run(a.env, a.seeds, a.budget, a.run_dir, a.eval_freq, a.eval_episodes, given, a.device)
    except SoftacError as exc:
        print(f"softac: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
