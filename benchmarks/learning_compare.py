"""Equal-budget learning comparison, softac vs Stable-Baselines3, on the same seeds.

    .venv/bin/python benchmarks/learning_compare.py --algo sac --env HalfCheetah-v5 --steps 50000 --seeds 0 1 2
    .venv/bin/python benchmarks/learning_compare.py --algo ppo --env CartPole-v1 --steps 100000 --seeds 0 1 2

    .venv/bin/python benchmarks/learning_compare.py --algo dqn --env CartPole-v1 --steps 500000 --loss huber

Both sides use identical hyper-parameters (SAC/TD3: those of ``softac bench``, learning_starts
5,000 for SAC and 25,000 for TD3 unless ``--learning-starts`` is given; PPO: ``ppo_settings``,
written out for both libraries; DQN: softac's preset for the environment, written out as SB3
arguments by ``dqn_settings``, with the preset's TD loss or ``--loss``; both in
``sb3_settings.py``) and are evaluated the same way at
the end: 10 deterministic episodes from reset seeds 100,000 + k, with the same evaluation code
applied to each library's policy. Every (library, seed) run is its own subprocess; ``--jobs 2
--threads 1`` runs two at a time with one torch thread each (both libraries get the same), which
halves the wall time on two cores without favouring either side. Prints one row per run, the
mean and standard deviation per library, and writes them to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from sb3_settings import dqn_settings, make_sb3_ppo, ppo_settings

from softac.runtime import available_cores, choose_threads, others_running


def evaluate_fn(act: Any, env_id: str, episodes: int = 10, seed: int = 100_000) -> float:
    env = gym.make(env_id)
    total = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(act(obs))
            ret += float(r)
            done = bool(term or trunc)
        total.append(ret)
    return float(np.mean(total))


def run_softac(
    algo: str, env_id: str, steps: int, seed: int, learning_starts: int, loss: str | None = None
) -> tuple[float, float]:
    from softac import registry

    settings: dict[str, Any] = {}
    if algo == "ppo":
        settings = ppo_settings(env_id)
    elif algo == "dqn":
        settings = dqn_settings(env_id, loss)[0]
    if algo != "ppo":
        settings["learning_starts"] = learning_starts
    settings.update(total_steps=steps, seed=seed, eval_freq=10**9, eval_episodes=1)
    agent = registry.get(algo).agent_cls(env_id, **settings)
    t0 = time.perf_counter()
    agent.learn(progress=False)
    elapsed = time.perf_counter() - t0
    return evaluate_fn(lambda o: agent.predict(o, deterministic=True)[0], env_id), elapsed


def run_sb3(
    algo: str, env_id: str, steps: int, seed: int, learning_starts: int, loss: str | None = None
) -> tuple[float, float]:
    from softac.bench import make_sb3

    norm: Any = None
    model: Any
    if algo == "ppo":
        model, norm = make_sb3_ppo(env_id, seed)
    elif algo == "dqn":
        import torch.nn.functional as F
        from stable_baselines3 import DQN

        settings, kwargs = dqn_settings(env_id, loss)
        if settings["loss"] == "mse":
            # SB3's DQN.train hard-codes F.smooth_l1_loss(current_q, target_q) (Huber, δ = 1). For
            # CleanRL's squared error, this worker process (which runs nothing but this DQN) calls
            # F.mse_loss there instead: same arguments, mean over the batch as CleanRL's.
            F.smooth_l1_loss = F.mse_loss  # type: ignore[assignment]
        kwargs["learning_starts"] = learning_starts
        model = DQN("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", verbose=0, **kwargs)
    else:
        model = make_sb3(algo, env_id, learning_starts, seed=seed)
    t0 = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - t0
    if norm is not None:  # evaluate on normalised observations with the statistics frozen, as softac does
        norm.training = False
        return evaluate_fn(lambda o: model.predict(norm.normalize_obs(o), deterministic=True)[0], env_id), elapsed
    return evaluate_fn(lambda o: model.predict(o, deterministic=True)[0], env_id), elapsed


def _worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    run = run_softac if args.worker == "softac" else run_sb3
    ret, elapsed = run(args.algo, args.env, args.steps, args.seed, args.learning_starts, args.loss)
    print("RESULT " + json.dumps({"return": ret, "minutes": elapsed / 60}), flush=True)


def _launch(args: argparse.Namespace, lib: str, seed: int, ls: int) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--worker", lib, "--algo", args.algo, "--env", args.env, "--steps", str(args.steps),
        "--seed", str(seed), "--learning-starts", str(ls), "--threads", str(args.threads),
    ] + (["--loss", args.loss] if args.loss else [])  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out = dict(json.loads(line[len("RESULT ") :]))
            out.update(library=lib, seed=seed)
            print(f"{lib:>7} {seed:>4} {out['return']:>10.1f} {out['minutes']:>8.1f}", flush=True)
            return out
    raise RuntimeError(f"{lib} seed {seed} failed:\n{proc.stderr[-3000:]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--algo", choices=["sac", "td3", "ppo", "dqn"], default="sac")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--learning-starts", type=int, default=None)
    p.add_argument("--loss", choices=["huber", "mse"], default=None, help="DQN's TD loss (default: the preset's)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads per run (0: the free cores divided among --jobs)"
    )
    p.add_argument("--out", type=Path, default=None, help="write the results here as JSON")
    p.add_argument("--worker", choices=["softac", "sb3"], help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        if args.threads <= 0:
            import torch

            args.threads = torch.get_num_threads()
        _worker(args)
        return 0
    if args.threads <= 0:  # the cores divided among the jobs: parallel runs never oversubscribe them
        args.threads = choose_threads(0, available_cores(), others_running(), args.jobs)
    default_ls = {"sac": 5_000, "td3": 25_000}.get(args.algo, 0)
    if args.algo == "dqn":
        default_ls = dqn_settings(args.env)[0]["learning_starts"]
    ls = args.learning_starts if args.learning_starts is not None else default_ls
    what = f"settings {ppo_settings(args.env)}" if args.algo == "ppo" else f"learning_starts {ls}"
    loss = f", loss {dqn_settings(args.env, args.loss)[0]['loss']}" if args.algo == "dqn" else ""
    print(f"{args.algo.upper()} on {args.env}, {args.steps} steps, {what}{loss}, "
          f"{args.jobs} job(s) at a time, threads {args.threads or 'default'}")  # fmt: skip
    print(f"{'library':>7} {'seed':>4} {'return':>10} {'minutes':>8}")
    # The slower library first, so two workers finish together instead of one idling at the end.
    jobs = [(lib, seed) for lib in ("sb3", "softac") for seed in args.seeds]
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda job: _launch(args, job[0], job[1], ls), jobs))
    summary: dict[str, Any] = {}
    for lib in ("softac", "sb3"):
        rets = [r["return"] for r in results if r["library"] == lib]
        sd = statistics.stdev(rets) if len(rets) > 1 else 0.0
        summary[lib] = {"mean": statistics.mean(rets), "std": sd, "returns": rets}
        print(f"{lib:>7} mean {statistics.mean(rets):.1f} ± {sd:.1f} over seeds {args.seeds}")
    if args.out is not None:
        record = {"config": {k: v for k, v in vars(args).items() if k not in ("worker", "seed", "out")},
                  "learning_starts": ls if args.algo != "ppo" else None,
                  "settings": ppo_settings(args.env) if args.algo == "ppo" else None,
                  "date": time.strftime("%Y-%m-%d"), "runs": results, "summary": summary,
                  "wall_minutes": (time.time() - t0) / 60}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
