"""One suite cell of Stable-Baselines3's SAC (variants ``sb3-sac`` and, with ``--her``, ``sb3-sac-her``),
run the way softac's cells are:

    python -m softac.suite.sb3_cell --env E --seeds 0,1 --budget N --run-dir D [--her]
        [--eval-freq F] [--eval-episodes K] [--learning-starts L] [--batch-size B] [--hidden-sizes H H]
        [--env-kwargs KEY=VALUE ...] [--threads T] [--device cpu] [--tf32]

Each seed (one after another: SB3 has no learner axis) trains ``stable_baselines3.SAC`` for N
environment steps and writes ``D/seed_<s>/progress.csv`` (softac's column names, the ones SB3 can
fill) and ``D/seed_<s>/config.json`` (library, version, every SB3 setting). Settings: softac's
``--preset auto`` for ``sac`` on E translated to SB3's arguments, so both libraries run the same
hyper-parameters; those presets are rl-zoo3's published ones (MuJoCo: SB3's defaults with 10,000
random steps), which are what SB3 users run. An env without a preset gets SB3's own defaults.
Evaluation is softac's protocol: every F steps (crossing a multiple of F) and at N, K deterministic
episodes on a separate environment whose episode e starts from ``reset(seed=s + 100000 + e)``.
A Dict observation gets SB3's ``MultiInputPolicy``. ``--her`` (goal-conditioned environments only)
adds SB3's ``HerReplayBuffer`` with the preset's ``her_k`` and ``her_strategy`` as ``n_sampled_goal``
and ``goal_selection_strategy`` (4 and ``future``, softac's defaults, without a preset); a preset's
``normalize_obs`` becomes a ``VecNormalize`` of observations (``softac.suite.sb3_seed``). Both
environments come from ``softac.envs.make_env`` with ``--env-kwargs``, as softac's cells' do.

Resume: a seed whose progress.csv already reaches N is skipped, untouched. An unfinished seed
restarts from step 0, its old directory moved aside to ``seed_<s>.unfinished-<n>`` (never deleted):
softac does not checkpoint SB3's replay buffer, so nothing can be continued exactly. Every file is
written through a temporary file and a rename, so a kill never leaves half a file.

Of ``softac train``'s flags (a suite's flags after ``--`` reach every cell) this takes --eval-freq,
--eval-episodes, --learning-starts, --batch-size, --hidden-sizes, --env-kwargs and --tf32, with their
meaning in softac; --checkpoint-freq is accepted and has no effect (no checkpoints, see above). Any other flag
is refused in one line: it would change softac's cells and not this one.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from softac.cli.args import kwarg_arg, seeds_arg
from softac.config import BaseConfig
from softac.errors import SoftacError
from softac.logging import read_progress
from softac.presets import get_preset
from softac.suite.sb3_seed import Kwargs, goal_problem, run_seed

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(BaseConfig)}
# softac's hindsight-replay defaults (softac.config_goals), for a goal env without a preset.
HER_DEFAULTS = {"her_k": 4, "her_strategy": "future"}
SB3_LEARNING_STARTS = 100  # SAC's default in SB3


def sb3_settings(env_id: str, given: dict[str, Any], her: bool = False) -> tuple[dict[str, Any], str]:
    """SB3 SAC keyword arguments for ``env_id`` (softac's sac preset translated) and where they come
    from; with ``her``, the HerReplayBuffer's arguments (``replay_buffer_kwargs``) too."""
    preset = get_preset("sac", env_id)
    p: dict[str, Any] = {} if preset is None else dict(preset.params)
    if preset is None:
        kw: dict[str, Any] = {}
        source = "Stable-Baselines3's defaults (softac has no sac preset for this env)"
    else:
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
    if her:  # rl-zoo3's n_sampled_goal / goal_selection_strategy, which softac's presets hold as her_k / her_strategy
        her_p = {**HER_DEFAULTS, **{k: p[k] for k in HER_DEFAULTS if k in p}}
        kw["replay_buffer_kwargs"] = {"n_sampled_goal": her_p["her_k"],
                                      "goal_selection_strategy": her_p["her_strategy"]}  # fmt: skip
    # softac train's flags that SB3 has under another name or place (None: not given).
    if given.get("learning_starts") is not None:
        kw["learning_starts"] = given["learning_starts"]
    if given.get("batch_size") is not None:
        kw["batch_size"] = given["batch_size"]
    if given.get("hidden_sizes") is not None:
        kw["policy_kwargs"] = {**kw.get("policy_kwargs", {}), "net_arch": list(given["hidden_sizes"])}
    return kw, source


def normalize_obs(env_id: str) -> bool:
    """Whether softac's sac preset for ``env_id`` normalises observations (rl-zoo3's ``normalize: true``)."""
    preset = get_preset("sac", env_id)
    return preset is not None and bool(dict(preset.params).get("normalize_obs", False))


def her_learning_starts(kw: dict[str, Any], given: dict[str, Any], limit: int | None, env_id: str) -> str | None:
    """SB3's HerReplayBuffer samples only episodes that have ended: its first update, at
    ``learning_starts``, fails when no episode has ended by then (SB3 recommends a learning_starts
    above the episode length). A value the user gave below ``limit`` (the time limit) is refused in one
    line; one from SB3's defaults or a preset is raised to ``limit``, said in the returned note."""
    starts = int(kw.get("learning_starts", SB3_LEARNING_STARTS))
    if limit is None or starts >= limit:
        return None
    if given.get("learning_starts") is not None:
        raise SoftacError(f"--learning-starts {starts} is shorter than one {limit}-step episode of {env_id}: SB3's "
                          f"HerReplayBuffer samples only ended episodes; give at least {limit} (or a smaller "
                          "max_episode_steps in --env-kwargs)")  # fmt: skip
    kw["learning_starts"] = limit
    return f"learning_starts raised from {starts} to one episode ({limit} steps): SB3's HER samples only ended episodes"


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


def settings(env_id: str, kwargs: Kwargs, given: dict[str, Any], her: bool) -> tuple[dict[str, Any], str, bool]:
    """What a cell on ``env_id`` trains with: SB3's keyword arguments, where they come from (with any
    raised learning_starts said), and whether observations are normalised; a :class:`SoftacError`
    for what it cannot run. Makes the environment once (its action space, goals, episode length)."""
    import gymnasium as gym

    from softac.envs import make_env

    probe = make_env(env_id, kwargs)
    space, limit = probe.action_space, getattr(probe.spec, "max_episode_steps", None)
    problem = goal_problem(probe, env_id) if her else None
    probe.close()
    if not isinstance(space, gym.spaces.Box):
        raise SoftacError(f"SB3's SAC needs continuous (Box) actions; {env_id} has {type(space).__name__}")
    if problem is not None:
        raise SoftacError(problem)
    kw, source = sb3_settings(env_id, given, her)
    note = her_learning_starts(kw, given, limit, env_id) if her else None
    return kw, source + (f"; {note}" if note else ""), normalize_obs(env_id)


def run(env_id: str, kwargs: Kwargs, seeds: Sequence[int], budget: int, run_dir: Path, eval_freq: int,
        eval_episodes: int, given: dict[str, Any], her: bool, device: str) -> None:  # fmt: skip
    import stable_baselines3

    kw, source, norm = settings(env_id, kwargs, given, her)
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
                  "her": her, "env_id": env_id, "env_kwargs": dict(kwargs), "seed": seed, "total_steps": budget,
                  "eval_freq": eval_freq, "eval_episodes": eval_episodes, "device": device, "settings": kw,
                  "normalize_obs": norm, "source": source}  # fmt: skip
        _write_json(seed_dir / "config.json", config)
        # A deep copy: SB3 writes into the policy_kwargs it is given.
        model = run_seed(env_id, kwargs, seed, budget, seed_dir, eval_freq, eval_episodes, copy.deepcopy(kw), her,
                         norm, device)  # fmt: skip
        _write_json(seed_dir / "config.json", {**config, "updates": int(model._n_updates)})
        print(f"seed {seed}: {budget} steps, {model._n_updates} gradient updates", flush=True)


def parser(cls: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = cls(prog="python -m softac.suite.sb3_cell", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--env", required=True)
    p.add_argument("--seeds", type=seeds_arg, required=True)
    p.add_argument("--budget", type=int, required=True)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--her", action="store_true", help="SB3's HerReplayBuffer (variant sb3-sac-her; goal envs only)")
    p.add_argument("--eval-freq", type=int, default=_DEFAULTS["eval_freq"])
    p.add_argument("--eval-episodes", type=int, default=_DEFAULTS["eval_episodes"])
    p.add_argument("--learning-starts", type=int, default=None, help="default: the preset's (or SB3's)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's (or SB3's)")
    p.add_argument("--hidden-sizes", type=int, nargs="+", default=None, help="default: the preset's (or SB3's)")
    p.add_argument("--env-kwargs", type=kwarg_arg, nargs="+", default=[], metavar="KEY=VALUE",
                   help="keyword arguments of the environment, as softac train's")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tf32", action="store_true", help="TF32 matmuls on CUDA, as softac's --tf32")
    p.add_argument("--checkpoint-freq", type=int, default=None, help="accepted, no effect (no checkpoints)")
    return p


def _given(a: argparse.Namespace) -> dict[str, Any]:
    return {"learning_starts": a.learning_starts, "batch_size": a.batch_size, "hidden_sizes": a.hidden_sizes}


def _env_kwargs(a: argparse.Namespace) -> Kwargs:
    """softac's own checks of --env-kwargs (JSON values, a positive max_episode_steps), through its config."""
    return BaseConfig(env_id=a.env, env_kwargs=tuple(a.env_kwargs)).env_kwargs


def check(env_id: str, extra: Sequence[str], her: bool) -> None:
    """What the cell on ``env_id`` with the suite's flags ``extra`` would refuse at its start, refused
    now (``softac.suite.precheck``, before any cell starts); flags it does not take are checked there."""
    from softac.cli.args import Parser

    argv = ["--env", env_id, "--seeds", "0", "--budget", "1", "--run-dir", "unused", *extra]
    a, _ = parser(Parser).parse_known_args(argv)
    settings(env_id, _env_kwargs(a), _given(a), her)


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    a, unknown = p.parse_known_args(argv)
    variant = "sb3-sac-her" if a.her else "sb3-sac"
    try:
        if unknown:
            raise SoftacError(f"{variant} cells do not take {' '.join(unknown)} (softac train flags after -- that "
                              f"SB3 has no counterpart of); drop them or run {variant} in a suite of its "
                              "own")  # fmt: skip
        if min(a.budget, a.eval_freq, a.eval_episodes, a.threads) < 1:
            raise SoftacError("--budget, --eval-freq, --eval-episodes and --threads must be positive")
        kwargs, given = _env_kwargs(a), _given(a)
        import torch

        torch.set_num_threads(a.threads)
        if a.tf32:
            torch.backends.cuda.matmul.allow_tf32 = True
        run(a.env, kwargs, a.seeds, a.budget, a.run_dir, a.eval_freq, a.eval_episodes, given, a.her, a.device)
    except SoftacError as exc:
        print(f"softac: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
