"""Prioritized experience replay (issue 20): the sum tree's sums, the sampling frequencies against
p^α / Σ p^α, the importance weights against the hand formula, β's schedule, the priorities an
update writes against |δ| recomputed from the networks, stacked learners against single runs,
the CLI flag, an exact resume, and the refusals."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, assert_learners_equal_singles, state_tensors

from softac import DDPG, DQN, SAC, TD3, CrossQ, DiscreteSAC, cli
from softac.data.per import PrioritizedReplay, SumTree
from softac.data.replay import ReplayBuffer
from softac.errors import SoftacError
from softac.io.rundir import list_checkpoints
from softac.losses.common import critic_loss, td_priority
from softac.rng import LearnerRNG

CPU = torch.device("cpu")


def _buffer(size: int, capacity: int = 12, learners: int = 2, alpha: float = 0.6, beta: float = 0.4
            ) -> PrioritizedReplay:  # fmt: skip
    buf = PrioritizedReplay(learners, capacity, 1, 1, CPU, alpha=alpha, beta=beta, eps=1e-6)
    rows = np.arange(learners * size * buf.row, dtype=np.float32).reshape(learners, size, buf.row)
    buf.add_all(rows)
    return buf


def _set_priorities(buf: PrioritizedReplay, td: np.ndarray) -> None:
    """Give rows 0 … n−1 of every learner the priorities |td| + ε through the update's own path."""
    buf.index = torch.arange(td.shape[1]).expand(td.shape[0], -1).contiguous()
    buf.prioritize({"per/td": torch.from_numpy(td).float()})
    td[:] = td.astype(np.float32)  # the |δ| the buffer saw (a float32 loss output), for the checks


@pytest.mark.parametrize("host", [True, False], ids=["numpy", "torch"])
def test_sum_tree_sums_after_updates(host: bool) -> None:
    """Every internal node is the sum of its children after batches of updates (duplicates
    included), and a rebuild from the leaves alone reproduces the tree bit for bit; the numpy
    (CPU) and torch (device) paths build the same tree and find the same rows."""
    gen = torch.Generator().manual_seed(0)
    tree, other = SumTree(3, 11, CPU, host=host), SumTree(3, 11, CPU, host=not host)  # 16 leaves, 11 used
    assert tree.depth == 4 and tree.leaves == 16
    for _ in range(5):
        idx = torch.randint(0, 11, (3, 7), generator=gen)
        values = torch.rand((3, 7), generator=gen, dtype=torch.float64)
        tree.set(idx, values)
        other.set(idx, values)
        tree.set(idx[1:2, :2], values[1:2, :2] * 3, k=1)
        other.set(idx[1:2, :2], values[1:2, :2] * 3, k=1)
    assert torch.equal(tree.nodes, other.nodes)
    target = torch.rand((3, 1000), generator=gen, dtype=torch.float64) * tree.total()
    found = tree.find(target)
    assert torch.equal(found, other.find(target))
    # by hand: row i holds the masses [Σ_{j<i} leaf_j, Σ_{j≤i} leaf_j)
    cum = tree.nodes[:, 16:].cumsum(dim=1)
    assert bool(((cum.gather(1, found) - tree.value(found) <= target + 1e-12) & (target < cum.gather(1, found))).all())
    nodes = tree.nodes.numpy().copy()
    for n in range(1, 16):
        np.testing.assert_allclose(nodes[:, n], nodes[:, 2 * n] + nodes[:, 2 * n + 1], rtol=1e-15)
    np.testing.assert_allclose(nodes[:, 1], nodes[:, 16:].sum(axis=1), rtol=1e-12)
    incremental = tree.nodes.clone()
    tree.nodes[:, :16] = 0.0
    for k in range(3):
        tree.rebuild(k)
    assert torch.equal(tree.nodes, incremental)


def test_new_rows_get_the_largest_priority_seen() -> None:
    buf = _buffer(4)
    assert torch.equal(buf.tree.value(torch.arange(4).expand(2, 4)), torch.ones((2, 4), dtype=torch.float64))
    _set_priorities(buf, np.array([[0.5, 3.0, 0.1, 0.2], [0.1, 0.2, 0.3, 7.0]]))
    buf.add(0, np.zeros((2, buf.row), np.float32))  # rows 4, 5 of learner 0 only
    leaves = buf.tree.nodes[:, buf.tree.leaves :]
    torch.testing.assert_close(leaves[0, 4:6], torch.full((2,), (3.0 + 1e-6) ** 0.6, dtype=torch.float64))
    assert leaves[1, 4:].eq(0).all()
    buf.add_all(np.zeros((2, 1, buf.row), np.float32))  # learner 0 row 6, learner 1 row 4
    torch.testing.assert_close(leaves[1, 4], torch.tensor((7.0 + 1e-6) ** 0.6, dtype=torch.float64))
    torch.testing.assert_close(buf.max_priority.ravel(), torch.tensor([3.0, 7.0], dtype=torch.float64) + 1e-6)


def test_sampling_frequencies_match_p_alpha() -> None:
    """120,000 draws per learner from 7 rows (a 12-row buffer: zero leaves around them) against
    P(i) = p_i^α / Σ_j p_j^α computed here: Pearson's χ² with 6 degrees of freedom stays below
    its 0.999 quantile (22.46); the stratified draws make it smaller than for i.i.d. ones."""
    buf = _buffer(7)
    td = np.array([[0.0, 1.0, 2.0, 3.0, 0.5, 10.0, 0.01], [5.0, 0.2, 0.2, 0.0, 1.0, 1.0, 4.0]])
    _set_priorities(buf, td)
    expected = (td + 1e-6) ** 0.6 / ((td + 1e-6) ** 0.6).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(buf.probabilities()[:, :7].numpy(), expected, rtol=1e-12)
    rng = LearnerRNG([0, 1], CPU)
    counts = np.zeros((2, 7))
    for _ in range(1000):
        buf.sample(120, rng)
        for k in range(2):
            counts[k] += np.bincount(buf.index[k].numpy(), minlength=7)
    assert counts.sum() == 240_000
    for k in range(2):
        e = expected[k] * counts[k].sum()
        chi2 = ((counts[k] - e) ** 2 / e).sum()
        assert 0.0 < chi2 < 22.46, (k, chi2, counts[k], e)


def test_importance_weights_equal_the_hand_formula() -> None:
    buf = _buffer(9, alpha=0.7, beta=0.5)
    td = np.random.default_rng(0).exponential(size=(2, 9))
    _set_priorities(buf, td)
    buf.anneal(0.5)  # β = 0.5 + 0.5 · 0.5
    assert float(buf.beta) == 0.75
    batch = buf.sample(32, LearnerRNG([3, 4], CPU))
    assert batch.weight is not None and batch.weight.dtype == torch.float32
    p = (td + 1e-6) ** 0.7
    prob = p / p.sum(axis=1, keepdims=True)
    idx = buf.index.numpy()
    w = (9 * np.take_along_axis(prob, idx, axis=1)) ** -0.75
    np.testing.assert_allclose(batch.weight.numpy(), w / w.max(axis=1, keepdims=True), rtol=1e-6)
    # the gathered rows are the sampled ones (row j of learner k holds the numbers written there)
    stored = buf.storage[torch.arange(2).unsqueeze(1), buf.index]
    assert torch.equal(batch.reward, stored[..., buf.obs_dim + buf.act_dim])


def test_beta_anneals_linearly_to_one() -> None:
    buf = _buffer(3, beta=0.4)
    for progress, beta in ((0.0, 0.4), (0.25, 0.55), (1.0, 1.0), (3.0, 1.0)):
        buf.anneal(progress)
        assert float(buf.beta) == pytest.approx(beta, abs=1e-15)
    agent = SAC("Pendulum-v1", **TINY, per=True, per_beta=0.2, learning_starts=100, total_steps=150, eval_freq=10_000)
    agent.learn(progress=False)
    assert agent.updates == 50 and float(agent.buffer.beta) == 1.0  # the last update at t = total_steps


def test_weighted_critic_loss_and_priorities_by_hand() -> None:
    q = torch.tensor([[[1.0, 2.0, 3.0], [1.5, 0.0, 3.5]]])  # (L=1, 2 critics, B=3)
    y = torch.tensor([[2.0, 2.0, 2.0]])
    w = torch.tensor([[1.0, 0.5, 0.25]])
    by_hand = ((1 * 1 + 0.5 * 0 + 0.25 * 1) + (1 * 0.25 + 0.5 * 4 + 0.25 * 2.25)) / 3
    torch.testing.assert_close(critic_loss(q, y, w), torch.tensor([by_hand]))
    torch.testing.assert_close(critic_loss(q, y, torch.ones_like(w)), critic_loss(q, y))
    assert torch.equal(td_priority(q, y), torch.tensor([[1.0, 2.0, 1.5]]))


def test_an_update_writes_the_td_errors_of_its_rows() -> None:
    """DDPG (deterministic target, one critic): after one update the sampled rows' leaves are
    (|δ| + ε)^α with δ = Q(s, a) − (r + γ (1 − d) Q_targ(s', μ_targ(s'))) recomputed here from
    copies of the networks taken before the update."""
    agent = DDPG("Pendulum-v1", **TINY, per=True, learning_starts=100, total_steps=130, eval_freq=10_000)
    agent.learn(progress=False)
    critic, critic_t, actor_t = (copy.deepcopy(m) for m in (agent.critic, agent.critic_target, agent.actor_target))
    leaves = agent.buffer.tree.nodes[0, agent.buffer.tree.leaves :].clone()  # the priorities it samples by
    metrics = agent.update()
    rows = agent.buffer.storage[0, agent.buffer.index[0]]
    o, a = agent.spec.obs_dim, agent.spec.act_dim
    s_a, r, d, s2 = rows[:, : o + a], rows[:, o + a], rows[:, o + a + 1], rows[:, o + a + 2 :]
    with torch.no_grad():
        y = r + 0.99 * (1 - d) * critic_t(torch.cat([s2, actor_t(s2[None])[0]], -1)[None])[0, 0]
        delta = critic(s_a[None])[0, 0] - y
    expected = (delta.abs().double() + 1e-6) ** 0.6
    torch.testing.assert_close(agent.buffer.tree.value(agent.buffer.index)[0], expected, rtol=1e-5, atol=1e-7)
    # the critic's loss E[w δ²], w from the priorities before the update, N = 130 rows, β at t = 130
    prob = leaves[agent.buffer.index[0]] / leaves.sum()
    w = (130 * prob) ** -(0.4 + 0.6 * 130 / 130)
    loss = (w / w.max() * delta.double().square()).mean()
    torch.testing.assert_close(metrics["loss/critic"][0].double(), loss, rtol=1e-5, atol=1e-6)


def test_dqn_update_writes_the_td_errors_of_its_rows() -> None:
    """DQN (Huber loss): the sampled rows' new leaves are (|δ| + ε)^α with δ = Q(s, a) − (r + γ (1 − d)
    max_a' Q_targ(s', a')) from copies of the networks before the update, and the loss is E[w · H(δ)]."""
    agent = DQN("CartPole-v1", **TINY, per=True, double_q=False, learning_starts=100, total_steps=120,
                utd_ratio=1.0, eval_freq=10_000)  # fmt: skip
    agent.learn(progress=False)
    q_net, q_t = copy.deepcopy(agent.q), copy.deepcopy(agent.q_target)
    leaves = agent.buffer.tree.nodes[0, agent.buffer.tree.leaves :].clone()
    metrics = agent.update()
    rows = agent.buffer.storage[0, agent.buffer.index[0]]
    o = agent.spec.obs_dim
    s, a, r, d, s2 = rows[:, :o], rows[:, o].long(), rows[:, o + 1], rows[:, o + 2], rows[:, o + 3 :]
    with torch.no_grad():
        y = r + agent.config.gamma * (1 - d) * q_t(s2[None])[0].max(dim=-1).values
        delta = q_net(s[None])[0].gather(1, a[:, None])[:, 0] - y
    torch.testing.assert_close(agent.buffer.tree.value(agent.buffer.index)[0],
                               (delta.abs().double() + 1e-6) ** 0.6, rtol=1e-5, atol=1e-7)  # fmt: skip
    prob = leaves[agent.buffer.index[0]] / leaves.sum()
    w = (120 * prob) ** -1.0  # β = 1 at t = total_steps
    huber = torch.where(delta.abs() <= 1, 0.5 * delta.square(), delta.abs() - 0.5).double()
    torch.testing.assert_close(metrics["loss/critic"][0].double(), (w / w.max() * huber).mean(), rtol=1e-5, atol=1e-6)


def test_discrete_sac_trains_with_priorities() -> None:
    agent = DiscreteSAC("CartPole-v1", **TINY, per=True, learning_starts=100, total_steps=160, eval_freq=10_000)
    agent.learn(progress=False)
    assert agent.updates > 0 and isinstance(agent.buffer, PrioritizedReplay)
    leaves = agent.buffer.tree.nodes[0, agent.buffer.tree.leaves : agent.buffer.tree.leaves + 160]
    assert bool((leaves > 0).all()) and float(agent.buffer.max_priority[0]) != 1.0


def test_stacked_learners_equal_single_runs() -> None:
    kw = {**TINY, "per": True, "learning_starts": 150, "total_steps": 200, "eval_freq": 10_000}
    stacked = SAC("Pendulum-v1", **kw, seeds=[3, 7])
    stacked.learn(progress=False)
    singles = [SAC("Pendulum-v1", **kw, seed=s) for s in (3, 7)]
    for k, single in enumerate(singles):
        single.learn(progress=False)
        assert single.updates == 50
        torch.testing.assert_close(stacked.buffer.tree.nodes[k], single.buffer.tree.nodes[0], rtol=1e-4, atol=1e-6)
    assert_learners_equal_singles(stacked, singles, 1e-4, 1e-5)
    for _ in range(5):  # and the rows each learner draws are its single run's, exactly
        stacked.update()
        for k, single in enumerate(singles):
            single.update()
            assert torch.equal(stacked.buffer.index[k], single.buffer.index[0])


def test_cli_flag_trains_with_n_step_rows(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = ["train", "--algo", "td3", "--env", "Pendulum-v1", "--per", "--per-alpha", "0.5", "--n-step", "3",
            "--learning-starts", "100", "--total-steps", "160", "--eval-freq", "160", "--run-dir", str(run_dir),
            *TINY_FLAGS]  # fmt: skip
    assert cli.main(argv) == 0
    agent = TD3.load(run_dir)
    assert agent.config.per and agent.config.per_alpha == 0.5 and agent.updates == 60
    assert isinstance(agent.buffer, PrioritizedReplay)
    size = int(agent.buffer.size[0])
    leaves = agent.buffer.tree.nodes[0, agent.buffer.tree.leaves :]
    assert size == 158 and bool((leaves[:size] > 0).all()) and bool((leaves[size:] == 0).all())
    assert float(agent.buffer.max_priority[0]) > 1.0  # TD errors of an untrained critic on rewards of −1…−16


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    """The checkpoint at step 400 of a 600-step run (an episode boundary), resumed: the same
    networks, rows, priorities and p_max as the run that went straight through."""
    kw = {**TINY, "per": True, "learning_starts": 300, "eval_freq": 400, "checkpoint_freq": 400, "seed": 2,
          "total_steps": 600}  # fmt: skip
    straight_dir = tmp_path / "straight"
    straight = SAC("Pendulum-v1", **kw)
    straight.learn(run_dir=straight_dir, progress=False)
    run_dir = tmp_path / "run"
    shutil.copytree(straight_dir, run_dir)
    shutil.rmtree(list_checkpoints(run_dir)[-1])  # as if killed after the checkpoint at 400
    resumed = SAC.load(run_dir)
    assert resumed.updates == 100 and isinstance(resumed.buffer, PrioritizedReplay)
    resumed.learn(total_steps=600, run_dir=run_dir, progress=False)
    assert resumed.updates == straight.updates == 300
    assert resumed.buffer.size[0] == straight.buffer.size[0] == 600
    assert torch.equal(resumed.buffer.storage[:, :600], straight.buffer.storage[:, :600])
    assert torch.equal(resumed.buffer.tree.nodes, straight.buffer.tree.nodes)
    assert torch.equal(resumed.buffer.max_priority, straight.buffer.max_priority)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))


def test_corrupted_priorities_are_refused(tmp_path: Path) -> None:
    buf = _buffer(3)
    buf.tree.nodes[0, buf.tree.leaves + 1] = float("nan")
    with pytest.raises(ValueError, match="priorities"):
        buf.set_fill(0, 3, 3)


def test_off_by_default_and_refusals() -> None:
    plain = SAC("Pendulum-v1", **TINY)
    assert type(plain.buffer) is ReplayBuffer and not plain.config.per  # the default path has no tree
    plain.buffer.add_all(np.zeros((1, 70, plain.buffer.row), np.float32))
    assert plain.buffer.sample(8, plain.rng).weight is None
    for name, bad in (("per_alpha", -0.1), ("per_beta", 1.5), ("per_eps", 0.0)):
        with pytest.raises(SoftacError, match=name):
            SAC("Pendulum-v1", **TINY, per=True, **{name: bad})
    # CrossQ's critic loss takes no importance weights: it has no such field
    with pytest.raises(SoftacError, match="per"):
        CrossQ("Pendulum-v1", **TINY, per=True)
