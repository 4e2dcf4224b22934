"""``softac bench``: training throughput, softac vs Stable-Baselines3, side by side in one run.

Each measurement is a fresh subprocess (so peak RSS is per run and no state leaks between them):
``warmup`` steps of uniform random actions fill the buffer (``learning_starts``), then ``steps``
environment steps with one gradient step each are timed. Rounds alternate the variants (softac,
SB3, and optionally another softac checkout given by ``--baseline-src``, e.g. an older version)
so all see the same machine load; the table gives per-round figures, medians and the ratios of
medians to SB3. Identical hyper-parameters on both sides: batch 256, 256×256 networks, 1M
buffer, lr 3e-4, γ 0.99, τ 0.005, automatic α (SAC) / policy delay 2, smoothing 0.2/0.5,
exploration σ 0.1 (TD3), both at their default torch thread settings.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from softac.cli.bench import measure_cli
from softac.errors import SoftacError

SB3_ALGOS = ("sac", "td3", "ddpg")  # the algorithms with a Stable-Baselines3 counterpart here
PRE_UPDATES = 20  # untimed steps with updates before softac's timed window


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
    # compile_update or CUDA graphs, the compilation or capture) are not throughput; their time is
    # reported apart.
    t0 = time.perf_counter()
    agent.learn(total_steps=warmup + PRE_UPDATES, progress=False)
    first = time.perf_counter() - t0
    before = agent.updates
    t0 = time.perf_counter()
    agent.learn(total_steps=warmup + PRE_UPDATES + steps, progress=False)
    elapsed = time.perf_counter() - t0
    # Every update the algorithm's schedule owes for the window was made in it: one per step at
    # utd 1, one per train_freq steps for DQN.
    assert agent.updates > before and agent.updates_due() == 0, "the timed window must hold its gradient steps"
    learners = getattr(agent, "learners", 1)
    return {
        "steps_per_s": steps * learners / elapsed,  # environment steps of all learners together
        "first_updates_s": first,
        "peak_rss_mb": _rss_mb(),
        "buffer_mb": agent.buffer.storage.nbytes / 1e6 / learners,
        "device": str(agent.device),
    }


def make_sb3(algo: str, env_id: str, learning_starts: int, seed: int | None = None, device: str = "cpu",
             lib: str = "sb3") -> Any:  # fmt: skip
    """An SB3 model with softac's defaults (the only settings that differ from SB3's own are the
    TD3/DDPG learning rate and network, 1e-3 and 400×300 in SB3). ``lib="sbx"``: the same model
    from SBX (Stable-Baselines-Jax, ``pip install sbx-rl``), which mirrors SB3's API on JAX."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise

    # By name: sbx is optional and in no extra (JAX is large), so neither mypy nor an import may need it.
    mod = importlib.import_module("sbx" if lib == "sbx" else "stable_baselines3")
    DDPG, SAC, TD3 = mod.DDPG, mod.SAC, mod.TD3

    if algo not in SB3_ALGOS:
        raise SoftacError(f"no Stable-Baselines3 counterpart of {algo} in softac bench; pass --no-sb3")
    env = gym.make(env_id)
    common: dict[str, Any] = dict(
        learning_starts=learning_starts, batch_size=256, buffer_size=1_000_000, learning_rate=3e-4, gamma=0.99,
        tau=0.005, train_freq=1, gradient_steps=1, policy_kwargs={"net_arch": [256, 256]}, device=device,
        seed=seed, verbose=0,
    )  # fmt: skip
    if algo == "sac":
        return SAC("MlpPolicy", env, **common)
    n = env.action_space.shape[0]  # type: ignore[index]
    noise = NormalActionNoise(np.zeros(n), 0.1 * np.ones(n))
    if algo == "ddpg":
        return DDPG("MlpPolicy", env, action_noise=noise, **common)
    return TD3("MlpPolicy", env, action_noise=noise, policy_delay=2, **common)


def run_sb3(algo: str, env_id: str, warmup: int, steps: int, device: str, lib: str = "sb3") -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import Logger

    class Timer(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = 0.0
            self.elapsed = 0.0

        # As softac's side: the first PRE_UPDATES steps with updates are not timed (SBX's JIT
        # compilation of its update happens there; SB3 has no such cost but is timed alike).
        def _on_step(self) -> bool:
            if self.num_timesteps == warmup + PRE_UPDATES:
                self.t0 = time.perf_counter()
            elif self.num_timesteps == warmup + PRE_UPDATES + steps:
                self.elapsed = time.perf_counter() - self.t0
            return True

    model = make_sb3(algo, env_id, warmup, device=device, lib=lib)
    model.set_logger(Logger(None, []))  # SB3's default one leaves an empty $TMPDIR/SB3-<date-time> per run
    timer = Timer()
    model.learn(warmup + PRE_UPDATES + steps + 1, callback=timer)
    buf = model.replay_buffer
    fields = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    nbytes = sum(getattr(buf, k).nbytes for k in fields)
    return {"steps_per_s": steps / timer.elapsed, "peak_rss_mb": _rss_mb(), "buffer_mb": nbytes / 1e6,
            "device": str(model.device)}  # fmt: skip


@dataclass
class Variant:
    """One column of the table: a library, its options, and where its code comes from."""

    label: str
    library: str  # "softac", "sb3", "sbx" or "cli" (whole `softac train` processes, softac.cli.bench)
    options: dict[str, Any] = field(default_factory=dict)  # softac config fields
    device: str = "cpu"  # SB3's device (softac's is in options)
    src: str | None = None  # PYTHONPATH for another softac checkout
    results: list[dict[str, Any]] = field(default_factory=list)


def measure(variant: Variant, algo: str, env_id: str, warmup: int, steps: int, timeout: float | None = None
            ) -> dict[str, Any]:  # fmt: skip
    """One run of ``variant`` in a fresh subprocess. A baseline checkout runs its own bench worker
    (its ``src`` first on PYTHONPATH), so only the arguments every version takes are passed to it."""
    cmd = [
        sys.executable, "-m", "softac.bench", "--worker", variant.library, "--algo", algo, "--env", env_id,
        "--warmup", str(warmup), "--steps", str(steps), "--softac-options", json.dumps(variant.options),
    ]  # fmt: skip
    env = dict(os.environ)
    if variant.src:
        env["PYTHONPATH"] = variant.src + os.pathsep + env.get("PYTHONPATH", "")
    if variant.library == "cli":
        return measure_cli(algo, env_id, warmup, steps, variant.options, env, timeout)
    if variant.library in ("sb3", "sbx"):
        cmd += ["--sb3-device", variant.device]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    raise RuntimeError(f"{variant.label} benchmark failed:\n{proc.stderr[-3000:]}")


def _worker(args: argparse.Namespace) -> int:
    extra = json.loads(args.softac_options)
    if args.worker == "softac":
        out = run_softac(args.algo, args.env, args.warmup, args.steps, extra)
    else:
        out = run_sb3(args.algo, args.env, args.warmup, args.steps, args.sb3_device, lib=args.worker)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


def report(variants: list[Variant]) -> None:
    """Medians, peak RSS and the ratio of medians to the SB3, SBX and baseline columns (when there are)."""
    refs = [v for v in variants if (v.library in ("sb3", "sbx") or v.src) and v.results]
    for v in variants:
        if not v.results:
            continue
        med = statistics.median(r["steps_per_s"] for r in v.results)
        line = f"median {v.label}: {med:.1f} steps/s"
        if v.library != "cli":  # whole processes: their memory is not measured
            rss = max(r["peak_rss_mb"] for r in v.results)
            line += f"   peak RSS {rss:.0f} MB   1M-transition buffer {v.results[0]['buffer_mb']:.0f} MB"
        if "first_updates_s" in v.results[0]:
            first = statistics.median(r["first_updates_s"] for r in v.results)
            line += f"   (untimed first {PRE_UPDATES} updates: {first:.1f} s)"
        print(line)
        for ref in refs if v.library not in ("sb3", "sbx") and not v.src else []:
            ref_med = statistics.median(r["steps_per_s"] for r in ref.results)
            ratios = [a["steps_per_s"] / b["steps_per_s"] for a, b in zip(v.results, ref.results, strict=False)]
            print(f"{v.label}/{ref.label} ratio of medians: {med / ref_med:.2f}   "
                  f"median of per-round ratios: {statistics.median(ratios):.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="softac bench", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--algo", default="sac", help=f"algorithm (SB3 comparison for {', '.join(SB3_ALGOS)})")
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--warmup", type=int, default=1000, help="random-action steps before timing (default 1000)")
    p.add_argument("--steps", type=int, default=1500, help="timed steps with updates per run (default 1500)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--no-sb3", action="store_true", help="measure softac only (no SB3 and no SBX column)")
    p.add_argument("--no-cli", action="store_true",
                   help="skip the `softac train` column (two whole processes per round, the difference)")  # fmt: skip
    p.add_argument("--softac-options", default="{}", help='extra softac config as JSON, e.g. \'{"threads": 1}\'')
    p.add_argument("--compile-update", action="store_true", help="softac with compile_update (not timed)")
    p.add_argument("--with-compiled", action="store_true",
                   help="a second softac column with compile_update, beside the eager one: what runs of 50,000 "
                   "updates or more get by default on the CPU (its compilation is reported, not timed)")  # fmt: skip
    p.add_argument("--device", default=None, help="softac's and SB3's torch device (default: softac auto, SB3 cpu)")
    p.add_argument("--baseline-src", default=None, metavar="DIR",
                   help="also time the softac whose src/ is DIR (e.g. an older version), side by side")  # fmt: skip
    p.add_argument("--baseline-options", default="{}", metavar="JSON",
                   help="config fields for the baseline only, over softac's (e.g. its default against this "
                   "softac's --compile-update: '{\"compile_update\": false}')")  # fmt: skip
    p.add_argument("--no-sbx", action="store_true", help="skip the SBX (JAX) column even where sbx-rl is installed")
    p.add_argument("--worker", choices=["softac", "sb3", "sbx"], help=argparse.SUPPRESS)
    p.add_argument("--sb3-device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    import softac.algos  # noqa: F401  (registers every algorithm; imported late, as the worker's are)
    from softac import registry

    family = registry.get(args.algo).family
    if family != "off-policy":
        raise SoftacError(f"softac bench times off-policy steps (one update per environment step); {args.algo} is "
                          f"{family}: compare it with benchmarks/learning_compare.py")  # fmt: skip
    try:
        options = json.loads(args.softac_options)
    except ValueError as exc:
        raise SoftacError(f"--softac-options is not JSON: {exc}") from None
    # Explicit either way: the "default" row is the eager update (what runs under 1M steps get),
    # even when --softac-options sets a long total_steps.
    options["compile_update"] = bool(args.compile_update) or bool(options.get("compile_update", False))
    if args.device:
        options["device"] = args.device
    if args.rounds <= 0 or args.steps <= 0 or args.warmup < 256:
        raise SoftacError("--rounds and --steps must be positive and --warmup at least 256 (one batch)")
    variants = [Variant("softac", "softac", options)]
    if args.with_compiled and not options["compile_update"]:
        variants.append(Variant("softac compiled", "softac", {**options, "compile_update": True}))
    if not args.no_cli:
        variants.append(Variant("softac train", "cli", options))
    if args.baseline_src:
        base_opts = {k: v for k, v in options.items() if k not in ("cuda_graph",)}
        try:
            base_opts.update(json.loads(args.baseline_options))
        except ValueError as exc:
            raise SoftacError(f"--baseline-options is not JSON: {exc}") from None
        variants.append(Variant("baseline", "softac", base_opts, src=args.baseline_src))
    if not args.no_sb3:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            print("stable-baselines3 is not installed (pip install softac[bench]); measuring softac only")
        else:
            if args.algo not in SB3_ALGOS:
                raise SoftacError(f"no Stable-Baselines3 counterpart of {args.algo} in softac bench; pass --no-sb3")
            variants.append(Variant("SB3", "sb3", device=args.device or "cpu"))
    if not (args.no_sbx or args.no_sb3) and args.algo in SB3_ALGOS and importlib.util.find_spec("sbx") is not None:
        # Optional and not in any extra (JAX is large): the column appears where `pip install sbx-rl` ran.
        variants.append(Variant("SBX", "sbx", device=args.device or "cpu"))
    print(f"{args.algo.upper()} on {args.env}: {args.warmup} warm-up steps, then {args.steps} timed steps "
          f"(with the updates the algorithm schedules: one per step at utd 1), {args.rounds} alternating "
          "rounds")  # fmt: skip
    print(f"{'round':>5} " + " ".join(f"{v.label + ' steps/s':>18}" for v in variants))
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for v in order:
            v.results.append(measure(v, args.algo, args.env, args.warmup, args.steps))
        print(f"{r + 1:>5} " + " ".join(f"{v.results[-1]['steps_per_s']:>18.1f}" for v in variants), flush=True)
    report(variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
