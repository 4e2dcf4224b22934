"""``softac bench``: softac vs Stable-Baselines3 training throughput, side by side in one run.

Each measurement is a fresh subprocess (so peak RSS is per run and no state leaks between them):
``warmup`` steps of uniform random actions fill the buffer (``learning_starts``), then ``steps``
environment steps with one gradient step each are timed. Rounds alternate softac and SB3 so
both see the same machine load; the table gives per-round figures, the medians and the ratio of
medians. Identical hyper-parameters on both sides: batch 256, 256×256 networks, 1M buffer,
lr 3e-4, γ 0.99, τ 0.005, automatic α (SAC) / policy delay 2, smoothing 0.2/0.5, exploration
σ 0.1 (TD3), both at their default torch thread settings.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from softac.errors import SoftacError


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


PRE_UPDATES = 20  # untimed steps with updates before softac's timed window


def run_softac(algo: str, env_id: str, warmup: int, steps: int, extra: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    import softac.train.shell
    from softac import registry

    agent = registry.get(algo).agent_cls(
        env_id, learning_starts=warmup, total_steps=warmup, eval_freq=10**9, eval_episodes=1, **extra
    )
    # The timed window holds environment steps and updates only, as on SB3's side: no evaluation
    # (the training loop's final one would add ~1,000 policy steps to softac's time alone).
    softac.train.shell.evaluate = lambda agent, envs, *args, **kwargs: np.zeros((len(envs), 1))
    agent.learn(progress=False)  # warm-up: random actions only, no updates
    # A few updates before the clock starts: first-update costs (optimizer state, buffers and, with
    # compile_update, the compilation itself) are not throughput; compile time is reported apart.
    t0 = time.perf_counter()
    agent.learn(total_steps=warmup + PRE_UPDATES, progress=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    agent.learn(total_steps=warmup + PRE_UPDATES + steps, progress=False)
    elapsed = time.perf_counter() - t0
    assert agent.updates >= PRE_UPDATES + steps - 1, "the timed window must consist of gradient steps"
    return {
        "steps_per_s": steps / elapsed,
        "first_updates_s": first,
        "peak_rss_mb": _rss_mb(),
        "buffer_mb": agent.buffer.storage.nbytes / 1e6,
        "device": str(agent.device),
    }


def make_sb3(algo: str, env_id: str, learning_starts: int, seed: int | None = None) -> Any:
    """An SB3 SAC/TD3 model with softac's defaults (the only settings that differ from SB3's own
    are the TD3 learning rate and network, 1e-3 and 400×300 in SB3)."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(env_id)
    common: dict[str, Any] = dict(
        learning_starts=learning_starts, batch_size=256, buffer_size=1_000_000, learning_rate=3e-4, gamma=0.99,
        tau=0.005, train_freq=1, gradient_steps=1, policy_kwargs={"net_arch": [256, 256]}, device="cpu",
        seed=seed, verbose=0,
    )  # fmt: skip
    if algo == "sac":
        return SAC("MlpPolicy", env, **common)
    n = env.action_space.shape[0]  # type: ignore[index]
    noise = NormalActionNoise(np.zeros(n), 0.1 * np.ones(n))
    return TD3("MlpPolicy", env, action_noise=noise, policy_delay=2, **common)


def run_sb3(algo: str, env_id: str, warmup: int, steps: int) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    class Timer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = 0.0
            self.elapsed = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps == warmup:
                self.t0 = time.perf_counter()
            elif self.num_timesteps == warmup + steps:
                self.elapsed = time.perf_counter() - self.t0
            return True

    model = make_sb3(algo, env_id, warmup)
    timer = Timer()
    model.learn(warmup + steps + 1, callback=timer)
    buf = model.replay_buffer
    fields = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    nbytes = sum(getattr(buf, k).nbytes for k in fields)
    return {"steps_per_s": steps / timer.elapsed, "peak_rss_mb": _rss_mb(), "buffer_mb": nbytes / 1e6}


def _worker(args: argparse.Namespace) -> int:
    extra = json.loads(args.softac_options)
    if args.worker == "softac":
        out = run_softac(args.algo, args.env, args.warmup, args.steps, extra)
    else:
        out = run_sb3(args.algo, args.env, args.warmup, args.steps)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def _measure(which: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "softac.bench", "--worker", which, "--algo", args.algo, "--env", args.env,
        "--warmup", str(args.warmup), "--steps", str(args.steps), "--softac-options", args.softac_options,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"{which} benchmark failed:\n{proc.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="softac bench", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--algo", choices=["sac", "td3"], default="sac")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--warmup", type=int, default=1000, help="random-action steps before timing (default 1000)")
    p.add_argument("--steps", type=int, default=1500, help="timed steps with updates per run (default 1500)")
    p.add_argument("--rounds", type=int, default=3, help="alternating softac/SB3 rounds (default 3)")
    p.add_argument("--no-sb3", action="store_true", help="measure softac only")
    p.add_argument("--softac-options", default="{}", help='extra softac config as JSON, e.g. \'{"threads": 1}\'')
    p.add_argument(
        "--compile-update", action="store_true", help="softac with compile_update (compilation is not timed)"
    )
    p.add_argument("--worker", choices=["softac", "sb3"], help=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compile_update:
        args.softac_options = json.dumps({**json.loads(args.softac_options), "compile_update": True})
    if args.worker:
        return _worker(args)
    have_sb3 = not args.no_sb3
    if have_sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print("stable-baselines3 is not installed (pip install softac[bench]); measuring softac only")
            have_sb3 = False
    if args.rounds <= 0 or args.steps <= 0 or args.warmup < 256:
        raise SoftacError("--rounds and --steps must be positive and --warmup at least 256 (one batch)")
    results: dict[str, list[dict[str, Any]]] = {"softac": [], "sb3": []}
    print(f"{args.algo.upper()} on {args.env}: {args.warmup} warm-up steps, then {args.steps} timed steps "
          f"(1 update each), {args.rounds} alternating rounds")  # fmt: skip
    print(f"{'round':>5} {'softac steps/s':>15} {'SB3 steps/s':>12} {'ratio':>7}")
    for r in range(args.rounds):
        ours = _measure("softac", args)
        results["softac"].append(ours)
        theirs = _measure("sb3", args) if have_sb3 else None
        if theirs:
            results["sb3"].append(theirs)
            ratio = ours["steps_per_s"] / theirs["steps_per_s"]
            print(f"{r + 1:>5} {ours['steps_per_s']:>15.1f} {theirs['steps_per_s']:>12.1f} {ratio:>7.2f}", flush=True)
        else:
            print(f"{r + 1:>5} {ours['steps_per_s']:>15.1f} {'-':>12} {'-':>7}", flush=True)
    med = {k: statistics.median(x["steps_per_s"] for x in v) for k, v in results.items() if v}
    rss = {k: max(x["peak_rss_mb"] for x in v) for k, v in results.items() if v}
    buf = {k: v[0]["buffer_mb"] for k, v in results.items() if v}
    print(f"median softac: {med['softac']:.1f} steps/s   peak RSS {rss['softac']:.0f} MB   "
          f"1M-transition buffer {buf['softac']:.0f} MB   (untimed first {PRE_UPDATES} updates: "
          f"{statistics.median(x['first_updates_s'] for x in results['softac']):.1f} s)")  # fmt: skip
    if "sb3" in med:
        print(f"median SB3:    {med['sb3']:.1f} steps/s   peak RSS {rss['sb3']:.0f} MB   "
              f"1M-transition buffer {buf['sb3']:.0f} MB")  # fmt: skip
        ratios = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(results["softac"], results["sb3"], strict=True)]
        print(f"softac/SB3 ratio of medians: {med['softac'] / med['sb3']:.2f}   "
              f"median of per-round ratios: {statistics.median(ratios):.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
