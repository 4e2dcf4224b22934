"""The user's own encoder (``SAC(env, encoder=Cls, encoder_kwargs=...)``, softac.nn.encoder):
learners equal single runs, the encoder learns from the critic loss alone, checkpoints hold its
weights but never its code, and what it cannot do is refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import TINY, assert_bit_identical, assert_learners_equal_singles, run_cli, state_tensors
from torch import nn

from softac import DQN, SAC, TD3, SoftacError
from softac.export import export_policy

SHORT: dict[str, Any] = {**TINY, "learning_starts": 100, "eval_freq": 200, "checkpoint_freq": 200}


class Encoder(nn.Module):
    """What a user writes: built from the observation space, returns (B, F) features."""

    def __init__(self, space: gym.spaces.Box, features: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(space.shape[0], 16), nn.ReLU(), nn.Linear(16, features),
                                 nn.LayerNorm(features), nn.Tanh())  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class OtherEncoder(Encoder):
    pass


class DictEncoder(nn.Module):
    """Reads a Dict observation by key."""

    def __init__(self, space: gym.spaces.Dict) -> None:
        super().__init__()
        self.state = nn.Linear(space["state"].shape[0], 6)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tanh(self.state(obs["state"]))


class SumOut(Encoder):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).sum(-1)


class WithBuffer(Encoder):
    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__(space)
        self.norm = nn.BatchNorm1d(8)


@pytest.mark.parametrize("cls", [SAC, TD3])
def test_learners_equal_single_runs(cls: Any) -> None:
    stacked = cls("Pendulum-v1", seeds=[3, 4], encoder=Encoder, encoder_kwargs={"features": 8}, **SHORT)
    stacked.learn(300, progress=False)
    singles = [cls("Pendulum-v1", seed=s, encoder=Encoder, encoder_kwargs={"features": 8}, **SHORT) for s in (3, 4)]
    for single in singles:
        single.learn(300, progress=False)
    assert stacked.updates == 200 and "net/encoder/net__0__weight" in stacked.state_tensors()
    # vmap over the stacked copies against one copy: float rounding, not the math, may differ
    assert_learners_equal_singles(stacked, singles, rtol=1e-4, atol=1e-5)


def test_encoder_learns_from_the_critic_loss_only() -> None:
    agent = SAC("Pendulum-v1", seed=0, encoder=Encoder, **SHORT).learn(150, progress=False)
    assert agent.encoder is not None
    before = [p.detach().clone() for p in agent.encoder.params()]
    batch = agent.buffer.sample(agent.config.batch_size, agent.rng)
    noise = torch.randn(1, agent.config.batch_size, 1)
    critic_params = [p for g in agent.critic_opt.param_groups for p in g["params"]]
    y = torch.zeros(1, agent.config.batch_size)
    loss, metrics = agent._critic_loss(critic_params, batch, y)
    grads = torch.autograd.grad(loss.sum(), agent.encoder.params(), allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # The actor reads the critic step's features, detached (DrQ-v2): no gradient reaches the encoder.
    obs = agent.actor_input(batch, metrics)
    assert obs.shape[-1] == agent.encoder.features and not obs.requires_grad and "_features" not in metrics
    actor_params = [p for g in agent.actor_opt.param_groups for p in g["params"]]
    loss, _ = agent._actor_loss(actor_params, obs, noise, agent.log_alpha.detach().exp())
    grads = torch.autograd.grad(loss.sum(), agent.encoder.params(), allow_unused=True)
    assert all(g is None for g in grads)
    agent.update()
    assert all(not torch.equal(b, p) for b, p in zip(before, agent.encoder.params(), strict=True))


def test_checkpoints_hold_weights_not_code(tmp_path: Path) -> None:
    kw = {"encoder": Encoder, "encoder_kwargs": {"features": 8}, **SHORT, "seed": 2}
    straight = SAC("Pendulum-v1", **kw).learn(400, run_dir=tmp_path / "straight", progress=False)
    SAC("Pendulum-v1", **kw).learn(200, run_dir=tmp_path / "half", progress=False)
    resumed = SAC.load(tmp_path / "half", encoder=Encoder, encoder_kwargs={"features": 8})
    resumed.learn(400, run_dir=tmp_path / "half", progress=False)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
    obs = np.array([[1.0, 0.0, 0.3], [0.0, -1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(resumed.predict(obs)[0], straight.predict(obs)[0])
    run = tmp_path / "straight"
    with pytest.raises(SoftacError, match="trained with the encoder class Encoder, which softac never imports"):
        SAC.load(run)
    with pytest.raises(SoftacError, match="trained with the encoder class Encoder, not OtherEncoder"):
        SAC.load(run, encoder=OtherEncoder, encoder_kwargs={"features": 8})
    with pytest.raises(SoftacError, match="trained without an encoder"):
        SAC.load(SAC("Pendulum-v1", **SHORT).save(tmp_path / "plain"), encoder=Encoder)
    with pytest.raises(SoftacError, match=r"has shape \(1, 8, 32\), this agent's has \(1, 4, 32\)"):  # other widths
        SAC.load(run, encoder=Encoder, encoder_kwargs={"features": 4})
    with pytest.raises(SoftacError, match="encoder= cannot be exported yet"):
        export_policy(resumed, tmp_path / "policy.onnx", "onnx")
    assert not (tmp_path / "policy.onnx").exists()
    # the command line names no module: eval and --resume of such a run say how to load it
    for args in (["eval", str(run)], ["train", "--resume", str(run), "--total-steps", "600"]):
        proc = run_cli(*args)
        assert proc.returncode == 2 and "never imports from a file" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_dict_observations_reach_the_encoder_by_key() -> None:
    class DictPendulum(gym.ObservationWrapper[Any, Any, Any]):
        def __init__(self) -> None:
            super().__init__(gym.make("Pendulum-v1"))
            spaces = {"state": self.env.observation_space, "flag": gym.spaces.Discrete(2)}
            self.observation_space = gym.spaces.Dict(spaces)

        def observation(self, observation: Any) -> Any:
            return {"state": observation, "flag": 1}

    agent = SAC(DictPendulum, encoder=DictEncoder, **SHORT).learn(150, progress=False)
    assert agent.encoder is not None and agent.encoder.features == 6 and agent.updates == 50
    action, _ = agent.predict({"state": np.zeros(3, np.float32), "flag": 0})
    assert action.shape == (1,)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: DQN("CartPole-v1", encoder=Encoder, **TINY), "encoder= is supported by sac, td3 and ddpg; dqn"),
        (lambda: SAC("Pendulum-v1", encoder=Encoder(gym.spaces.Box(-1, 1, (3,))), **TINY), "a torch.nn.Module class"),
        (lambda: SAC("Pendulum-v1", encoder=WithBuffer, **TINY), "has buffers"),
        (lambda: SAC("Pendulum-v1", encoder=Encoder, encoder_kwargs={"nope": 1}, **TINY), "raised TypeError"),
        (lambda: SAC("Pendulum-v1", encoder_kwargs={"features": 3}, **TINY), "without an encoder"),
        (lambda: SAC("Pendulum-v1", encoder=nn.Flatten, **TINY), "has no parameters"),
        (lambda: SAC("Pendulum-v1", encoder=SumOut, **TINY), "returned (2,) for a batch of 2 observations"),
    ],
)
def test_bad_encoders_are_one_line(make: Any, needle: str) -> None:
    with pytest.raises(SoftacError) as info:
        make()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_compiled_update_falls_back_to_eager_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    eager = SAC("Pendulum-v1", seed=1, encoder=Encoder, **SHORT).learn(150, progress=False)
    asked = SAC("Pendulum-v1", seed=1, encoder=Encoder, compile_update=True, **SHORT).learn(150, progress=False)
    assert "updates eagerly (no torch.compile, no CUDA graph)" in capsys.readouterr().err
    assert_bit_identical(state_tensors(eager), state_tensors(asked))
