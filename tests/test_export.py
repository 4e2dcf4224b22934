"""Export equals ``predict``: for every configuration softac trains, the exported file, run without
softac (ONNX Runtime for ONNX, ``torch.jit.load`` for TorchScript), gives the arrays of
``predict(obs, deterministic=True)`` — the environment's action units, shape and dtype.

One table, drawn from the algorithm table the update-equality tests use (``test_accel.UPDATE_CASES``):
one row per algorithm × network × batch normalisation × distributional critic found there (options
that leave the acting graph alone — n-step, PER, α, log-std bounds, policy delay — are not repeated),
plus PPO (on-policy, not in that table) on both action spaces. Half the rows normalise observations;
some train several learners and export one of them by seed through ``softac export``. Each row
trains once, past ``learning_starts`` (weights, batch-norm and observation statistics all moved
away from their initial values), and is exported to both formats.

Tolerances. Box: |file − predict| ≤ 10⁻⁵ of each dimension's half-range. Both compute the same
float32 network and differ only in the order of each dot product's additions (ONNX Runtime's
MatMul against numpy's or torch's): measured ≤ 2.4·10⁻⁷ of the half-range (1–2 float32 ulps) on
these rows, and exactly 0 for TorchScript, which runs torch's own kernels. A step left out moves
an action by whole units (the normaliser, left out, turned 0.0097 into 0.3726). Discrete: the same
integers, exactly.
"""

from __future__ import annotations

import functools
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import TINY
from test_accel import DISCRETE, UPDATE_CASES
from test_ppo import PPO_TINY

from softac import DQN, PPO, SAC, CrossQ, SoftacError, cli, registry
from softac.export import export_policy
from softac.export import policy as policy_mod

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# Observations far from N(0, 1): normalisation matters, and its statistics are not the initial ones.
OFFSET = np.array([3.0, -2.0, 0.5, 8.0], dtype=np.float32)
SCALE = np.array([2.0, 0.5, 0.05, 4.0], dtype=np.float32)


class ShiftedEnv(gym.Env):
    """obs = OFFSET + SCALE·u, u ~ U(−1, 1)⁴; actions a Box with asymmetric bounds [−2, 1] × [0, 5], or
    Discrete(4) starting at −2 (the environment's integers are −2…1, not the indices 0…3)."""

    def __init__(self, discrete: bool = False) -> None:
        self.observation_space = gym.spaces.Box(-20.0, 30.0, (4,), np.float32)
        self.action_space: gym.Space[Any] = (
            gym.spaces.Discrete(4, start=-2) if discrete
            else gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))
        )  # fmt: skip
        self.u = np.zeros(4, dtype=np.float32)

    def _obs(self) -> np.ndarray:
        self.u = self.np_random.uniform(-1, 1, 4).astype(np.float32)
        return OFFSET + SCALE * self.u

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action: Any) -> Any:
        if isinstance(self.action_space, gym.spaces.Discrete):
            assert self.action_space.contains(action), action  # an integer of −2…1
            reward = float(int(action) + 2 == int(np.argmax(self.u)))
        else:
            reward = -float(np.square(np.asarray(action) - self.u[:2]).sum())
        return self._obs(), reward, False, False, {}


for _name, _discrete in (("SoftacTest/ExportBox-v0", False), ("SoftacTest/ExportDiscrete-v0", True)):
    if _name not in gym.registry:
        gym.register(id=_name, entry_point=ShiftedEnv, max_episode_steps=20, kwargs={"discrete": _discrete})


@pytest.fixture(scope="module", autouse=True)
def _one_onnx_registry() -> Any:
    """Speed only: torch's ONNX exporter rebuilds its table of ONNX translations (≈0.7 s of CPU) on
    every export; this module exports ~35 files, so it builds the table once. The table is the same
    object torch would build each time; the files are unchanged. Without that private hook (another
    torch), the exports just take longer."""
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:
        yield
        return
    build = getattr(_registration.ONNXRegistry, "from_torchlib", None)
    if build is None or not hasattr(build, "__func__"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_registration.ONNXRegistry, "from_torchlib", classmethod(functools.cache(build.__func__)))
        yield


@dataclass(frozen=True)
class Row:
    cls: type
    extra: dict[str, Any] = field(default_factory=dict)
    discrete: bool = False  # the action space
    normalize: bool = False
    seeds: tuple[int, ...] = (1,)  # several: trained as one batched run, the last exported by `softac export`

    @property
    def id(self) -> str:
        kind = [self.extra[k] for k in ("network", "norm", "critic_dist", "activation") if k in self.extra]
        kind += ["discrete"] if self.cls is PPO and self.discrete else []
        kind += ["normalize-obs"] if self.normalize else []
        kind += [f"seeds{'+'.join(map(str, self.seeds))}"] if len(self.seeds) > 1 else []
        return "-".join([self.cls.__name__, *map(str, kind)])


def _kind(cls: type, extra: dict[str, Any]) -> tuple[Any, ...]:
    return (cls, *(extra.get(k) for k in ("network", "norm", "critic_dist")))


# The algorithms whose first row trains two learners (seeds 3 and 7) and exports seed 7: a plain MLP,
# batch-renormalised networks (their running statistics are sliced by learner too), a Q-network on
# Discrete actions and the on-policy actor.
SEVERAL = (SAC, CrossQ, DQN, PPO)


def _table() -> list[Row]:
    first: dict[tuple[Any, ...], tuple[type, dict[str, Any], bool]] = {}
    for cls, extra in UPDATE_CASES:
        first.setdefault(_kind(cls, extra), (cls, extra, cls in DISCRETE))
    kinds = [*first.values(), (PPO, {}, False), (PPO, {"activation": "relu"}, True)]  # PPO's default is tanh
    rows: list[Row] = []
    for i, (cls, extra, discrete) in enumerate(kinds):
        several = cls in SEVERAL and all(r.cls is not cls for r in rows)
        rows.append(Row(cls, extra, discrete, normalize=several or i % 2 == 1, seeds=(3, 7) if several else (1,)))
    return rows


ROWS = _table()


def _train(row: Row, run: Path) -> Any:
    env = "SoftacTest/ExportDiscrete-v0" if row.discrete else "SoftacTest/ExportBox-v0"
    budget = {"total_steps": 64} if row.cls is PPO else {"learning_starts": 50, "total_steps": 150}
    settings = {**(PPO_TINY if row.cls is PPO else TINY), **budget, "eval_freq": 10**6, **row.extra}
    seeds: dict[str, Any] = {"seeds": list(row.seeds)} if len(row.seeds) > 1 else {"seed": row.seeds[0]}
    agent = row.cls(env, **settings, **seeds, normalize_obs=row.normalize)
    agent.learn(run_dir=run if len(row.seeds) > 1 else None, progress=False)
    assert agent.updates > 0
    if row.normalize:  # the statistics moved: the normaliser is not the identity
        assert not torch.allclose(agent.obs_norm.mean.float(), torch.zeros(4), atol=0.1)
    trunk = getattr(getattr(agent, "policy", None), "trunk", None)
    if getattr(trunk, "norm", None) in ("batchrenorm", "batchnorm"):  # evaluation-mode statistics, not (0, 1)
        assert not torch.allclose(trunk.ra_var_1, torch.ones_like(trunk.ra_var_1))
    return agent


def _observations(n: int = 96) -> np.ndarray:
    """Around the data (normalised inputs of order 1), and ±30 scales away (normalised inputs clipped)."""
    rng = np.random.default_rng(7)
    near = OFFSET + SCALE * rng.normal(scale=1.5, size=(n - 16, 4))
    far = OFFSET + 30 * SCALE * rng.choice([-1.0, 1.0], size=(16, 4))
    return np.concatenate([near, far]).astype(np.float32)


def _assert_equal(got: np.ndarray, expected: np.ndarray, agent: Any, what: str) -> None:
    assert (got.dtype, got.shape) == (expected.dtype, expected.shape), what
    if agent.spec.action_kind == "Discrete":
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    half_range = 0.5 * (agent.spec.action_high - agent.spec.action_low)
    worst = float((np.abs(got.astype(np.float64) - expected) / half_range).max())
    assert worst <= 1e-5, f"{what}: differs from predict by {worst:.3g} of the half-range"


def _run(path: Path, fmt: str, obs: np.ndarray) -> np.ndarray:
    """The file run as a deployment runs it, with no softac code."""
    if fmt == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["action"], {"observation": obs})[0]
    with warnings.catch_warnings():  # torch ≥ 2.9 deprecates torch.jit.load; the file is what deployment loads
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning)
        return torch.jit.load(str(path))(torch.from_numpy(obs)).numpy()


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_export_equals_predict(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained = _train(row, tmp_path / "run")
    seed = row.seeds[-1]
    # The model a user calls predict on: the agent itself, or the exported seed's own run directory.
    model = trained if len(row.seeds) == 1 else row.cls.load(tmp_path / "run" / f"seed_{seed}")
    obs = _observations()
    expected = model.predict(obs, deterministic=True)[0]
    one = model.predict(obs[0], deterministic=True)[0]  # one observation: predict's numpy path on the CPU
    if row.discrete:
        assert expected.dtype == np.int64 and set(np.unique(expected)) - {-2, -1, 0, 1} == set()
        assert len(np.unique(expected)) > 1, "every observation gets one action: the comparison would be weak"
    else:
        assert expected.dtype == np.float32
    for fmt, suffix in (("onnx", "onnx"), ("torchscript", "pt")):
        out = tmp_path / f"policy.{suffix}"
        if len(row.seeds) > 1:
            args = ["export", str(tmp_path / "run"), "--format", fmt, "--out", str(out), "--seed", str(seed)]
            assert cli.main(args) == 0
            assert f"seed {seed}" in capsys.readouterr().out
        else:
            export_policy(trained, out, fmt)
        moved = tmp_path / f"deploy-{fmt}" / out.name  # the file alone, elsewhere: what a deployment gets
        moved.parent.mkdir()
        shutil.move(str(out), moved)
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []  # no side file, no temporary
        _assert_equal(_run(moved, fmt, obs), expected, model, f"{fmt} batch")
        _assert_equal(_run(moved, fmt, obs[:1])[0], one, model, f"{fmt} one observation")
        if len(row.seeds) > 1:  # the chosen learner, not the first: seed 3 acts otherwise
            other = row.cls.load(tmp_path / "run" / f"seed_{row.seeds[0]}").predict(obs)[0]
            assert not np.array_equal(other, _run(moved, fmt, obs))
    if len(row.seeds) > 1:
        assert cli.main(["export", str(tmp_path / "run"), "--format", "onnx", "--out", str(tmp_path / "x"),
                         "--seed", "9"]) == 2  # fmt: skip
        assert "--seed 9 is not a seed" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_the_table_covers_every_algorithm_and_option() -> None:
    """A new algorithm, network, normalisation or critic in the update table reaches this table."""
    algos = {r.cls.algo for r in ROWS}
    assert algos == set(registry.names())
    assert {_kind(c, e) for c, e in UPDATE_CASES} <= {_kind(r.cls, r.extra) for r in ROWS}
    for discrete in (False, True):
        assert {r.normalize for r in ROWS if r.discrete == discrete} == {False, True}
    assert any(len(r.seeds) > 1 and r.discrete for r in ROWS) and any(len(r.seeds) > 1 for r in ROWS if not r.discrete)


def test_an_export_that_would_differ_is_refused_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first export's bug, put back: the deployed module without the observation normaliser.
    ``export_policy`` runs the written file against ``predict`` and refuses it; ``softac export``
    says so in one line, exit 2."""
    agent = _train(Row(SAC, normalize=True), tmp_path / "run")
    agent.save(tmp_path / "ckpt")
    monkeypatch.setattr(policy_mod, "_normaliser", lambda agent, k: None)
    for fmt in ("onnx", "torchscript"):
        out = tmp_path / f"policy.{fmt}"
        with pytest.raises(SoftacError, match=f"refusing to write the {fmt} export of this sac policy"):
            export_policy(agent, out, fmt)
        assert cli.main(["export", str(tmp_path / "ckpt"), "--format", fmt, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"softac: error: refusing to write the {fmt} export"), err
        assert "where predict gives" in err[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no file, no temporary


def test_export_refuses_to_overwrite_or_write_a_directory(tmp_path: Path) -> None:
    agent = SAC("Pendulum-v1", **TINY)
    existing = tmp_path / "keep.pt"
    existing.write_text("precious")
    for out, needle in ((existing, "pass --overwrite"), (tmp_path, "is a directory")):
        with pytest.raises(SoftacError, match=needle):
            export_policy(agent, out, "torchscript")
    assert existing.read_text() == "precious"
    export_policy(agent, existing, "torchscript", overwrite=True)
    assert existing.read_bytes()[:2] == b"PK" and [p.name for p in tmp_path.iterdir()] == ["keep.pt"]
    with pytest.raises(SoftacError, match="unknown export format"):
        export_policy(agent, tmp_path / "p", "tflite")


def test_onnx_without_its_packages_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX export runs the file in ONNX Runtime before keeping it: without the package, one line
    naming the extra, before anything is built or written."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # ``import onnxruntime`` raises ImportError
    with pytest.raises(SoftacError, match=r"pip install 'softac\[export\]'"):
        export_policy(SAC("Pendulum-v1", **TINY), tmp_path / "p.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="TF32 products exist on CUDA devices only")
def test_an_agent_multiplying_in_tf32_on_the_gpu_is_refused(tmp_path: Path) -> None:
    """Its predict multiplies in TF32 (10-bit mantissas): no float32 file reproduces that."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32  # process-wide flags
    try:
        agent = SAC("Pendulum-v1", **{**TINY, "device": "cuda"}, tf32=True)
        with pytest.raises(SoftacError, match="TF32"):
            export_policy(agent, tmp_path / "p.pt", "torchscript")
        assert list(tmp_path.iterdir()) == []
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
