"""One SAC gradient update from images: softac against Stable-Baselines3 on the same CPU, side by side.

    PYTHONPATH=src .venv/bin/python benchmarks/pixel_update.py            # 84×84×3, 3 frames, batch 256
    PYTHONPATH=src .venv/bin/python benchmarks/pixel_update.py --side 64 --batch 128 --rounds 5
    PYTHONPATH=src .venv/bin/python benchmarks/pixel_update.py --profile 2   # where softac's update spends it

DrQ-v2's setting (Yarats et al. 2021): 84×84 RGB frames, 3 stacked (9 channels), batch 256; MLPs
of 256, 256 for every library here. Each replay buffer first holds the same number of random
transitions (no update during the fill); then every round times ``--updates`` gradient steps of
each configuration, in an order rotated every round, and prints the median seconds per update and
the median of the per-round ratios (one round's figures were measured minutes apart at most, so
the ratio is fairer than a ratio of medians on a shared machine). The configurations:

- softac ``SAC(frame_stack=3, augment="shift")``: the DrQ-v2 encoder (``softac.nn.encoders``)
  shared by actor and critics, trained by the critic loss, actor and target reading its features
  detached, no target encoder; each frame stored once. Also with ``augment="none"``: SB3 has no
  augmentation, so that row is the like-for-like one.
- SB3 ``CnnPolicy``, as users run it: NatureCNN, one extractor for the actor and another for the
  critics (SAC's default ``share_features_extractor=False``) and a target copy; the environment
  gives (H, W, 9) stacked uint8 frames, which SB3 transposes itself (``VecTransposeImage``). A
  different, smaller network: the ratio compares what users get, not equal work.
- SB3 with softac's encoder: the same conv stack + linear 50 + LayerNorm + tanh as a
  ``BaseFeaturesExtractor``, ``share_features_extractor=True``. Equal network, different wiring:
  SB3's shared extractor learns from the *actor* loss (its critic reads it under
  ``set_grad_enabled(False)``, ``ContinuousCritic.forward``) and its critic target keeps a Polyak
  copy of the extractor; softac's (DrQ's) learns from the critic loss. Encoder passes per update:
  SB3 5 forwards + 1 backward, softac 3 forwards + 1 backward.

Torch's intra-op threads are set equal for every library (``--threads``, default 2) before each
timed block. ``--profile N`` runs N softac updates under ``torch.profiler`` and prints the
operators with the most self CPU time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC as SB3SAC
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from softac import SAC
from softac.data.pixel_replay import PixelReplay

ACT_DIM = 6  # cheetah-run's (DrQ-v2's benchmark suite); the action width barely moves the cost


class Frames(gym.Env):
    """Frames drawn from a fixed pool of random images (stepping costs nothing beside the update).
    ``stack`` = 1: one (side, side, 3) frame, stacked by softac; ``stack`` = 3: the last three
    frames concatenated on the channel axis (side, side, 9), the stacked observation SB3 reads."""

    def __init__(self, side: int, stack: int, episode: int = 250) -> None:
        self.pool = np.random.default_rng(0).integers(0, 256, (32, side, side, 3), dtype=np.uint8)
        self.stack, self.episode = stack, episode
        self.observation_space = gym.spaces.Box(0, 255, (side, side, 3 * stack), np.uint8)
        self.action_space = gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32)

    def _obs(self) -> np.ndarray:
        return np.concatenate(self.hist, axis=-1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        self.hist = [self.pool[0]] * self.stack
        return self._obs(), {}

    def step(self, action: np.ndarray) -> Any:
        self.t += 1
        self.hist = [*self.hist[1:], self.pool[self.t % len(self.pool)]]
        return self._obs(), float(-np.abs(action).sum()), False, self.t >= self.episode, {}


class DrQEncoder(BaseFeaturesExtractor):
    """softac's encoder for SB3: 4 × [conv 3×3, 32 filters, stride 2 then 1, ReLU] → linear → LayerNorm
    → tanh. SB3 has already divided the pixels by 255 (``normalize_images``); softac scales to
    [−0.5, 0.5], so 0.5 is subtracted here."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 50) -> None:
        super().__init__(observation_space, features_dim)
        c, h, w = observation_space.shape
        self.convs = nn.ModuleList(nn.Conv2d(c if i == 0 else 32, 32, 3, stride=2 if i == 0 else 1) for i in range(4))
        with torch.no_grad():
            flat = self._conv(torch.zeros(1, c, h, w)).shape[1]
        self.fc, self.ln = nn.Linear(flat, features_dim), nn.LayerNorm(features_dim)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        return x.flatten(1)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.ln(self.fc(self._conv(observations - 0.5))))


def make_softac(args: argparse.Namespace, augment: str) -> tuple[Any, Callable[[], None], int]:
    agent = SAC(lambda: Frames(args.side, 1), frame_stack=3, augment=augment, image_features=50,
                hidden_sizes=(256, 256), batch_size=args.batch, buffer_size=args.fill, total_steps=args.fill,
                learning_starts=args.fill, eval_freq=10 * args.fill, eval_episodes=1, threads=args.threads,
                compile_update=False, seed=0)  # fmt: skip
    agent.learn(total_steps=args.fill, progress=False)  # ends with one evaluation episode (learn always does)
    assert len(agent.buffer) == args.fill and agent.updates == 0

    def run() -> None:
        metrics: dict[str, torch.Tensor] = {}
        for _ in range(args.updates):
            metrics = agent.update()
        float(sum(v.float().sum() for v in metrics.values()))  # a host read: every step is finished

    buf = agent.buffer
    assert isinstance(buf, PixelReplay)
    nbytes = buf.frames.frames.nbytes + buf.frames.index.nbytes + buf.storage.nbytes
    return agent, run, nbytes


def make_sb3(args: argparse.Namespace, same_encoder: bool) -> tuple[Any, Callable[[], None], int]:
    kwargs: dict[str, Any] = {"net_arch": [256, 256]}
    if same_encoder:
        kwargs |= {"features_extractor_class": DrQEncoder, "features_extractor_kwargs": {"features_dim": 50},
                   "share_features_extractor": True}  # fmt: skip
    model = SB3SAC("CnnPolicy", Frames(args.side, 3), buffer_size=args.fill, learning_starts=args.fill,
                   batch_size=args.batch, policy_kwargs=kwargs, device="cpu", seed=0, verbose=0)  # fmt: skip
    # learning_starts = the fill: SB3 trains only once num_timesteps > learning_starts.
    model.learn(total_timesteps=args.fill)
    rb = model.replay_buffer
    assert rb is not None and rb.full and model._n_updates == 0

    def run() -> None:
        model.train(gradient_steps=args.updates, batch_size=args.batch)  # .item() of its losses: synchronous

    return model, run, rb.observations.nbytes + rb.next_observations.nbytes


def profile_softac(args: argparse.Namespace) -> None:
    agent = make_softac(args, args.augment_profile)[0]
    torch.set_num_threads(args.threads)
    agent.update()  # first call: allocations
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.profile):
            agent.update()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=84, help="frame side (square, 3 channels)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=3, help="gradient steps per configuration per round")
    parser.add_argument("--fill", type=int, default=1000, help="random transitions in each replay buffer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, help="profile this many softac updates, then stop")
    parser.add_argument("--augment-profile", default="shift", choices=["shift", "none"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile_softac(args)
        return
    load0 = os.getloadavg()
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s) for every "
          f"library; load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")  # fmt: skip
    print(f"frames {args.side}×{args.side}×3 stacked 3 (9 channels), batch {args.batch}, MLPs 256×256, "
          f"{args.fill} random transitions in each buffer, {args.updates} updates × {args.rounds} rounds")  # fmt: skip
    built = {
        "softac shift": make_softac(args, "shift"),
        "softac none": make_softac(args, "none"),
        "SB3 CnnPolicy": make_sb3(args, same_encoder=False),
        "SB3 same encoder": make_sb3(args, same_encoder=True),
    }
    names = list(built)
    for name in names:  # warm-up: first-call allocations, not timed
        torch.set_num_threads(args.threads)
        built[name][1]()
    secs: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            torch.set_num_threads(args.threads)
            start = time.perf_counter()
            built[name][1]()
            secs[name].append((time.perf_counter() - start) / args.updates)
        print(f"round {r + 1}: " + ", ".join(f"{n} {secs[n][-1]:.3f} s" for n in names), flush=True)
    med = {name: statistics.median(s) for name, s in secs.items()}
    print(f"\n{'configuration':<18} {'s/update':>9} {'replay B/transition':>20}")
    for name in names:
        print(f"{name:<18} {med[name]:>9.3f} {built[name][2] / args.fill:>20,.0f}")
    print("(softac: frame ring + its indices + float32 rows; SB3: observations + next_observations arrays, "
          "optimize_memory_usage=False)")  # fmt: skip
    for ours in ("softac shift", "softac none"):
        for theirs in ("SB3 CnnPolicy", "SB3 same encoder"):
            ratios = [b / a for a, b in zip(secs[ours], secs[theirs], strict=True)]
            m = statistics.median(ratios)
            said = f"{m:.2f}× faster" if m >= 1 else f"{1 / m:.2f}× slower"
            print(f"{ours} is {said} than {theirs}: median SB3/softac time ratio {m:.2f} "
                  f"(per round {', '.join(f'{x:.2f}' for x in ratios)})")  # fmt: skip
    print("Architectures differ against SB3 CnnPolicy (NatureCNN, separate actor/critic extractors); 'same "
          "encoder' is softac's network, with SB3's wiring (extractor learnt from the actor loss, a target "
          "copy). SB3 has no augmentation: 'softac none' is the like-for-like row.")  # fmt: skip
    load1 = os.getloadavg()
    print(f"load average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
