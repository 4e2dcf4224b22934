"""Policy export (issue 16, item 14): the exported file, run without softac (onnxruntime for ONNX,
torch.jit.load for TorchScript), gives the actions of ``predict(obs, deterministic=True)``."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY

from softac import DDPG, SAC, TD3, SoftacError, cli
from softac.export import DeployedPolicy, NormaliserStats, deployed_policy, export_policy


def _trained(cls: type, run: Path, env: str = "SoftacTest/Asym-v0", **kwargs: object) -> object:
    agent = cls(env, **TINY, learning_starts=50, total_steps=150, eval_freq=150, **kwargs)
    agent.learn(run_dir=run, progress=False)
    return agent


def _jit_load(path: Path) -> torch.jit.ScriptModule:
    """``torch.jit.load``, which torch ≥ 2.9 marks deprecated (in favour of torch.export): loading the
    file this way is exactly what a deployment without softac does, so the test keeps it and
    silences only that warning, here rather than for the whole suite."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=DeprecationWarning)
        return torch.jit.load(str(path))


def _moved(out: Path, elsewhere: Path) -> Path:
    """The exported file alone, moved to another directory: what a deployment receives. Nothing
    else may have been written next to it (no side file the model refers to)."""
    assert sorted(p.name for p in out.parent.iterdir() if p.name != "run") == [out.name]
    elsewhere.mkdir()
    return Path(shutil.move(str(out), elsewhere / out.name))


def _observations(agent: object, n: int = 64) -> np.ndarray:
    dim = agent.spec.obs_dim  # type: ignore[attr-defined]
    return np.random.default_rng(1).normal(scale=3.0, size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize("cls", [SAC, TD3, DDPG])
def test_onnx_export_matches_predict(cls: type, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run = tmp_path / "run"
    agent = _trained(cls, run)  # asymmetric bounds [-2, 1] × [0, 5]: the rescaling is part of the file
    out = tmp_path / "policy.onnx"
    assert cli.main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    # One self-contained file (issue 22): the weights are inside it, so it runs after a move.
    session = ort.InferenceSession(str(_moved(out, tmp_path / "deploy")))
    obs = _observations(agent)
    expected = agent.predict(obs, deterministic=True)[0]  # type: ignore[attr-defined]
    got = session.run(["action"], {"observation": obs})[0]
    assert got.shape == expected.shape == (64, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    one = session.run(["action"], {"observation": obs[:1]})[0]  # the batch size is dynamic
    np.testing.assert_allclose(one, expected[:1], rtol=1e-5, atol=1e-5)


def test_torchscript_export_matches_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    agent = _trained(SAC, run)
    out = tmp_path / "policy.pt"
    assert cli.main(["export", str(run), "--format", "torchscript", "--out", str(out)]) == 0
    loaded = _jit_load(_moved(out, tmp_path / "deploy"))
    obs = _observations(agent)
    got = loaded(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(got, agent.predict(obs)[0], rtol=1e-5, atol=1e-5)  # type: ignore[attr-defined]


def test_batched_run_exports_the_chosen_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    _trained(TD3, run, seeds=[4, 7])
    out = tmp_path / "seed7.pt"
    assert cli.main(["export", str(run), "--format", "torchscript", "--out", str(out), "--seed", "7"]) == 0
    single = TD3.load(run / "seed_7")
    obs = _observations(single)
    np.testing.assert_allclose(_jit_load(out)(torch.from_numpy(obs)).numpy(), single.predict(obs)[0],
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    assert cli.main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "x"), "--seed", "9"]) == 2
    assert "--seed 9 is not a seed" in capsys.readouterr().err


def test_normaliser_slot_applies_before_the_network() -> None:
    agent = SAC("Pendulum-v1", **TINY)
    plain = deployed_policy(agent)
    mean, var = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([4.0, 0.25, 1.0])
    stats = NormaliserStats(mean, var, clip=1.5)
    trunk = agent.actor.trunk
    normalised = DeployedPolicy([w[0] for w in trunk.weights], [b[0] for b in trunk.biases], agent.actor.head,
                                agent.spec.action_low, agent.spec.action_high, stats)  # fmt: skip
    obs = torch.from_numpy(_observations(agent))
    expected = plain(torch.clamp((obs - mean) / torch.sqrt(var + 1e-8), -1.5, 1.5))
    torch.testing.assert_close(normalised(obs), expected)


def test_export_refuses_to_overwrite_or_write_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    agent = SAC("Pendulum-v1", **TINY)
    existing = tmp_path / "keep.pt"
    existing.write_text("precious")
    for out, needle in ((existing, "pass --overwrite"), (tmp_path, "is a directory")):
        with pytest.raises(SoftacError, match=needle):
            export_policy(agent, out, "torchscript")  # type: ignore[arg-type]
    assert existing.read_text() == "precious"
    export_policy(agent, existing, "torchscript", overwrite=True)  # type: ignore[arg-type]
    assert existing.read_bytes()[:2] == b"PK" and [p.name for p in tmp_path.iterdir()] == ["keep.pt"]
    with pytest.raises(SoftacError, match="unknown export format"):
        export_policy(agent, tmp_path / "p", "tflite")  # type: ignore[arg-type]
