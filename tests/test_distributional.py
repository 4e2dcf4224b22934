"""The distributional critic (``--critic-dist``): its targets on hand-computed numbers
(losses/distributional.py), one update's critic loss against an independent computation in plain
torch on the agent's weights and batch, and the flags as a user meets them."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY, TINY_FLAGS, fill_buffer, run_cli

from softac import DDPG, SAC, TD3, cli
from softac.errors import SoftacError
from softac.logging import read_progress
from softac.losses import distributional as D


def test_support_and_expected_value() -> None:
    atoms = D.support(-1.0, 1.0, 5)
    torch.testing.assert_close(atoms, torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.2]]))
    # Σ p z = −0.1 − 0.1 + 0 + 0.1 + 0.2 = 0.1
    torch.testing.assert_close(D.expected_value(logits, atoms), torch.tensor([0.1]))


def test_categorical_projection_on_hand_computed_numbers() -> None:
    atoms = D.support(0.0, 4.0, 5)  # Δz = 1
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.3, 0.1]])
    # r = 0.5, γ = 0.5, d = 0: T z = 0.5 + 0.5 z = [0.5, 1.0, 1.5, 2.0, 2.5]
    # 0.1 at 0.5 → 0.05 to atom 0, 0.05 to atom 1; 0.2 at 1.0 → atom 1; 0.3 at 1.5 → 0.15/0.15 to 1/2;
    # 0.3 at 2.0 → atom 2; 0.1 at 2.5 → 0.05/0.05 to 2/3
    out = D.categorical_projection(torch.tensor([0.5]), torch.tensor([0.0]), 0.5, probs, atoms)
    torch.testing.assert_close(out, torch.tensor([[0.05, 0.40, 0.50, 0.05, 0.0]]))
    # terminal: all mass on r = 2.3 → 0.7 to atom 2, 0.3 to atom 3
    out = D.categorical_projection(torch.tensor([2.3]), torch.tensor([1.0]), 0.5, probs, atoms)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.7, 0.3, 0.0]]))
    # SAC's entropy term: shift s = 1 moves every atom by −γ s = −0.5 before clipping at v_min = 0
    out = D.categorical_projection(torch.tensor([0.5]), torch.tensor([0.0]), 0.5, probs, atoms, torch.tensor([1.0]))
    # T z = [0, 0.5, 1, 1.5, 2]: 0.1 → 0; 0.2 → 0.1/0.1; 0.3 → 1; 0.3 → 0.15/0.15; 0.1 → 2
    torch.testing.assert_close(out, torch.tensor([[0.2, 0.55, 0.25, 0.0, 0.0]]))
    # beyond the support: clipped to the end atoms
    out = D.categorical_projection(torch.tensor([9.0]), torch.tensor([1.0]), 0.5, probs, atoms)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))


def test_hl_gauss_histogram() -> None:
    atoms = D.support(-5.0, 5.0, 101)  # Δz = 0.1
    y = torch.tensor([0.0, 1.234, -2.05])
    p = D.hl_gauss_target(y, atoms, sigma=0.75 * 0.1)
    torch.testing.assert_close(p.sum(-1), torch.ones(3))
    torch.testing.assert_close((p * atoms).sum(-1), y, rtol=0, atol=1e-4)  # far from the edges: mean ≈ y
    # y = 0 at the centre of bin 50 [−0.05, 0.05]: mass Φ(0.05/σ) − Φ(−0.05/σ) there, by hand
    sigma = 0.075
    centre = math.erf(0.05 / (sigma * math.sqrt(2)))
    assert p[0, 50].item() == pytest.approx(centre, rel=1e-5)
    # y = −2.05 on the edge between bins 29 and 30: the mass splits exactly in half between them
    assert p[2, 29].item() == pytest.approx(p[2, 30].item(), rel=1e-5)
    assert p[2, 28].item() == pytest.approx(p[2, 31].item(), rel=1e-5)
    # far beyond the support (Φ = 1 at every edge in float32): clipped to the end atom, no 0/0
    far = D.hl_gauss_target(torch.tensor([-50.0, 50.0]), atoms, sigma=0.075)
    torch.testing.assert_close(far, D.hl_gauss_target(torch.tensor([-5.0, 5.0]), atoms, sigma=0.075))
    assert far.isfinite().all() and far[0, 0] > 0.5 and far[1, -1] > 0.5


def test_cross_entropy_gradient_reaches_the_logits_only() -> None:
    logits = torch.zeros(1, 3, requires_grad=True)
    target = torch.tensor([[0.2, 0.3, 0.5]], requires_grad=True)
    D.cross_entropy(logits, target).sum().backward()
    # ∂/∂ℓ of −Σ p log softmax(ℓ) = softmax(ℓ) − p
    assert logits.grad is not None
    torch.testing.assert_close(logits.grad, torch.tensor([[1 / 3 - 0.2, 1 / 3 - 0.3, 1 / 3 - 0.5]]))
    assert target.grad is None


def test_two_hot_on_hand_computed_numbers() -> None:
    atoms = D.support(0.0, 4.0, 5)
    out = D.two_hot_target(torch.tensor([1.25, 3.0, -7.0, 9.0]), atoms)
    expected = torch.tensor([[0, 0.75, 0.25, 0, 0], [0, 0, 0, 1.0, 0], [1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0]])
    torch.testing.assert_close(out, expected)


def test_target_histogram_takes_the_member_with_the_smaller_expected_value() -> None:
    atoms = D.support(0.0, 4.0, 5)
    # member 0 puts its mass on atom 3 in row 0 and atom 1 in row 1; member 1 the other way round
    logits = torch.full((2, 2, 5), -30.0)
    logits[0, 0, 3] = logits[0, 1, 1] = logits[1, 0, 1] = logits[1, 1, 3] = 30.0
    r, d = torch.zeros(2), torch.zeros(2)
    out = D.target_histogram("c51", r, d, 1.0, logits, atoms)
    torch.testing.assert_close(out, torch.tensor([[0, 1.0, 0, 0, 0], [0, 1.0, 0, 0, 0]]), atol=1e-6, rtol=0)
    # the scalar targets: y = r + γ(min_j Q_j − shift) = 0 + 0.5 (1 − 0.5) = 0.25 → 0.75 / 0.25 on atoms 0 / 1
    out = D.target_histogram("two_hot", r, d, 0.5, logits, atoms, shift=torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(out, torch.tensor([[0.75, 0.25, 0, 0, 0]] * 2), atol=1e-6, rtol=0)


# -- one update's critic loss, computed independently ----------------------------------------------
# fill_buffer's rewards are N(0, 1): r + γ z of the top atoms lands beyond v_max = 5 and is clipped
DIST = {"dist_bins": 21, "dist_v_min": -20.0, "dist_v_max": 5.0}


def _mlp(net: Any, g: int, x: torch.Tensor) -> torch.Tensor:
    """Group g of a BatchedMLP as F.linear layers with ReLU between."""
    weights, biases = list(net.weights), list(net.biases)
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        x = F.linear(x, w[g].T, b[g, 0])
        if i < len(weights) - 1:
            x = torch.relu(x)
    return x


def _c51_by_loops(reward: float, done: float, gamma: float, probs: list[float], z: list[float]) -> list[float]:
    """Bellemare et al. 2017, Algorithm 1, one atom at a time in plain Python."""
    dz, out = z[1] - z[0], [0.0] * len(z)
    for zj, pj in zip(z, probs, strict=True):
        tz = min(max(reward + gamma * (1 - done) * zj, z[0]), z[-1])
        b = (tz - z[0]) / dz
        lo, hi = math.floor(b), math.ceil(b)
        if lo == hi:
            out[lo] += pj
        else:
            out[lo] += pj * (hi - b)
            out[hi] += pj * (b - lo)
    return out


@pytest.mark.parametrize(("cls", "kind"), [(SAC, "c51"), (SAC, "hl_gauss"), (TD3, "c51"), (TD3, "two_hot")])
def test_one_update_critic_loss_equals_an_independent_computation(cls: type, kind: str) -> None:
    agent = cls("Pendulum-v1", **{**TINY, **DIST, "critic_dist": kind, "seed": 2})
    fill_buffer(agent, 512)
    agent.update()  # away from the initial weights (targets ≠ online critics)
    draws = agent._draw(True)
    batch, noise = draws
    actor = (agent.actor if cls is SAC else agent.actor_target).trunk
    critic_t, critic = agent.critic_target.net, agent.critic.net
    with torch.no_grad():
        nets = {k: [p.clone() for p in net.params()] for k, net in (("a", actor), ("t", critic_t), ("c", critic))}
        log_alpha = agent.log_alpha.clone() if cls is SAC else None
    metrics = agent._compute(draws, True)
    with torch.no_grad():
        for net, key in ((actor, "a"), (critic_t, "t"), (critic, "c")):  # the weights before the step
            for p, saved in zip(net.params(), nets[key], strict=True):
                p.copy_(saved)
        s2, r, d, gamma = batch.next_obs[0], batch.reward[0], batch.terminated[0], agent.config.gamma
        z = torch.linspace(-20.0, 5.0, 21)
        out = _mlp(actor, 0, s2)
        if cls is SAC:
            mean, log_std = out.chunk(2, dim=-1)
            log_std = log_std.clamp(agent.config.log_std_min, agent.config.log_std_max)
            u = mean + log_std.exp() * noise[0, 0]
            a2 = torch.tanh(u)
            gauss = torch.distributions.Normal(mean, log_std.exp()).log_prob(u)
            log_pi = (gauss - torch.log1p(-a2.square() + 1e-12)).sum(-1)
            shift = float(log_alpha[0].exp()) * log_pi  # type: ignore[index]
        else:
            clip = agent.config.target_noise_clip
            smooth = (noise[0] * agent.config.target_noise).clamp(-clip, clip)
            a2, shift = (torch.tanh(out) + smooth).clamp(-1.0, 1.0), torch.zeros_like(r)
        next_logits = torch.stack([_mlp(critic_t, j, torch.cat([s2, a2], -1)) for j in range(agent.config.n_critics)])
        next_probs = next_logits.softmax(-1)
        q = (next_probs * z).sum(-1)  # (n, B)
        target = torch.zeros(len(r), 21)
        for i in range(len(r)):
            j = int(q[:, i].argmin())
            if kind == "c51":
                # SAC's entropy term moves every atom: r + γ(z − s) = (r − γ s) + γ z
                ri = float(r[i]) - gamma * (1 - float(d[i])) * float(shift[i])
                target[i] = torch.tensor(_c51_by_loops(ri, float(d[i]), gamma, next_probs[j, i].tolist(), z.tolist()))
            else:
                y = float(r[i]) + gamma * (1 - float(d[i])) * (float(q[j, i]) - float(shift[i]))
                if kind == "hl_gauss":
                    gauss = torch.distributions.Normal(min(max(y, -20.0), 5.0), 0.75 * 1.25)
                    cdf = gauss.cdf(torch.linspace(-20.625, 5.625, 22))  # the bins' edges z ± Δz/2
                    target[i] = (cdf[1:] - cdf[:-1]) / (cdf[-1] - cdf[0])
                else:
                    yc = min(max(y, -20.0), 5.0)
                    k = min(int((yc + 20.0) // 1.25), 19)
                    target[i, k], target[i, k + 1] = (z[k + 1] - yc) / 1.25, (yc - z[k]) / 1.25
        logits = torch.stack([_mlp(critic, j, batch.obs_act[0]) for j in range(agent.config.n_critics)])
        loss = -(target * logits.log_softmax(-1)).sum(-1).mean(-1).sum()
    assert target.sum(-1).allclose(torch.ones(len(r)))
    torch.testing.assert_close(metrics["loss/critic"][0], loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(metrics["q/mean"][0], (logits.softmax(-1) * z).sum(-1).mean(), rtol=1e-5, atol=1e-5)


# -- the flags ------------------------------------------------------------------------------------
def test_distributional_critic_shapes_and_bad_ranges() -> None:
    agent = DDPG("Pendulum-v1", **TINY, critic_dist="two_hot", dist_bins=11)
    assert agent.critic(torch.zeros(1, 5, 4)).shape == (1, 1, 5, 11)
    for bad in ({"dist_bins": 1}, {"dist_v_min": 3.0, "dist_v_max": 3.0}, {"critic_dist": "quantile"}):
        with pytest.raises(SoftacError, match="dist"):
            SAC("Pendulum-v1", **TINY, **bad)


def test_cli_trains_with_a_distributional_critic_and_crossq_refuses_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--total-steps", "300", "--learning-starts", "200", "--eval-freq", "300", "--critic-dist", "hl_gauss",
             "--dist-v-min", "-200", "--dist-v-max", "0"]  # fmt: skip
    done = run_cli("train", "--algo", "sac", "--env", "Pendulum-v1", *TINY_FLAGS, *flags, "--run-dir",
                   str(tmp_path / "run"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert config["critic_dist"] == "hl_gauss" and config["dist_v_min"] == -200.0
    rows = read_progress(tmp_path / "run" / "progress.csv")
    assert int(rows[-1]["updates"]) == 100  # gradient updates ran, steps 200 → 300
    # CrossQ has no distributional critic: the flag is refused in one line (in-process: the same main())
    capsys.readouterr()
    try:
        code = cli.main(["train", "--algo", "crossq", "--critic-dist", "c51", "--run-dir", str(tmp_path / "crossq")])
    except SystemExit as exc:  # argparse's refusal
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--critic-dist" in err[0], err
    assert not (tmp_path / "crossq").exists()


def test_prioritized_replay_with_a_distributional_critic_is_refused_in_one_line() -> None:
    from softac.algos.sac import SACConfig
    from softac.errors import SoftacError

    with pytest.raises(SoftacError, match="--per cannot be combined with --critic-dist hl_gauss"):
        SACConfig(per=True, critic_dist="hl_gauss")
