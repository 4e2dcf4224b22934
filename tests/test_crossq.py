"""CrossQ (issue 20): the update against sb3-contrib's on the same weights, batch and noise; batch
renormalisation's running statistics as state (returned by the losses, restored by snapshots,
saved by checkpoints); a config without target-network fields; learning on Pendulum."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, fill_buffer, on_cpu, run_cli, state_tensors

from softac import SAC, CrossQ, CrossQConfig
from softac.accel.state import Snapshot
from softac.data.replay import Batch
from softac.errors import SoftacError
from softac.logging import read_progress
from softac.nn import BatchedSimba

SMALL: dict[str, Any] = {**TINY, "critic_hidden_sizes": (64, 64), "cuda_graph": False}


def _sb3_crossq(warmup: int, delay: int) -> Any:
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from stable_baselines3.common.logger import configure

    kwargs = {"net_arch": {"pi": [32, 32], "qf": [64, 64]}, "renorm_warmup_steps": warmup}
    model = sb3_contrib.CrossQ("MlpPolicy", "Pendulum-v1", policy_delay=delay, policy_kwargs=kwargs, seed=0,
                               device="cpu")  # fmt: skip
    model.set_logger(configure(None, []))  # train() records its losses somewhere
    return model


def _brn_layers(seq: torch.nn.Module) -> tuple[list[Any], list[torch.nn.Linear]]:
    from sb3_contrib.common.torch_layers import BatchRenorm1d

    mods = list(seq.modules())
    return [m for m in mods if isinstance(m, BatchRenorm1d)], [m for m in mods if isinstance(m, torch.nn.Linear)]


@torch.no_grad()
def _copy_from_sb3(agent: CrossQ, model: Any, grads: bool = False) -> None:
    """softac's networks := sb3-contrib's (``grads``: := their gradients, the running statistics
    left alone): each BRN → Linear (→ ReLU) layer, the actor's μ and log σ heads as the two halves
    of the last affine layer, critic j as member j."""
    def get(t: torch.Tensor) -> torch.Tensor:
        return (t.grad if t.grad is not None else torch.zeros_like(t)) if grads else t

    brns, linears = _brn_layers(model.actor.latent_pi)
    heads = [model.actor.mu, model.actor.log_std]
    weights = [get(lin.weight).T for lin in linears] + [torch.cat([get(h.weight).T for h in heads], dim=1)]
    biases = [get(lin.bias) for lin in linears] + [torch.cat([get(h.bias) for h in heads])]
    _load(agent.actor.trunk, 0, brns, weights, biases, get, grads)
    for j, qf in enumerate(model.critic.q_networks):
        brns, linears = _brn_layers(qf)
        _load(agent.critic.net, j, brns, [get(lin.weight).T for lin in linears], [get(lin.bias) for lin in linears],
              get, grads)  # fmt: skip


def _load(net: Any, g: int, brns: list[Any], weights: list[torch.Tensor], biases: list[torch.Tensor],
          get: Any, grads: bool) -> None:  # fmt: skip
    assert len(brns) == len(weights) == len(net.weights)
    for i, (brn, w, b) in enumerate(zip(brns, weights, biases, strict=True)):
        net.weights[i][g].copy_(w)
        net.biases[i][g, 0].copy_(b)
        net.norm_gains[i][g, 0].copy_(get(brn.scale))
        net.norm_biases[i][g, 0].copy_(get(brn.bias))
        if not grads:
            getattr(net, f"ra_mean_{i}")[g, 0].copy_(brn.ra_mean)
            getattr(net, f"ra_var_{i}")[g, 0].copy_(brn.ra_var)
            net.renorm_steps[g] = brn.steps


def _params_of(net: Any) -> list[torch.Tensor]:
    return net.params()


@pytest.mark.skipif(not on_cpu(), reason="sb3-contrib's update runs on the CPU here")
@pytest.mark.parametrize(("warmup", "delay"), [(1, 1), (100, 3)])
def test_update_equals_sb3_contrib_crossq(warmup: int, delay: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Updates of sb3-contrib's CrossQ and softac's from the same state (weights, running statistics,
    their warm-up clocks, α), the same minibatch and the same policy noise: the gradients of every
    network parameter and of log α agree, and so do the new running statistics. (warmup 1: the
    renormalising branch from the second update on; delay 3: critic-only and actor updates.)

    Gradients rather than the parameters after Adam: Adam's first steps are lr·sign(g), so a
    coordinate whose gradient is ~1e-12 on one side and −1e-12 on the other moves 2·lr apart on
    rounding alone. softac's critic loss is Σ_j E[(Q_j − y)²] (the specification's), sb3's is half
    of it: the critics' gradients are compared as ours = 2 · theirs. The learning rates are 0 on
    both sides for the same reason: the actor step reads the critics just stepped, and a few
    sign-flipped coordinates would make its gradient differ by ~1 %; every update starts from
    sb3's state anyway, and the running statistics and their warm-up clocks still advance."""
    model = _sb3_crossq(warmup, delay)
    model.lr_schedule = lambda _: 0.0
    # The tanh correction: sb3 computes log(1 − tanh²(u) + 1e-6), softac the exact quantity in the
    # stable form 2(log 2 − u − softplus(−2u)) (the specification's). The 1e-6 shifts log π by up to
    # ~2e-4 here, and batch normalisation's backward (a small residual of larger terms) turns that
    # into ~1 % on the first layer's gradient: compare the same function, ε = 0.
    model.actor.action_dist.epsilon = 0.0
    batch_size = 32
    agent = CrossQ("Pendulum-v1", **{**SMALL, "batch_size": batch_size}, seed=1, renorm_warmup=warmup,
                   policy_delay=delay, actor_lr=1e-30, critic_lr=1e-30, alpha_lr=1e-30)  # fmt: skip
    rng = np.random.default_rng(0)
    noise: deque[torch.Tensor] = deque()

    def rsample(self: torch.distributions.Normal, sample_shape: Any = ()) -> torch.Tensor:
        return self.loc + self.scale * noise.popleft()  # sb3's squashed Gaussian draws here

    monkeypatch.setattr(torch.distributions.Normal, "rsample", rsample)
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    checked = {"critic": 0, "actor": 0}
    for update in range(5):
        _copy_from_sb3(agent, model)
        with torch.no_grad():
            agent.log_alpha.copy_(model.log_ent_coef)
        obs = torch.as_tensor(rng.normal(size=(batch_size, 3)), dtype=torch.float32)
        act = torch.as_tensor(rng.uniform(-1, 1, size=(batch_size, 1)), dtype=torch.float32)
        nxt = torch.as_tensor(rng.normal(size=(batch_size, 3)), dtype=torch.float32)
        rew = torch.as_tensor(rng.normal(size=(batch_size, 1)), dtype=torch.float32)
        done = torch.as_tensor(rng.random((batch_size, 1)) < 0.2, dtype=torch.float32)
        xi = torch.as_tensor(rng.normal(size=(2, batch_size, 1)), dtype=torch.float32)
        sample = ReplayBufferSamples(obs, act, nxt, done, rew, None)
        monkeypatch.setattr(model.replay_buffer, "sample", lambda *a, sample=sample, **k: sample)
        for opt in agent.optimizers().values():
            opt.zero_grad(set_to_none=True)
        actor_phase = bool(agent.update_phase(update))
        noise.extend([xi[0], xi[1]] if actor_phase else [xi[0]])  # ã' always, ã in actor steps only
        model.train(gradient_steps=1, batch_size=batch_size)
        batch = Batch(torch.cat([obs, act], -1)[None], obs[None], act[None], rew[:, 0][None], done[:, 0][None],
                      nxt[None])  # fmt: skip
        agent._compute((batch, xi[None]), actor_phase)
        assert not noise  # both sides drew exactly the noise they were given
        theirs = CrossQ("Pendulum-v1", **SMALL, seed=1)
        _copy_from_sb3(theirs, model, grads=True)
        # The running statistics after the update (sb3's critics update theirs in every update, the
        # actor's only in its own step, as ours).
        stats = CrossQ("Pendulum-v1", **SMALL, seed=1)
        _copy_from_sb3(stats, model)
        for mine, ref in ((agent.actor.trunk, stats.actor.trunk), (agent.critic.net, stats.critic.net)):
            for key, value in ref.named_buffers():
                torch.testing.assert_close(getattr(mine, key), value, rtol=1e-5, atol=1e-7, msg=key)
        if not actor_phase:  # sb3's actor loss also back-propagates into its critics' .grad
            for g, ref in zip(_params_of(agent.critic.net), _params_of(theirs.critic.net), strict=True):
                torch.testing.assert_close(g.grad, 2 * ref, rtol=1e-4, atol=1e-5)
            checked["critic"] += 1
        else:
            for g, ref in zip(_params_of(agent.actor.trunk), _params_of(theirs.actor.trunk), strict=True):
                torch.testing.assert_close(g.grad, ref, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(agent.log_alpha.grad, model.log_ent_coef.grad, rtol=1e-5, atol=1e-7)
            checked["actor"] += 1
    assert checked["actor"] > 0 and (checked["critic"] > 0 or delay == 1)


@pytest.mark.parametrize("norm", ["batchrenorm", "batchnorm"])
def test_running_statistics_are_state_restored_by_snapshots_and_checkpoints(tmp_path: Path, norm: str) -> None:
    agent = CrossQ("Pendulum-v1", **SMALL, seed=3, renorm_warmup=1, norm=norm)
    fill_buffer(agent, 256)
    before = state_tensors(agent)
    snapshot = Snapshot(agent.mutable_tensors(), agent.rng.dev)
    agent.update()
    agent.update()
    after = state_tensors(agent)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert {"net/critic/net.ra_mean_0", "net/critic/net.ra_var_2", "net/critic/net.renorm_steps"} <= changed
    snapshot.restore()  # what a CUDA-graph warm-up and a failed compilation do
    assert_bit_identical(state_tensors(agent), before)
    agent.update()
    agent.save(tmp_path / "ckpt")
    loaded = CrossQ.load(tmp_path / "ckpt")
    assert loaded.critic.net.norm == loaded.actor.trunk.norm == norm
    assert_bit_identical(state_tensors(loaded), state_tensors(agent))


def test_config_has_only_its_fields_and_other_configs_are_refused() -> None:
    assert not hasattr(CrossQConfig(), "tau")  # no target networks, so no τ
    with pytest.raises(SoftacError, match="SAC needs a SACConfig"):
        SAC("Pendulum-v1", config=CrossQConfig())
    r = run_cli("train", "--algo", "crossq", "--tau", "0.1", "--total-steps", "10")
    assert r.returncode == 2 and "--tau" in r.stderr


def test_crossq_cli_run_reaches_updates_and_resumes_bit_identically(tmp_path: Path) -> None:
    flags = ["--critic-hidden-sizes", "32", "32", "--learning-starts", "100", "--eval-freq", "200",
             "--checkpoint-freq", "200", "--renorm-warmup", "50", "--preset", "none", "--threads", "1"]  # fmt: skip
    straight, half = tmp_path / "straight", tmp_path / "half"
    for run_dir, steps in ((straight, "400"), (half, "200")):
        r = run_cli("train", "--algo", "crossq", "--total-steps", steps, "--run-dir", str(run_dir), *flags)
        assert r.returncode == 0, r.stderr
    r = run_cli("train", "--resume", str(half), "--total-steps", "400")
    assert r.returncode == 0, r.stderr
    a, b = CrossQ.load(straight), CrossQ.load(half)
    assert a.updates == 300 and int(a.critic.net.renorm_steps[0]) == 300
    assert_bit_identical(state_tensors(a), state_tensors(b))


@pytest.mark.parametrize("flags", [["--norm", "batchnorm"], ["--network", "simba", "--simba-width-actor", "16"]])
def test_crossq_cli_options_train_to_updates(tmp_path: Path, flags: list[str]) -> None:
    """Plain BatchNorm in every layer; a SimBa actor beside batch-renormalised MLP critics."""
    r = run_cli("train", "--algo", "crossq", "--total-steps", "200", "--learning-starts", "100", "--eval-freq", "200",
                "--critic-hidden-sizes", "32", "32", "--preset", "none", "--run-dir", str(tmp_path / "run"),
                *TINY_FLAGS, *flags)  # fmt: skip
    assert r.returncode == 0, r.stderr
    agent = CrossQ.load(tmp_path / "run")
    assert agent.updates == 100 and int(agent.critic.net.renorm_steps[0]) == 100
    assert agent.critic.net.norm == ("batchnorm" if "batchnorm" in flags else "batchrenorm")
    assert isinstance(agent.actor.trunk, BatchedSimba) == ("simba" in flags)


@pytest.mark.slow
def test_crossq_learns_pendulum_faster_than_sacs_test_budget(tmp_path: Path) -> None:
    """CrossQ (critics 256 × 256 instead of 2048 to fit 2 CPU cores) solves Pendulum-v1 (≥ −200, the
    bar of SAC's learning test) in 10,000 steps, where SAC's test (tests/test_learning.py) gets 15,000.

    Why 10,000 (2026-12-04; until then 6,000): evaluated every 1,000 steps, seeds 0-4 hover around
    the bar from 5k to 9k (at 6k: −207, −212, −204, −207, −197; with the code before the squashed-Gaussian
    node, seeds 0-3: −200, −204, −216, −197 — the old 6k test passed on seed 0 by 0.4) and all are above it at
    10k: −187, −190, −194, −181; seed 4 too (−185). Seed 0 runs here."""
    agent = CrossQ("Pendulum-v1", seed=0, total_steps=10_000, learning_starts=1000, critic_hidden_sizes=(256, 256),
                   threads=1)  # fmt: skip
    agent.learn(run_dir=tmp_path / "crossq", progress=False)
    rows = read_progress(tmp_path / "crossq" / "progress.csv")
    assert agent.updates == 9000 and int(rows[-1]["step"]) == 10_000
    assert float(rows[-1]["eval_return_mean"]) >= -200.0
