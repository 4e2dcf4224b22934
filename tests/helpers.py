"""Helpers shared by the tests: tiny settings, custom environments, CLI runners, comparisons."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

# One intra-op thread: the machine is shared and tiny networks gain nothing from more.
torch.set_num_threads(1)

# The device the tests run on: `pytest --device cuda` (conftest.py) or SOFTAC_TEST_DEVICE=cuda.
# Tests that only make sense on one device skip themselves with the reason.
DEVICE = os.environ.get("SOFTAC_TEST_DEVICE", "cpu")

ROOT = Path(__file__).resolve().parents[1]
SOFTAC = [sys.executable, "-m", "softac.cli"]

# Settings every short training run in the tests uses (plus learning_starts / total_steps).
TINY: dict[str, Any] = {
    "hidden_sizes": (32, 32),
    "batch_size": 64,
    "buffer_size": 4000,
    "eval_episodes": 1,
    "threads": 1,
    "device": DEVICE,
}
TINY_FLAGS = [
    "--hidden-sizes", "32", "32", "--batch-size", "64", "--buffer-size", "4000",
    "--eval-episodes", "1", "--threads", "1", "--device", DEVICE, "--no-progress",
]  # fmt: skip


def on_cpu() -> bool:
    return DEVICE == "cpu"


def set_device(device: str) -> None:
    """Called once by conftest.py from the --device option, before any test module is imported."""
    global DEVICE
    DEVICE = device
    TINY["device"] = device
    TINY_FLAGS[TINY_FLAGS.index("--device") + 1] = device
    os.environ["SOFTAC_TEST_DEVICE"] = device  # for the CLI subprocesses' helpers and children


# -- custom environments ----------------------------------------------------------------------
class CounterEnv(gym.Env):
    """obs = [t, episode]; reward = 1 + t. Terminates (truly) when t reaches ``terminate_at``
    (if given); the TimeLimit wrapper of the registration truncates otherwise."""

    def __init__(self, terminate_at: int | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1e6, 1e6, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.terminate_at = terminate_at
        self.t = 0
        self.episode = -1

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.episode], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return self._obs(), {}

    def step(self, action: np.ndarray) -> Any:
        reward = 1.0 + self.t
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return self._obs(), reward, terminated, False, {}


class NonFiniteEnv(gym.Env):
    """Returns a NaN observation (or an inf reward) on its ``bad_step``-th step (0-based) of the
    first episode only; finite otherwise. Episodes last 10 steps (TimeLimit)."""

    def __init__(self, what: str = "obs", bad_step: int = 7) -> None:
        self.observation_space = gym.spaces.Box(-1e6, 1e6, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.what = what
        self.bad_step = bad_step
        self.t = 0
        self.episode = -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return np.array([0.0, 1.0], dtype=np.float32), {}

    def step(self, action: np.ndarray) -> Any:
        bad = self.episode == 0 and self.t == self.bad_step
        self.t += 1
        obs = np.array([self.t, float(action[0])], dtype=np.float32)
        reward = -(float(action[0]) ** 2)
        if bad and self.what == "obs":
            obs[0] = np.nan
        if bad and self.what == "reward":
            reward = float("inf")
        return obs, reward, False, False, {}


class CrashingEnv(gym.Env):
    """A user's environment with a bug: ``step`` raises ZeroDivisionError on its ``crash_at``-th call
    (counted over the instance's life); ``where="reset"`` raises in the reset after that many steps.
    With ``crash_at`` None it never crashes. Episodes last 10 steps (TimeLimit)."""

    def __init__(self, crash_at: int | None = 150, where: str = "step") -> None:
        self.observation_space = gym.spaces.Box(-1e6, 1e6, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.crash_at, self.where, self.calls = crash_at, where, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        if self.where == "reset" and self.crash_at is not None and self.calls >= self.crash_at:
            raise RuntimeError("reset failed in the user's code")
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> Any:
        self.calls += 1
        if self.where == "step" and self.calls == self.crash_at:
            _ = 1 / 0
        return self.np_random.normal(size=2).astype(np.float32), -float(action[0] ** 2), False, False, {}


class BoxEnv(gym.Env):
    """A trivial env with configurable action/observation spaces (for validation tests)."""

    def __init__(
        self, low: Any = -1.0, high: Any = 1.0, obs_shape: tuple[int, ...] = (3,), obs_dtype: Any = np.float32
    ) -> None:
        low = np.atleast_1d(np.asarray(low, dtype=np.float32))
        high = np.atleast_1d(np.asarray(high, dtype=np.float32))
        self.action_space = gym.spaces.Box(low, high, low.shape, np.float32)
        bound = 255 if obs_dtype == np.uint8 else 10.0
        self.observation_space = gym.spaces.Box(-bound * (obs_dtype != np.uint8), bound, obs_shape, obs_dtype)
        self.obs_shape = obs_shape

    def _obs(self) -> np.ndarray:
        out = self.np_random.uniform(-1, 1, self.obs_shape)
        return out.astype(self.observation_space.dtype)  # type: ignore[arg-type]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> Any:
        return self._obs(), -float(np.sum(np.square(action))), False, False, {}


class EvalNaNEnv(BoxEnv):
    """Finite in training; a NaN reward in every episode reset with a seed ≥ 100,000 (the
    evaluation seeds, ``softac.evaluate.EVAL_SEED_OFFSET``)."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.evaluating = seed is not None and seed >= 100_000
        return super().reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("nan") if self.evaluating else reward, terminated, truncated, info

class GuessEnv(gym.Env):
    """Discrete(3) actions; obs ~ U(−1, 1)³ from the env's generator; reward 1 for the action that
    indexes the largest observation, else 0. Never terminates: the registration's TimeLimit ends
    every episode after a fixed number of steps (so checkpoints can fall on episode boundaries)."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.obs = np.zeros(3, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.obs, {}

    def step(self, action: Any) -> Any:
        assert self.action_space.contains(action), action
        reward = float(int(action) == int(np.argmax(self.obs)))
        self.obs = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.obs, reward, False, False, {}


class DictObsEnv(BoxEnv):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1.0, 1.0, (2,), np.float32)})


def _register(
    env_id: str, entry_point: Any, max_episode_steps: int | None = None, checker: bool = True, **kwargs: Any
) -> None:
    """``checker=False``: no Gymnasium passive env checker, for an environment whose non-finite
    output is the point of its tests (softac reports it; the checker's duplicate warning, raw
    terminal colour codes included, was noise in the test run: issue 22)."""
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps, kwargs=kwargs,
                     disable_env_checker=not checker)  # fmt: skip


_register("SoftacTest/Counter-v0", CounterEnv, max_episode_steps=5)  # truncates at t = 5
_register("SoftacTest/CounterTerminates-v0", CounterEnv, max_episode_steps=10, terminate_at=3)
_register("SoftacTest/NaNObs-v0", NonFiniteEnv, max_episode_steps=10, what="obs")
_register("SoftacTest/InfReward-v0", NonFiniteEnv, max_episode_steps=10, what="reward")
_register("SoftacTest/InfiniteBox-v0", BoxEnv, max_episode_steps=20, low=[-np.inf], high=[np.inf])
_register("SoftacTest/ImageObs-v0", BoxEnv, max_episode_steps=20, obs_shape=(8, 8, 3), obs_dtype=np.uint8)
_register("SoftacTest/MatrixObs-v0", BoxEnv, max_episode_steps=20, obs_shape=(2, 2))
_register("SoftacTest/DictObs-v0", DictObsEnv, max_episode_steps=20)
_register("SoftacTest/Asym-v0", BoxEnv, max_episode_steps=20, low=[-2.0, 0.0], high=[1.0, 5.0])
_register("SoftacTest/Crash-v0", CrashingEnv, max_episode_steps=10)
_register("SoftacTest/CrashReset-v0", CrashingEnv, max_episode_steps=10, crash_at=150, where="reset")
_register("SoftacTest/EvalNaN-v0", EvalNaNEnv, max_episode_steps=10, checker=False)

_register("SoftacTest/Guess-v0", GuessEnv, max_episode_steps=10)


# -- helpers ----------------------------------------------------------------------------------
def state_tensors(agent: Any) -> dict[str, torch.Tensor]:
    """Every learned tensor of an agent, cloned: the library's one listing of an agent's state
    (``softac.protocols.state_tensors``: networks with their buffers, targets, optimizer moments,
    log α), so the tests compare exactly what checkpoints and snapshots hold."""
    return {key: value.detach().clone() for key, value in agent.state_tensors().items()}


def assert_learners_equal_singles(stacked: Any, singles: list[Any], rtol: float, atol: float) -> None:
    """Every learned tensor of learner k of ``stacked`` equals single agent k's (0-dim counters
    are shared by all learners)."""
    big = state_tensors(stacked)
    for k, single in enumerate(singles):
        for key, value in state_tensors(single).items():
            part = big[key] if big[key].dim() == 0 else big[key].chunk(len(singles))[k]
            torch.testing.assert_close(part, value, rtol=rtol, atol=atol, msg=f"learner {k} {key}")


def assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]} (of {len(different)})"


def module_params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    # PYTHONFAULTHANDLER: a run that hangs in a test can be made to print its stacks (SIGABRT).
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg", PYTHONFAULTHANDLER="1")
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def default_sigint() -> None:
    """A child's SIGINT as a terminal gives it (``preexec_fn``). Why: pytest-xdist's workers ignore SIGINT,
    and a child inherits SIG_IGN, so Python installs no KeyboardInterrupt for it: a Ctrl-C a test sent
    before softac's own handler existed was lost, and the run went on (a run that never exited 60 s after
    its SIGINT, stack-dumped inside the whole suite; alone, without xdist, it always exited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``softac ARGS`` in a subprocess (the real entry point, exit codes and streams)."""
    return subprocess.run(
        [*SOFTAC, *args], capture_output=True, text=True, env=cli_env(), cwd=cwd, timeout=timeout, check=False,
        preexec_fn=default_sigint,
    )


def popen_cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SOFTAC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=cwd,
        preexec_fn=default_sigint,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, exactly one line on stderr starting with 'softac: error:', no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("softac: error:"), lines[0]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def fake_run(
    root: Path, name: str, algo: str, env_id: str, seed: int, returns: list[float], every: int = 100
) -> Path:
    """A hand-made run directory: config.json and a progress.csv with one evaluation every
    ``every`` steps (no training), for the figure and statistics tests."""
    import json

    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"algo": algo, "config": {"env_id": env_id, "seed": seed}}))
    lines = ["step,eval_return_mean,eval_return_std,wall_time_s"]
    lines += [f"{every * (i + 1)},{r},0,{i}" for i, r in enumerate(returns)]
    (run / "progress.csv").write_text("\n".join(lines) + "\n")
    return run


def band_bounds(collection: Any) -> dict[float, tuple[float, float]]:
    """A fill_between band as {x: (lower, upper)} (its polygon runs along one edge and back)."""
    out: dict[float, list[float]] = {}
    for path in collection.get_paths():
        for x, y in path.vertices:
            out.setdefault(float(x), []).append(float(y))
    return {x: (min(ys), max(ys)) for x, ys in out.items()}


def capture_figure(monkeypatch: Any) -> dict[str, Any]:
    """Record, at savefig, each panel's (title, {line label: y values}) and each band's bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen: dict[str, Any] = {}
    original = plt.Figure.savefig

    def spy(fig: Any, *args: Any, **kwargs: Any) -> None:
        seen["axes"] = [
            (ax.get_title(), {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()})
            for ax in fig.axes
        ]
        seen["bands"] = [band_bounds(c) for ax in fig.axes for c in ax.collections]
        original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    return seen


def random_rows(agent: Any, n: int, seed: int = 0) -> np.ndarray:
    """n random transitions per learner as buffer rows (L, n, row): Gaussian observations and
    rewards, uniform actions (for a Discrete space uniform action indices, from the same draws),
    10 % terminations; learner k's from ``seed + k``, so a learner's data does not depend on how
    many learners there are."""
    o, a = agent.spec.obs_dim, agent.spec.act_dim
    per_learner = []
    for k in range(agent.learners):
        rng = np.random.default_rng(seed + k)
        obs = rng.normal(size=(n, o)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(n, a)).astype(np.float32)
        if agent.spec.action_kind == "Discrete":
            actions = np.minimum(np.floor((actions + 1) / 2 * agent.spec.n_actions), agent.spec.n_actions - 1)
        per_learner.append(agent.buffer.rows(
            obs,
            actions,
            rng.normal(size=n).astype(np.float32),
            (rng.uniform(size=n) < 0.1).astype(np.float32),
            rng.normal(size=(n, o)).astype(np.float32),
            # n-step rows: γ^m for m in 1..n (the shorter tails of truncated episodes included)
            agent.config.gamma ** rng.integers(1, agent.config.n_step + 1, size=n)
            if agent.buffer.discount_column else None,
        ))  # fmt: skip
    return np.stack(per_learner)


def fill_buffer(agent: Any, n: int, seed: int = 0) -> None:
    """Add ``random_rows`` to every learner's replay region."""
    agent.buffer.add_all(random_rows(agent, n, seed))


def seed_rows(agent: Any, k: int, n: int, seed: int = 0) -> np.ndarray:
    """Learner k's rows of ``random_rows`` (what a single agent with learner k's seed gets)."""
    return random_rows(agent, n, seed)[k]


def sigkill_after_first_checkpoint(args: list[str], run_dir: Path, deadline_s: float = 240) -> None:
    """``softac ARGS --run-dir RUN`` killed with SIGKILL 0.3 s after its first checkpoint appears
    (inside the episodes after it), asserting that the kill, not the end of the run, stopped it."""
    from softac.io.rundir import list_checkpoints

    proc = popen_cli(*args, "--run-dir", str(run_dir))
    try:
        deadline = time.monotonic() + deadline_s
        while not list_checkpoints(run_dir) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # past the checkpoint, inside the next episodes
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def processes_on(path: Path) -> list[int]:
    """PIDs of live processes whose command line names ``path`` (the cell's `softac train`)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (d / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if str(path) in cmd and state != "Z":
                found.append(int(d.name))
    return found


def signal_at_checkpoint(proc: subprocess.Popen[str], run: Path, signum: int, group: bool) -> tuple[str, str]:
    """Once ``run`` (a seed's directory) holds a checkpoint, send ``signum`` to ``proc`` (started in a
    session of its own) or, with ``group``, to its whole process group as a terminal's Ctrl-C does; its
    (stdout, stderr). It is SIGKILLed, group and all, if it has not exited by then."""
    from softac.io.rundir import list_checkpoints

    try:
        deadline = time.monotonic() + 240  # a loaded machine (a Ray start included)
        while not list_checkpoints(run):
            assert proc.poll() is None and time.monotonic() < deadline, "it ended before the signal"
            time.sleep(0.05)
        os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
