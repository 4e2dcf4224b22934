"""The frame replay storage (``softac.data.frames``): stacks rebuilt from stored-once frames equal
``gymnasium.wrappers.FrameStackObservation``'s on the same episodes (several environments, both
episode ends, channel-last), the frame ring's overwrite rule, stacked learners against single
buffers, an exact save → load → continue through safetensors, the refusals, and the memory goal
measured on the allocated tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import helpers
import numpy as np
import pytest
import torch
from gymnasium.wrappers import FrameStackObservation, TimeLimit

from softac.data.frames import FrameBuffer, default_frame_capacity, frame_buffer_bytes, image_layout
from softac.io.files import read_tensors, write_safetensors
from softac.rng import LearnerRNG

DEV = torch.device(helpers.DEVICE)  # `pytest --device cuda` runs the buffers there
SHAPE = (6, 5, 3)  # channel-last frames: (H, W, C)


class RandomFrames(gym.Env[np.ndarray, int]):
    """Random uint8 frames; an episode terminates with probability ``p_end`` each step."""

    def __init__(self, p_end: float = 0.15, shape: tuple[int, ...] = SHAPE) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.p_end = p_end

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self._frame(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._frame(), 0.0, bool(self.np_random.random() < self.p_end), False, {}


def _chw_stack(stack: np.ndarray) -> np.ndarray:
    """FrameStackObservation's (K, H, W, C) as the buffer's (K·C, H, W)."""
    k, h, w, c = stack.shape
    return stack.transpose(0, 3, 1, 2).reshape(k * c, h, w)


def _episodes(envs: int, steps: int, stack: int, seed: int, p_end: float = 0.15):
    """Steps of ``envs`` environments: the single frames (s, s', done) and FrameStackObservation's
    stacks (s, s') of the same episodes (the same env seeded alike, wrapped)."""
    plain = [TimeLimit(RandomFrames(p_end), 9) for _ in range(envs)]  # truncation at 9 steps
    stacked = [FrameStackObservation(TimeLimit(RandomFrames(p_end), 9), stack) for _ in range(envs)]
    obs = [e.reset(seed=seed + i)[0] for i, e in enumerate(plain)]
    sobs = [e.reset(seed=seed + i)[0] for i, e in enumerate(stacked)]
    out = []
    for _ in range(steps):
        step: dict[str, list] = {"obs": [], "next": [], "done": [], "s": [], "s2": []}
        for i in range(envs):
            nxt, _, term, trunc, _ = plain[i].step(0)
            snxt, *_ = stacked[i].step(0)
            step["obs"].append(obs[i])
            step["next"].append(nxt)
            step["done"].append(term or trunc)
            step["s"].append(_chw_stack(sobs[i]))
            step["s2"].append(_chw_stack(snxt))
            obs[i], sobs[i] = nxt, snxt
            if term or trunc:
                obs[i] = plain[i].reset()[0]
                sobs[i] = stacked[i].reset()[0]
        out.append({key: np.stack(v) for key, v in step.items()})
    return out


def _fill(buf: FrameBuffer, k: int, steps: list[dict]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Add the steps to learner k; return the reference stacks by transition number."""
    ref_s, ref_s2 = [], []
    for st in steps:
        buf.add(k, st["obs"], st["next"], st["done"])
        ref_s += list(st["s"])
        ref_s2 += list(st["s2"])
    buf.sync_size()
    return ref_s, ref_s2


def _check_sampleable(buf: FrameBuffer, k: int, ref_s: list, ref_s2: list) -> None:
    """Every sampleable transition gathers exactly FrameStackObservation's s and s'."""
    added, size = int(buf.added[k]), int(buf.size[k])
    seqs = np.arange(added - size, added)
    idx = torch.from_numpy(seqs % buf.capacity).view(1, -1).expand(buf.learners, -1).contiguous().to(buf.device)
    s, s2 = buf.gather(idx)
    assert s.dtype == torch.uint8 and s.shape == (buf.learners, size, buf.stack * 3, 6, 5)
    np.testing.assert_array_equal(s[k].cpu().numpy(), np.stack([ref_s[i] for i in seqs]))
    np.testing.assert_array_equal(s2[k].cpu().numpy(), np.stack([ref_s2[i] for i in seqs]))


@pytest.mark.parametrize("envs", [1, 3])
@pytest.mark.parametrize("stack", [1, 3])
def test_stacks_equal_frame_stack_observation(envs: int, stack: int) -> None:
    """No wrap: every transition is sampleable and its stacks are the wrapper's, padding with the
    first frame at episode starts, with the real final frame as s' at termination and truncation."""
    steps = _episodes(envs, 40, stack, seed=3)
    buf = FrameBuffer(1, 1000, SHAPE, stack=stack, envs=envs, device=DEV)
    ref_s, ref_s2 = _fill(buf, 0, steps)
    assert int(buf.size[0]) == len(ref_s) == 40 * envs
    episodes = sum(int(st["done"].sum()) for st in steps) + envs - int(steps[-1]["done"].sum())
    assert int(buf.written[0]) == 40 * envs + episodes  # one frame per transition + each episode's first
    _check_sampleable(buf, 0, ref_s, ref_s2)


def test_frame_ring_overwrite_drops_the_oldest() -> None:
    """Short episodes (≈ 3 steps) wrap the frame ring before the transition ring: the sampleable
    range is exactly the newest transitions after the newest one whose oldest frame is gone, and
    each of them still gathers the wrapper's stacks."""
    stack, envs = 3, 2
    buf = FrameBuffer(1, 60, SHAPE, stack=stack, envs=envs, frame_capacity=64, device=DEV)
    steps = _episodes(envs, 200, stack, seed=5, p_end=0.35)
    ref_s, ref_s2 = [], []
    dropped_by_frames = 0
    for st in steps:
        r, r2 = _fill(buf, 0, [st])
        ref_s += r
        ref_s2 += r2
        added, horizon = int(buf.added[0]), int(buf.written[0]) - buf.frame_capacity
        in_ring = np.arange(max(0, added - buf.capacity), added)
        oldest = buf.index[0, torch.from_numpy(in_ring % buf.capacity), 0].cpu().numpy()
        lost = in_ring[oldest < horizon]
        lo = max(int(in_ring[0]), int(lost.max()) + 1 if len(lost) else 0)
        assert int(buf.size[0]) == added - lo  # the brute-force boundary
        dropped_by_frames += lo > in_ring[0]
        _check_sampleable(buf, 0, ref_s, ref_s2)
    assert dropped_by_frames > 50  # the frame ring, not the transition ring, set the boundary
    assert 0 < int(buf.size[0]) < buf.capacity


def test_dropped_step_ends_the_episode_and_channel_first_input() -> None:
    """``ok`` False stores nothing and restarts that environment's stack; channel-first frames
    are stored as given."""
    buf = FrameBuffer(1, 50, (2, 4, 4), stack=2, envs=2)
    f = [np.full((2, 2, 4, 4), v, dtype=np.uint8) for v in range(6)]
    buf.add(0, f[0], f[1], np.zeros(2, bool))
    buf.add(0, f[1], f[2], np.zeros(2, bool), ok=np.array([True, False]))
    buf.add(0, f[4], f[5], np.zeros(2, bool))
    buf.sync_size()
    assert int(buf.size[0]) == 5
    s, s2 = buf.gather(torch.arange(5).view(1, 5))
    firsts = s[0, :, :, 0, 0].tolist()  # channel 0 of frame m is m's value: (oldest, newest) pairs
    assert [row[::2] for row in firsts] == [[0, 0], [0, 0], [0, 1], [1, 2], [4, 4]]
    assert [row[::2] for row in s2[0, :, :, 0, 0].tolist()] == [[0, 1], [0, 1], [1, 2], [2, 5], [4, 5]]


def test_learners_equal_single_buffers_and_sampling() -> None:
    """Learner k of a stacked buffer (fed its own episodes) samples the positions and stacks of a
    single buffer fed the same with seed k's stream; positions stay in the sampleable range."""
    seeds, stack = (4, 9), 2
    data = [_episodes(2, 30, stack, seed=s, p_end=0.3) for s in seeds]
    both = FrameBuffer(2, 40, SHAPE, stack=stack, envs=2, frame_capacity=48, device=DEV)
    singles = [FrameBuffer(1, 40, SHAPE, stack=stack, envs=2, frame_capacity=48, device=DEV) for _ in seeds]
    for k in range(2):
        _fill(both, k, data[k])
        _fill(singles[k], 0, data[k])
    rng = LearnerRNG(seeds, DEV)
    idx, s, s2 = both.sample(500, rng)
    for k, seed in enumerate(seeds):
        i1, t1, t2 = singles[k].sample(500, LearnerRNG([seed], DEV))
        assert torch.equal(idx[k], i1[0]) and torch.equal(s[k], t1[0]) and torch.equal(s2[k], t2[0])
        start = int(both.added[k] - both.size[k])
        allowed = set((np.arange(start, int(both.added[k])) % both.capacity).tolist())
        assert set(idx[k].cpu().tolist()) == allowed  # 500 draws over ≤ 40 positions reach each one


@pytest.mark.parametrize("cut_at", [37, 45])
def test_save_load_continue_is_exact(tmp_path: Path, cut_at: int) -> None:
    """Through a safetensors file and the JSON counters: the loaded buffer, fed the same steps
    afterwards (mid-episode included), samples the same positions and stacks, and holds the same
    state, as the uninterrupted one."""
    stack, envs = 3, 2
    steps = _episodes(envs, 90, stack, seed=11, p_end=0.3)
    make = lambda: FrameBuffer(1, 50, SHAPE, stack=stack, envs=envs, frame_capacity=70, device=DEV)  # noqa: E731
    a = make()
    _fill(a, 0, steps[:cut_at])
    write_safetensors(tmp_path / "data.safetensors", a.state_tensors(0))
    counters = a.fill(0)
    b = make()
    targets = b.targets(0)
    for name, t in read_tensors(tmp_path / "data.safetensors").items():
        targets[name][: t.shape[0]].copy_(t)
    b.set_fill(0, **counters)
    for buf in (a, b):
        _fill(buf, 0, steps[cut_at:])
    rng_a, rng_b = LearnerRNG([2], DEV), LearnerRNG([2], DEV)
    for _ in range(3):
        for x, y in zip(a.sample(64, rng_a), b.sample(64, rng_b), strict=True):
            assert torch.equal(x, y)
    assert a.fill(0) == b.fill(0) and a._minima == b._minima
    for name, t in a.state_tensors(0).items():
        assert torch.equal(t, b.state_tensors(0)[name]), name


def test_refusals() -> None:
    buf = FrameBuffer(1, 10, SHAPE, stack=2)
    with pytest.raises(ValueError, match="must be uint8 of shape"):
        buf.add(0, np.zeros((1, *SHAPE), np.float32), np.zeros((1, *SHAPE), np.uint8), np.zeros(1, bool))
    with pytest.raises(ValueError, match="must be uint8 of shape"):
        buf.add(0, np.zeros((1, 5, 6, 3), np.uint8), np.zeros((1, *SHAPE), np.uint8), np.zeros(1, bool))
    with pytest.raises(ValueError, match="channel axis"):
        image_layout((8, 3, 8))
    with pytest.raises(ValueError, match="2 or 3 positive dimensions"):
        image_layout((4,))
    with pytest.raises(ValueError, match="cannot hold one step"):
        FrameBuffer(1, 10, SHAPE, stack=3, envs=4, frame_capacity=8)
    with pytest.raises(ValueError, match="inconsistent"):
        buf.set_fill(0, size=11, added=11, written=12)
    with pytest.raises(ValueError, match="inconsistent"):
        buf.set_fill(0, size=2, added=2, written=2)  # two transitions wrote at least three frames
    steps = _episodes(1, 5, 2, seed=0)
    _fill(buf, 0, steps)
    buf.index[0, 2, 0] = 99  # a corrupted frame number: not yet written
    with pytest.raises(ValueError, match="corrupted"):
        buf.set_fill(0, **buf.fill(0))
    assert image_layout((84, 84, 3)) == ((3, 84, 84), True) and image_layout((3, 84, 84)) == ((3, 84, 84), False)
    assert image_layout((64, 64)) == ((1, 64, 64), False)


def test_memory_goal_from_allocated_tensors() -> None:
    """84×84×3 frames stacked 3: the allocated tensors' bytes per transition are at most 1.1× one
    frame (≈ 1.05 with the default ring), a third of storing stacks and a sixth of storing s and
    s' stacks; the formula the memory check will use is those bytes exactly."""
    capacity, frame = 20_000, 84 * 84 * 3
    buf = FrameBuffer(1, capacity, (84, 84, 3), stack=3)  # torch.empty: the pages are never touched
    allocated = buf.frames.nbytes + buf.index.nbytes
    assert allocated == frame_buffer_bytes(1, capacity, (84, 84, 3), 3)
    assert buf.frames.shape[1] == default_frame_capacity(capacity, 3)
    ratio = allocated / capacity / frame
    assert 1.0 < ratio <= 1.1
    assert ratio < 0.37 * 3 and ratio < 0.19 * 6  # stacks stored (3×) and SB3 without the option (6×)
