"""DQN and discrete SAC as agents: the target-update schedule, ε-greedy and categorical acting,
per-learner gradient clipping, exact resume, and the action-space checks. (Their losses are
hand-checked in test_losses_family.py; gradient isolation is in test_grad_isolation.py; the
accelerated forms and the learner axis in test_accel.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_FLAGS, assert_bit_identical, assert_one_line_error, fill_buffer, run_cli, state_tensors

from softac import DQN, SAC, DiscreteSAC, SoftacError, cli
from softac.algos.schedule import env_step_of_update, target_update_due
from softac.io.rundir import list_checkpoints
from softac.logging import read_progress
from softac.losses import dqn as LD
from softac.optim import clip_grads


# -- the target-update schedule ------------------------------------------------------------------
def _simulated(learning_starts: int, utd: float, n_envs: int, steps: int) -> list[int]:
    """The env step count at which each update happens, from the trainer's own rule
    (``OffPolicyAgent.updates_due`` after each vector step)."""
    done, at = 0, []
    for e in range(n_envs, steps + 1, n_envs):
        owed = max(0, int((e - learning_starts) * utd) - done)
        at += [e] * owed
        done += owed
    return at


@pytest.mark.parametrize(("learning_starts", "utd", "n_envs"), [
    (10_000, 0.1, 1), (100, 0.25, 1), (0, 1.0, 1), (37, 1 / 3, 1), (50, 0.7, 1), (20, 2.5, 1), (30, 0.5, 4),
    (0, 3.0, 3),
])  # fmt: skip
def test_env_step_of_every_update_matches_the_trainers_schedule(learning_starts: int, utd: float, n_envs: int) -> None:
    at = _simulated(learning_starts, utd, n_envs, learning_starts + 5000)
    assert len(at) >= 500
    assert [env_step_of_update(i, learning_starts, utd, n_envs) for i in range(len(at))] == at


def test_target_updates_fall_every_interval_env_steps() -> None:
    # CleanRL's CartPole: an update every 10 steps from step 10,010, the target copied at 10,500,
    # 11,000, ...: after the 50th update (index 49), the 100th, ...
    due = [i for i in range(300) if target_update_due(i, 500, 10_000, 0.1, 1)]
    assert due == [49, 99, 149, 199, 249, 299]
    # SB3's defaults: updates at 104, 108, ...; the copy at step 10,000 follows update 2474
    assert [i for i in range(5000) if target_update_due(i, 10_000, 100, 0.25, 1)] == [2474, 4974]
    # an interval that is not a multiple of the update period: the copy follows the next update
    # (updates at 4, 8, 12, ...; boundaries 6, 12, 18, 24 → after the updates at 8, 12, 20, 24)
    assert [i for i in range(6) if target_update_due(i, 6, 0, 0.25, 1)] == [1, 2, 4, 5]
    # several updates per env step: only the first one at a boundary's step is followed by it
    assert [i for i in range(8) if target_update_due(i, 2, 0, 2.0, 1)] == [2, 6]
    # interval 1 with one update per step: after every update (softac's SAC cadence)
    assert all(target_update_due(i, 1, 1000, 1.0, 1) for i in range(100))


def test_dqn_copies_its_target_exactly_on_schedule() -> None:
    agent = DQN("CartPole-v1", **TINY, utd_ratio=1.0, learning_starts=0, target_update_interval=3)
    fill_buffer(agent, 256)
    for i in range(7):
        agent.update()
        same = all(torch.equal(p, q) for p, q in zip(agent.q.parameters(), agent.q_target.parameters(), strict=True))
        assert same == ((i + 1) % 3 == 0), i  # update i is at env step i + 1


# -- acting ----------------------------------------------------------------------------------------
def test_dqn_epsilon_follows_the_linear_schedule() -> None:
    agent = DQN("CartPole-v1", **TINY, total_steps=1000, exploration_fraction=0.2, exploration_final_eps=0.1)
    assert [agent.epsilon(t) for t in (0, 100, 200, 900)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    agent.prepare_explore(100)
    assert float(agent._epsilon) == pytest.approx(0.55)


def test_dqn_exploration_is_losses_epsilon_greedy_on_the_learners_draws() -> None:
    agent = DQN("CartPole-v1", **TINY, learning_starts=0, total_steps=100, exploration_fraction=1.0, seed=3)
    agent.env_steps = 40  # ε = 1 − 0.95 · 0.4 = 0.62
    obs = np.random.default_rng(0).normal(size=(1, 64, 4)).astype(np.float32)
    gen = torch.Generator(device=agent.device).set_state(agent.rng.dev[0].get_state())
    u = torch.empty(64, 2, device=agent.device).uniform_(generator=gen)  # what the learner's stream draws next
    with torch.no_grad():
        q = agent.q(torch.from_numpy(obs).to(agent.device))[0]
    expected = LD.epsilon_greedy(q, agent.epsilon(40), explore_u=u[:, 0], action_u=u[:, 1]).cpu().numpy()
    actions = agent.explore(obs)  # 64 rows: past the numpy path's limit, the torch head acts
    assert actions.shape == (1, 64, 1)
    np.testing.assert_array_equal(actions[0, :, 0], expected)
    assert (actions[0, :, 0] != q.argmax(-1).cpu().numpy()).sum() > 0  # some random actions were taken
    assert torch.equal(gen.get_state(), agent.rng.dev[0].get_state())  # and exactly those draws


def test_dqn_greedy_at_epsilon_zero_and_uniform_warmup() -> None:
    agent = DQN("Acrobot-v1", **TINY, learning_starts=500, exploration_initial_eps=0.0, exploration_final_eps=0.0)
    obs = np.random.default_rng(1).normal(size=(1, 300, 6)).astype(np.float32)
    warm = agent.explore(obs)[0, :, 0]  # before learning_starts: uniform action indices
    assert set(np.unique(warm)) == {0.0, 1.0, 2.0}
    agent.env_steps = 500
    with torch.no_grad():
        greedy = agent.q(torch.from_numpy(obs).to(agent.device))[0].argmax(-1).cpu().numpy()
    np.testing.assert_array_equal(agent.explore(obs)[0, :, 0], greedy)
    np.testing.assert_array_equal(agent.act(obs)[0, :, 0], greedy)


def test_discrete_sac_samples_the_categorical_and_acts_greedily() -> None:
    agent = DiscreteSAC("Acrobot-v1", **TINY, learning_starts=0, seed=5)
    with torch.no_grad():
        agent.actor.trunk.biases[-1].copy_(torch.tensor([[[0.5, -0.7, 1.1]]]))
        agent.actor.trunk.weights[-1].zero_()  # logits = the bias, whatever the state
    obs = np.zeros((1, 20_000, 6), dtype=np.float32)
    sampled = agent.explore(obs)[0, :, 0]
    freq = np.bincount(sampled.astype(int), minlength=3) / len(sampled)
    probs = torch.softmax(torch.tensor([0.5, -0.7, 1.1]), 0).numpy()
    np.testing.assert_allclose(freq, probs, atol=0.01)  # σ of each frequency ≈ 0.0035
    assert (agent.act(obs[:, :5])[0, :, 0] == 2).all()  # deterministic: the most probable action
    action, _ = agent.predict(np.zeros(6, dtype=np.float32))
    assert action == 2 and isinstance(action, np.integer)


# -- gradient clipping -----------------------------------------------------------------------------
def test_clip_grads_is_per_learner() -> None:
    g = [torch.tensor([[3.0, 0.0], [0.3, 0.0]]), torch.tensor([[4.0], [0.4]])]  # norms 5 and 0.5
    clipped, norm = clip_grads(g, 1.0, learners=2)
    torch.testing.assert_close(norm, torch.tensor([5.0, 0.5]))
    torch.testing.assert_close(clipped[0], torch.tensor([[3.0 / 5, 0.0], [0.3, 0.0]]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(clipped[1], torch.tensor([[4.0 / 5], [0.4]]), rtol=1e-5, atol=1e-6)


def test_dqn_step_uses_the_clipped_gradient() -> None:
    agents = [DQN("CartPole-v1", **TINY, seed=2, max_grad_norm=m) for m in (0.0, 0.05)]
    for agent in agents:
        fill_buffer(agent, 256)
        agent.update()
    free, clipped = ([p.grad for p in a.q.trunk.params()] for a in agents)
    norm = torch.sqrt(sum(g.square().sum() for g in free))
    assert norm > 0.05  # the clip bites
    for g_free, g_clip in zip(free, clipped, strict=True):
        torch.testing.assert_close(g_clip, g_free * (0.05 / (norm + 1e-6)), rtol=1e-5, atol=1e-8)


# -- action spaces ---------------------------------------------------------------------------------
def test_algorithms_refuse_the_other_action_space() -> None:
    with pytest.raises(SoftacError, match=r"Box action space, which dqn does not support.*use --algo .*sac"):
        DQN("Pendulum-v1", **TINY)
    with pytest.raises(SoftacError, match=r"Discrete action space, which sac does not support.*sac-discrete or dqn"):
        SAC("CartPole-v1", **TINY)


def test_cli_dqn_on_a_box_space_exits_2_naming_sac(tmp_path: Path) -> None:
    proc = run_cli("train", "--algo", "dqn", "--env", "Pendulum-v1", "--run-dir", str(tmp_path / "r"), *TINY_FLAGS)
    assert_one_line_error(proc, "Pendulum-v1 has a Box action space", "use --algo", " sac")
    assert not (tmp_path / "r").exists()


# -- exact resume ----------------------------------------------------------------------------------
# SoftacTest/Guess-v0 episodes last 10 steps: step 600 is an episode boundary. ε decays through
# the checkpoint, the target is copied every 70 steps, updates run at UTD 0.5. The interrupted run
# is the straight run's own directory without its last checkpoint (as if killed after step 600):
# DQN's ε schedule spans total_steps, so a run *extended* from 600 to 1200 steps explores
# differently from one planned for 1200 (as in SB3), and only the same run can be bit-identical.
RESUME: dict[type, dict[str, Any]] = {
    DQN: {"utd_ratio": 0.5, "target_update_interval": 70, "exploration_fraction": 0.8, "max_grad_norm": 1.0},
    DiscreteSAC: {"utd_ratio": 0.5, "target_update_interval": 3},
}


def _cut_after_first_checkpoint(run: Path, copy: Path) -> Path:
    shutil.copytree(run, copy)
    first, last = list_checkpoints(copy)
    shutil.rmtree(last)
    return first


@pytest.mark.parametrize("cls", [DQN, DiscreteSAC])
def test_resume_is_bit_identical(cls: type, tmp_path: Path) -> None:
    settings = {**TINY, **RESUME[cls], "learning_starts": 200, "eval_freq": 300, "checkpoint_freq": 600, "seed": 4}
    straight = cls("SoftacTest/Guess-v0", **settings, total_steps=1200)
    straight.learn(run_dir=tmp_path / "straight", progress=False)
    assert straight.updates == 500
    _cut_after_first_checkpoint(tmp_path / "straight", tmp_path / "run")
    resumed = cls.load(tmp_path / "run")
    assert (resumed.env_steps, resumed.updates, resumed.config.total_steps) == (600, 200, 1200)
    assert resumed.resume_state[0]["collector"]["at_episode_boundary"]
    resumed.learn(run_dir=tmp_path / "run", progress=False)
    assert_bit_identical(state_tensors(straight), state_tensors(resumed))
    assert torch.equal(straight.buffer.storage[0, :1200], resumed.buffer.storage[0, :1200])
    keys = ("step", "updates", "episodes", "eval_return_mean", "eval_return_std")
    rows = [[{k: r[k] for k in keys} for r in read_progress(d / "progress.csv")] for d in (tmp_path / "run",
            tmp_path / "straight")]  # fmt: skip
    assert rows[0] == rows[1] and len(rows[0]) == 4


def test_cli_resume_of_a_dqn_run_is_bit_identical(tmp_path: Path) -> None:
    """Through the CLI's main() (in-process: the test environment is registered here)."""
    flags = ["--algo", "dqn", "--env", "SoftacTest/Guess-v0", "--learning-starts", "200", "--utd-ratio", "0.5",
             "--target-update-interval", "70", "--eval-freq", "300", "--checkpoint-freq", "600",
             *TINY_FLAGS]  # fmt: skip
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert cli.main(["train", *flags, "--total-steps", "1200", "--run-dir", str(straight)]) == 0
    _cut_after_first_checkpoint(straight, run)
    assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0
    a, b = DQN.load(straight), DQN.load(run)
    assert a.updates == b.updates == 500
    assert_bit_identical(state_tensors(a), state_tensors(b))
