"""Hindsight relabelling (``softac.data.her``) on the buffer itself: which goals, which rewards, how
many, per learner, across episode ends, the ring's wrap-around and a checkpoint's round trip.

The stored rows are built so that every goal can be traced back: the achieved goal of row a's next
observation is (a, episode of a), the stored desired goal is (−1, −1). A relabelled goal therefore
names the write number and the episode it came from."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from softac.data.her import HerReplay, relabelled_count
from softac.errors import EnvError
from softac.obs import ObsLayout
from softac.rng import LearnerRNG

OBS, GOAL, ACT = 3, 2, 1
LAYOUT = ObsLayout.of(gym.spaces.Dict({
    "observation": gym.spaces.Box(-1, 1, (OBS,)), "achieved_goal": gym.spaces.Box(-1, 1, (GOAL,)),
    "desired_goal": gym.spaces.Box(-1, 1, (GOAL,)),
}))  # fmt: skip
DIM = LAYOUT.dim
AG, DG = LAYOUT.slice("achieved_goal"), LAYOUT.slice("desired_goal")
S2 = DIM + ACT + 2  # first column of s'


def reward_fn(achieved: np.ndarray, desired: np.ndarray, info: Any) -> np.ndarray:
    """Fetch's sparse reward: −(‖ag − g‖ > 0.5), vectorised over the leading dim."""
    return -(np.linalg.norm(achieved - desired, axis=-1) > 0.5).astype(np.float32)


def make(learners: int = 1, capacity: int = 64, k: int = 4, strategy: str = "future", fn: Any = reward_fn) -> HerReplay:
    return HerReplay(learners, capacity, DIM, ACT, "cpu", layout=LAYOUT, compute_reward=fn, k=k, strategy=strategy,
                     env_name="Goal-v0")  # fmt: skip


def row(write: int, episode: int) -> np.ndarray:
    """One transition whose s' achieved (write, episode); s achieved (write − 0.5, episode)."""
    out = np.zeros(2 * DIM + ACT + 2, dtype=np.float32)
    out[AG] = (write - 0.5, episode)
    out[DG] = (-1.0, -1.0)
    out[DIM + ACT] = 7.0  # the stored reward: never left on a relabelled row
    out[S2 + AG.start : S2 + AG.stop] = (write, episode)
    out[S2 + DG.start : S2 + DG.stop] = (-1.0, -1.0)
    return out


def fill(buf: HerReplay, lengths: list[int], running: int = 0, learner: int = 0) -> list[int]:
    """Episodes of the given lengths, then one still running with ``running`` steps; returns each
    write number's episode."""
    episodes: list[int] = []
    for ep, n in enumerate([*lengths, running]):
        for t in range(n):
            a = int(buf.written[learner])
            buf.add(learner, row(a, ep)[None])
            buf.record(learner, stored=True, ends=ep < len(lengths) and t == n - 1)
            episodes.append(ep)
    buf.sync_size()
    return episodes


def sample(buf: HerReplay, batch: int, seed: int = 0) -> torch.Tensor:
    """Draw a batch and return its raw rows (L, B, row)."""
    b = buf.sample(batch, LearnerRNG([seed + k for k in range(buf.learners)], torch.device("cpu")))
    return torch.cat([b.obs, b.action, b.reward[..., None], b.terminated[..., None], b.next_obs], dim=-1)


def allowed(episodes: list[int], strategy: str, oldest: int = 0) -> set[tuple[int, int]]:
    """Every (row, goal row) pair the strategy may draw, by enumeration."""
    out = set()
    for t in range(oldest, len(episodes)):
        same = [j for j in range(oldest, len(episodes)) if episodes[j] == episodes[t]]
        goals = {"future": [j for j in same if j >= t], "final": [same[-1]], "episode": same}[strategy]
        out |= {(t, j) for j in goals}
    return out


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_goals_come_only_from_the_strategy_s_steps_of_the_same_episode_exhaustively(strategy: str) -> None:
    buf = make(strategy=strategy)
    episodes = fill(buf, [5, 1, 8, 3], running=4)  # 21 rows; the last episode still runs
    rows = sample(buf, 4000)[0].numpy()
    v = relabelled_count(4000, 4)
    relabelled = rows[4000 - v :]
    pairs = {(int(r[S2 + AG.start]), int(r[DG.start])) for r in relabelled}
    # every goal is an achieved s' of a stored row of the same episode, by the strategy
    assert pairs == allowed(episodes, strategy)  # ⊆: no foreign goal; ⊇: every allowed one is drawn
    for r in relabelled:
        assert int(r[DG.start + 1]) == episodes[int(r[S2 + AG.start])]  # the goal's episode is the row's
        assert np.array_equal(r[DG], r[S2 + DG.start : S2 + DG.stop])  # s and s' carry the same goal


def test_future_goals_are_uniform_over_the_later_steps_chi_squared() -> None:
    """For an episode of 8 steps, the goal of its first step is uniform over steps 0…7 (χ², 7 dof)."""
    buf = make(capacity=16)
    fill(buf, [8])
    rows = sample(buf, 40_000)[0].numpy()
    rel = rows[40_000 - relabelled_count(40_000, 4) :]
    first = rel[rel[:, S2 + AG.start] == 0]
    counts = np.bincount(first[:, DG.start].astype(int), minlength=8)
    expected = len(first) / 8
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert counts.sum() > 2000 and chi2 < 24.3, (counts, chi2)  # 24.3: the 0.999 quantile of χ²(7)


def test_relabelled_rewards_equal_compute_reward_recomputed_and_the_share_is_k_over_k_plus_1() -> None:
    for k, batch in ((4, 256), (1, 100), (3, 7)):
        buf = make(k=k)
        fill(buf, [6, 9], running=3)
        rows = sample(buf, batch)[0].numpy()
        v = relabelled_count(batch, k)
        assert v == int(batch * k / (k + 1))
        real, rel = rows[: batch - v], rows[batch - v :]
        assert (real[:, DG.start] == -1).all() and (real[:, DIM + ACT] == 7.0).all()  # kept as stored
        assert (rel[:, DG.start] >= 0).all()  # every one relabelled
        # the reward, recomputed here from the relabelled row alone with the same function
        expect = reward_fn(rel[:, S2 + AG.start : S2 + AG.stop], rel[:, DG], None)
        assert np.array_equal(rel[:, DIM + ACT], expect)
        assert (rel[:, DIM + ACT] == 0).any() and (rel[:, DIM + ACT] == -1).any()


def test_several_learners_equal_single_runs() -> None:
    stacked = make(learners=3)
    singles = [make() for _ in range(3)]
    for k in range(3):
        lengths = [3 + k, 5, 2 * k + 1]
        fill(stacked, lengths, running=k, learner=k)
        fill(singles[k], lengths, running=k)
    big = sample(stacked, 300, seed=10)
    for k in range(3):
        assert torch.equal(big[k], sample(singles[k], 300, seed=10 + k)[0])


def test_after_the_ring_wraps_goals_come_only_from_rows_still_stored() -> None:
    buf = make(capacity=16, strategy="episode")
    episodes = fill(buf, [10, 9, 6], running=5)  # 30 rows written into 16
    oldest = int(buf.written[0]) - 16
    rows = sample(buf, 3000)[0].numpy()
    rel = rows[3000 - relabelled_count(3000, 4) :]
    pairs = {(int(r[S2 + AG.start]), int(r[DG.start])) for r in rel}
    assert pairs == allowed(episodes, "episode", oldest=oldest)


def test_a_cut_episode_ends_at_its_newest_step_and_the_next_one_is_separate() -> None:
    buf = make()
    fill(buf, [], running=4)
    buf.close(0)  # a resumed run restarts the episode here
    for _ in range(3):
        a = int(buf.written[0])
        buf.add(0, row(a, 9)[None])
        buf.record(0, stored=True, ends=False)
    buf.sync_size()
    rows = sample(buf, 2000)[0].numpy()
    rel = rows[2000 - relabelled_count(2000, 4) :]
    for r in rel:
        assert (int(r[S2 + AG.start]) < 4) == (int(r[DG.start]) < 4)  # never across the cut


def test_checkpoint_round_trip_samples_the_same() -> None:
    a, b = make(capacity=16), make(capacity=16)
    fill(a, [7, 12], running=3)
    for name, t in a.state_tensors(0).items():
        b.targets(0)[name][: t.shape[0]].copy_(t)
    b.set_fill(0, int(a.size[0]), int(a.cursor[0]))
    b.load_episode_meta(0, a.episode_meta(0))
    assert torch.equal(sample(a, 500), sample(b, 500))
    with pytest.raises(ValueError, match="without --her"):
        b.load_episode_meta(0, {})
    with pytest.raises(ValueError, match="do not fit"):
        b.load_episode_meta(0, {"her_written": 5, "her_open": -1})
    with pytest.raises(ValueError, match="corrupted"):  # rows of a running episode, but none is open
        b.load_episode_meta(0, {**a.episode_meta(0), "her_open": -1})


@pytest.mark.parametrize(("fn", "needle"), [
    (lambda ag, g, info: 1 / 0, "compute_reward raised ZeroDivisionError"),
    (lambda ag, g, info: np.zeros((len(ag), 2)), "returned shape"),
    (lambda ag, g, info: -1.0, "returned shape ()"),
    (lambda ag, g, info: np.full(len(ag), np.nan), "non-finite"),
    (lambda ag, g, info: ["a"] * len(ag), "not numbers"),
])  # fmt: skip
def test_a_broken_compute_reward_is_one_environment_error(fn: Any, needle: str) -> None:
    buf = make(fn=fn)
    fill(buf, [4])
    with pytest.raises(EnvError, match="Goal-v0's compute_reward") as info:
        sample(buf, 16)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_goals_are_relabelled_in_the_raw_rows_then_normalised() -> None:
    from softac.data.normaliser import ObservationNormaliser

    plain, normed = make(), make()
    for buf in (plain, normed):
        fill(buf, [6, 9], running=2)
    norm = ObservationNormaliser((1,), (DIM,))
    norm.update(torch.randn(1, 50, DIM, dtype=torch.float32) * 3 + 1)
    normed.normaliser = norm
    raw = sample(plain, 200)  # the same draws (same seed): raw relabelled rows
    got = normed.sample(200, LearnerRNG([0], torch.device("cpu")))
    assert torch.equal(got.obs, norm.normalise(raw[..., :DIM]))
    assert torch.equal(got.next_obs, norm.normalise(raw[..., S2:]))
    assert torch.equal(got.reward, raw[..., DIM + ACT])  # rewards from the raw goals
