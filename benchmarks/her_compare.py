"""SAC + HER in softac beside Stable-Baselines3's SAC + ``HerReplayBuffer``: the same goal task, budget,
seeds and settings, interleaved (each ``--chunk`` of steps trains one library, then the other), success
rate of the deterministic policy at the last step of 30 evaluation episodes (reset seeds 10000…10029)
after every chunk.

    python benchmarks/her_compare.py --env PointMaze_UMaze-v3 --max-episode-steps 100 --steps 30000 \\
        --seeds 0,1,2 --hidden 256,256 --batch 256 --learning-starts 1000

Settings shared by both: γ, one learning rate for actor, critics and α (rl-zoo3's FetchReach values
by default), k = 4 ``future`` goals, one update per step, one torch thread. Each line reports the
success rate, the training wall-clock and CPU time so far (evaluation excluded) and the load average;
each seed ends with a SUMMARY line (first step with success ≥ 0.9, final success, times) and the run with
the median ratio of the libraries' training wall-clock times.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from softac import SAC
from softac.envs import make_env


def success_rate(predict: Callable[[Any], np.ndarray], make: Callable[[], gym.Env], episodes: int = 30) -> float:
    env, ok = make(), 0.0
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i)
        info: dict[str, Any] = {}
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(predict(obs))
            done = terminated or truncated
        ok += float(info.get("is_success", info.get("success", 0.0)))
    env.close()
    return ok / episodes


Learner = tuple[Callable[[int], None], Callable[[Any], np.ndarray]]


def build(lib: str, a: argparse.Namespace, seed: int, hidden: tuple[int, ...], kwargs: list[tuple[str, Any]],
          make: Callable[[], gym.Env]) -> Learner:  # fmt: skip
    """(learn up to a total step count, deterministic action) for one library, with the shared settings."""
    if lib == "softac":
        agent = SAC(a.env, env_kwargs=dict(kwargs), seed=seed, her=True, total_steps=a.steps,
                    learning_starts=a.learning_starts, gamma=a.gamma, actor_lr=a.lr, critic_lr=a.lr,
                    alpha_lr=a.lr, batch_size=a.batch, hidden_sizes=hidden, eval_freq=10**9, threads=1,
                    checkpoint_freq=0, device="cpu")  # fmt: skip

        def learn(steps: int) -> None:
            agent.learn(total_steps=steps, progress=False)

        def predict(obs: Any) -> np.ndarray:
            return agent.predict(obs, deterministic=True)[0]

        return learn, predict
    if lib != "sb3":
        raise SystemExit(f"--libs: unknown library {lib!r}; use softac and/or sb3")
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3 import HerReplayBuffer

    model = SB3SAC("MultiInputPolicy", make(), replay_buffer_class=HerReplayBuffer,
                   replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                   learning_starts=a.learning_starts, gamma=a.gamma, learning_rate=a.lr,
                   batch_size=a.batch, policy_kwargs={"net_arch": list(hidden)}, seed=seed,
                   device="cpu")  # fmt: skip

    def learn_sb3(steps: int) -> None:
        model.learn(total_timesteps=steps - model.num_timesteps, reset_num_timesteps=False)

    def predict_sb3(obs: Any) -> np.ndarray:
        return np.asarray(model.predict(obs, deterministic=True)[0])

    return learn_sb3, predict_sb3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--env", default="PointMaze_UMaze-v3")
    p.add_argument("--max-episode-steps", type=int, default=100)
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--chunk", type=int, default=5_000)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--hidden", default="256,256")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma", type=float, default=0.95)
    p.add_argument("--libs", default="softac,sb3")
    p.add_argument("--stacked", action="store_true",
                   help="softac trains every --seeds as learners in one process (how softac runs seeds), SB3 one "
                        "model per seed in turn; the wall-clock ratio is then of the whole set of seeds")
    a = p.parse_args()
    torch.set_num_threads(1)
    kwargs = [("max_episode_steps", a.max_episode_steps)]
    hidden = tuple(int(h) for h in a.hidden.split(","))

    def make() -> gym.Env:
        return make_env(a.env, kwargs)

    libs = a.libs.split(",")
    if a.stacked:
        return stacked(a, hidden, kwargs, make)
    ratios: list[float] = []
    for seed in (int(s) for s in a.seeds.split(",")):
        learners = {lib: build(lib, a, seed, hidden, kwargs, make) for lib in libs}
        wall = dict.fromkeys(libs, 0.0)
        cpu = dict.fromkeys(libs, 0.0)
        first: dict[str, int | None] = dict.fromkeys(libs, None)
        rate = dict.fromkeys(libs, 0.0)
        # Interleaved: every chunk trains each library in turn, so a change in the shared machine's load
        # falls on both within minutes rather than on whichever ran later.
        for done in range(a.chunk, a.steps + 1, a.chunk):
            for lib in libs:
                learn, predict = learners[lib]
                t, c = time.perf_counter(), time.process_time()
                learn(done)
                wall[lib] += time.perf_counter() - t
                cpu[lib] += time.process_time() - c
                rate[lib] = success_rate(predict, make)
                if first[lib] is None and rate[lib] >= 0.9:
                    first[lib] = done
                print(f"{lib} {a.env} seed {seed} step {done} success {rate[lib]:.2f} train-wall {wall[lib]:.0f}s "
                      f"train-cpu {cpu[lib]:.0f}s load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        for lib in libs:
            print(f"SUMMARY {lib} seed {seed} first>=0.9 {first[lib]} final {rate[lib]:.2f} "
                  f"train-wall {wall[lib]:.0f}s train-cpu {cpu[lib]:.0f}s", flush=True)  # fmt: skip
        if len(libs) == 2 and wall[libs[0]] > 0:
            ratios.append(wall[libs[1]] / wall[libs[0]])
    if ratios:
        print(f"median train-wall ratio {libs[1]}/{libs[0]}: {float(np.median(ratios)):.2f} over {len(ratios)} seeds")
    return 0


def stacked(a: argparse.Namespace, hidden: tuple[int, ...], kwargs: list[tuple[str, Any]],
            make: Callable[[], gym.Env]) -> int:  # fmt: skip
    """``--stacked``: softac's seeds as learners of one agent against SB3's one model per seed, chunk by
    chunk in turn; each seed's success on the same 30 evaluation episodes as ``success_rate``."""
    from softac.evaluate import evaluate

    seeds = [int(s) for s in a.seeds.split(",")]
    agent = SAC(a.env, env_kwargs=dict(kwargs), seeds=seeds, her=True, total_steps=a.steps,
                learning_starts=a.learning_starts, gamma=a.gamma, actor_lr=a.lr, critic_lr=a.lr, alpha_lr=a.lr,
                batch_size=a.batch, hidden_sizes=hidden, eval_freq=10**9, threads=1, checkpoint_freq=0,
                device="cpu")  # fmt: skip
    sb3 = [build("sb3", a, seed, hidden, kwargs, make) for seed in seeds]
    wall = {"softac": 0.0, "sb3": 0.0}
    first: dict[tuple[str, int], int | None] = {(lib, s): None for lib in wall for s in seeds}
    rates: dict[str, list[float]] = {}
    envs = [make() for _ in seeds]
    for done in range(a.chunk, a.steps + 1, a.chunk):
        t = time.perf_counter()
        agent.learn(total_steps=done, progress=False)
        wall["softac"] += time.perf_counter() - t
        success = np.zeros((len(seeds), 30))
        evaluate(agent, envs, 30, [10_000] * len(seeds), success=success)
        rates["softac"] = [float(np.nan_to_num(row).mean()) for row in success]
        t = time.perf_counter()
        for learn, _ in sb3:
            learn(done)
        wall["sb3"] += time.perf_counter() - t
        rates["sb3"] = [success_rate(predict, make) for _, predict in sb3]
        for lib, values in rates.items():
            for seed, rate in zip(seeds, values, strict=True):
                if first[(lib, seed)] is None and rate >= 0.9:
                    first[(lib, seed)] = done
            print(f"{lib} {a.env} step {done} success {' '.join(f'{r:.2f}' for r in values)} "
                  f"train-wall {wall[lib]:.0f}s load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for lib in wall:
        reached = " ".join(str(first[(lib, s)]) for s in seeds)
        print(f"SUMMARY {lib} seeds {a.seeds} first>=0.9 {reached} final "
              f"{' '.join(f'{r:.2f}' for r in rates[lib])} train-wall {wall[lib]:.0f}s", flush=True)  # fmt: skip
    print(f"train-wall ratio sb3/softac over the {len(seeds)} seeds: {wall['sb3'] / wall['softac']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
