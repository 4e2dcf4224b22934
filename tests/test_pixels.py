"""Training from images: the row the policy reads, the frame ring the update samples, the encoder
on the learner axis, checkpoints, and every combination the image path refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import assert_bit_identical, assert_learners_equal_singles, state_tensors

from softac import DQN, SAC, TD3, CrossQ
from softac.errors import EnvError, SoftacError
from softac.obs import ObsLayout
from softac.pixels import PixelSpec, predict_rows


class Dots(gym.Env):  # type: ignore[type-arg]
    """A bright column at x ∈ [0, 1] on a dark 16×16 frame; the action moves it, the reward is
    −|x − ½|. ``layout``: "hwc" (16, 16, 1), "chw" (1, 16, 16), "hw" (16, 16), or "dict" with the
    frame under "pixels" beside a 2-column "state"."""

    def __init__(self, layout: str = "hwc", side: int = 16, episode: int = 12) -> None:
        self.layout, self.side, self.episode = layout, side, episode
        shape = {"hwc": (side, side, 1), "chw": (1, side, side), "hw": (side, side), "dict": (side, side, 1)}[layout]
        image = gym.spaces.Box(0, 255, shape, np.uint8)
        self.shape = shape
        self.observation_space: Any = (
            gym.spaces.Dict({"pixels": image, "state": gym.spaces.Box(-1, 1, (2,), np.float32)})
            if layout == "dict" else image)  # fmt: skip
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def _obs(self) -> Any:
        img = np.full(self.shape, 20, np.uint8)
        col = round(self.x * (self.side - 1))
        if self.layout == "chw":
            img[:, :, col] = 255
        else:
            img[:, col] = 255
        if self.layout == "dict":
            return {"pixels": img, "state": np.array([self.x, self.t / self.episode], np.float32)}
        return img

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform()), 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> Any:
        self.x = float(np.clip(self.x + 0.2 * float(action[0]), 0.0, 1.0))
        self.t += 1
        return self._obs(), -abs(self.x - 0.5), False, self.t >= self.episode, {}


SMALL = {"total_steps": 120, "learning_starts": 60, "batch_size": 8, "buffer_size": 500, "hidden_sizes": (16, 16),
         "image_features": 8, "eval_freq": 10_000, "threads": 1}  # fmt: skip


def make(layout: str = "hwc", **kw: Any) -> Any:
    return lambda: Dots(layout, **kw)


@pytest.mark.parametrize("layout", ["hwc", "chw", "hw", "dict"])
def test_every_frame_layout_trains_and_predicts(layout: str) -> None:
    agent = SAC(make(layout), frame_stack=3, augment="shift", **SMALL)
    agent.learn(progress=False)
    assert agent.updates == 60 and agent.pixels is not None
    assert agent.pixels.chw == (1, 16, 16) and agent.obs_width == agent.spec.obs_dim + 3 * 256
    assert agent.spec.obs_dim == (2 if layout == "dict" else 0)
    # Each frame once: 120 transitions in episodes of 12 wrote 120 + 10 first frames.
    assert int(agent.buffer.frames.written[0]) == 130 and len(agent.buffer) == 120
    env = Dots(layout)
    obs, _ = env.reset(seed=1)
    image = obs["pixels"] if layout == "dict" else obs
    stacked = np.stack([image] * 3)
    given = {"pixels": stacked, "state": obs["state"]} if layout == "dict" else stacked
    action, _ = agent.predict(given)
    assert action.shape == (1,) and np.isfinite(action).all()
    with pytest.raises(SoftacError, match="takes \\(3, "):
        agent.predict(obs)  # one frame where the policy reads three


def test_the_update_reads_the_stack_the_policy_acted_on() -> None:
    """The frames a sampled transition rebuilds are the ones its s and s' showed the policy: the
    packed rows of the batch against an environment replayed by hand."""
    agent = SAC(make("hwc"), frame_stack=3, **SMALL)
    agent.learn(total_steps=30, progress=False)
    env = Dots("hwc")
    stacks: list[np.ndarray] = []
    frames: list[np.ndarray] = []
    # Replay the collector's episodes: the actions are in the buffer (actions in [-1, 1] = env's).
    rows = agent.buffer.storage[0, :30].numpy()
    obs, _ = env.reset(seed=0)
    hist = [obs[..., 0]] * 3
    for i in range(30):
        if i and i % 12 == 0:
            obs, _ = env.reset(seed=None)
            hist = [obs[..., 0]] * 3
        stacks.append(np.stack(hist))
        obs, *_ = env.step(rows[i, 0:1])
        hist = [*hist[1:], obs[..., 0]]
        frames.append(np.stack(hist))
    idx = torch.arange(30).view(1, 30)
    s, s2 = agent.buffer.frames.gather(idx)
    # Episodes after the first start from the collector's own seeds: compare the first episode exactly.
    assert np.array_equal(s[0, :12].numpy(), np.stack(stacks[:12]))
    assert np.array_equal(s2[0, :12].numpy(), np.stack(frames[:12]))
    batch = agent.buffer.sample(5, agent.rng)
    assert batch.obs.shape == (1, 5, 3 * 256) and batch.obs.dtype == torch.float32
    assert float(batch.obs.min()) >= 0 and float(batch.obs.max()) == 255.0


def test_learners_equal_single_runs_with_augmentation() -> None:
    """Two seeds as learners in one process equal the two single runs: the grouped convolutions,
    the draws of positions and of the shifts each from its learner's stream."""
    cfg = {**SMALL, "total_steps": 90, "frame_stack": 2, "augment": "shift"}
    stacked = SAC(make("dict"), seeds=[3, 4], **cfg).learn(progress=False)
    singles = [SAC(make("dict"), seed=s, **cfg).learn(progress=False) for s in (3, 4)]
    assert stacked.updates == 30
    assert_learners_equal_singles(stacked, singles, rtol=1e-5, atol=1e-6)


def test_save_load_and_continue_exactly(tmp_path: Path) -> None:
    """A checkpoint holds the frame ring and the rows: loaded and continued, the run equals the
    one that never stopped, tensor for tensor."""
    cfg = {**SMALL, "total_steps": 150, "frame_stack": 3, "augment": "shift"}
    straight = TD3(make("hwc"), seed=5, **cfg).learn(progress=False)
    first = TD3(make("hwc"), seed=5, **cfg).learn(total_steps=96, progress=False)  # 8 episodes: a boundary
    first.save(tmp_path / "ckpt")
    again = TD3.load(tmp_path / "ckpt", env=make("hwc"))
    assert torch.equal(again.buffer.frames.frames[0, :104], first.buffer.frames.frames[0, :104])
    again.learn(total_steps=150, progress=False)
    assert (again.env_steps, again.updates) == (straight.env_steps, straight.updates) == (150, 90)
    assert_bit_identical(state_tensors(again), state_tensors(straight))


def test_frame_stack_observation_stacks_are_stored_as_given() -> None:
    """An environment already wrapped in FrameStackObservation: its (K, H, W, C) stacks are one
    frame of K·C channels, --frame-stack 1."""
    agent = SAC(lambda: gym.wrappers.FrameStackObservation(Dots("hwc"), 4), **SMALL).learn(progress=False)
    assert agent.pixels is not None and agent.pixels.chw == (4, 16, 16) and agent.updates == 60


def test_refusals_are_one_line() -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (CrossQ, {}, "sac, td3 and ddpg train from images, crossq reads vectors"),
        (SAC, {"n_step": 3}, "--n-step 3 is not defined for image observations"),
        (SAC, {"per": True}, "--per is not defined for image observations"),
        (SAC, {"normalize_obs": True}, "--normalize-obs is not defined for image observations"),
        (SAC, {"frame_stack": 17}, "frame_stack must be at most 16"),
    ]
    vectors = {k: v for k, v in SMALL.items() if k != "image_features"}  # no image settings there
    for cls, kw, needle in cases:
        with pytest.raises(SoftacError, match=needle) as info:
            cls(make("hwc"), **{**(SMALL if cls is not CrossQ else vectors), **kw})
        assert "\n" not in str(info.value)
    with pytest.raises(SoftacError, match=r"has no image .* drop the option"):
        SAC("Pendulum-v1", frame_stack=3, **SMALL)
    with pytest.raises(SoftacError, match="--augment shift acts on image observations"):
        SAC("Pendulum-v1", augment="shift", **SMALL)
    with pytest.raises(SoftacError, match="a user's encoder reads vector observations only"):
        SAC(make("hwc"), encoder=torch.nn.Flatten, **SMALL)
    with pytest.raises(SoftacError, match=r"dqn reads vectors|Box action space"):
        DQN(lambda: gym.wrappers.TransformAction(Dots(), lambda a: a, gym.spaces.Discrete(2)), **vectors)


class WrongFrames(Dots):
    def step(self, action: np.ndarray) -> Any:
        obs, *rest = super().step(action)
        return obs.astype(np.float32) / 255.0, *rest  # a float image in [0, 1]: refused, never cast


def test_wrong_frames_from_the_environment_name_the_key() -> None:
    agent = SAC(lambda: WrongFrames("hwc"), **SMALL)
    with pytest.raises(EnvError, match=r"the observation is an image of dtype float32 .* its space is uint8"):
        agent.learn(progress=False)


def test_memory_counts_the_frame_ring_and_refuses_what_cannot_fit() -> None:
    agent = SAC(make("hwc"), frame_stack=3, **SMALL)
    parts = agent.memory_estimate()
    assert {"frame buffer", "image encoder", "image minibatch"} <= set(parts)
    # 120 transitions' frames (and 1.05× slack, 2 stacks of 3 of headroom) of 256 bytes, 4 int64 each
    ring = (120 + 6 + 2 * 3) * 256 + 120 * 4 * 8
    assert parts["frame buffer"] == ring
    assert agent.memory_reserved()["frame buffer"] == (500 + 25 + 6) * 256 + 500 * 32
    with pytest.raises(SoftacError, match=r"lower buffer_size .*; buffer_size=\d+ fits"):
        SAC(make("hwc", side=84), **{**SMALL, "buffer_size": 10**9, "total_steps": 10**9})


def test_predict_rows_of_a_batch() -> None:
    layout = ObsLayout.of(Dots("dict").observation_space)
    spec = PixelSpec.of(layout, 2)
    frames = np.arange(2 * 2 * 16 * 16, dtype=np.int64).reshape(2, 2, 16, 16, 1).astype(np.uint8)
    rows = predict_rows(layout, spec, {"pixels": frames, "state": np.ones((2, 2), np.float32)})
    assert rows.shape == (2, 2 + 2 * 256)
    assert np.array_equal(rows[1, 2:], frames[1].reshape(-1).astype(np.float32))
    assert (rows[:, :2] == 1).all()


def test_evaluation_and_sb3_evaluate_policy_read_the_stacks(tmp_path: Path) -> None:
    """Evaluation rows in progress.csv (softac's evaluation stacks each environment's frames), and
    SB3's ``evaluate_policy`` on a FrameStackObservation env, whose stacks are what ``predict`` takes."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    agent = SAC(make("hwc"), frame_stack=3, **{**SMALL, "eval_freq": 60, "eval_episodes": 2})
    agent.learn(run_dir=tmp_path / "run", progress=False)
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()
    header = rows[0].split(",")
    evals = [r.split(",") for r in rows[1:] if r.split(",")[header.index("eval_return_mean")]]
    assert len(evals) == 2 and all(-12 <= float(r[header.index("eval_return_mean")]) <= 0 for r in evals)
    mean, _ = evaluate_policy(agent, Monitor(gym.wrappers.FrameStackObservation(Dots("hwc"), 3)), n_eval_episodes=2)
    assert -12 <= mean <= 0


@pytest.mark.slow  # Inductor compiles the convolutions forward and backward: a minute on two cores
def test_the_compiled_update_equals_the_eager_one() -> None:
    """--compile-update covers the image encoder: the same run compiled and eager agree to float32
    rounding (grouped convolutions, the shift's gather, LayerNorm and tanh all under Inductor)."""
    cfg = {**SMALL, "frame_stack": 2, "augment": "shift", "seed": 2}
    eager = SAC(make("dict"), compile_update=False, **cfg).learn(progress=False)
    compiled = SAC(make("dict"), compile_update=True, **cfg).learn(progress=False)
    assert compiled.updates == eager.updates == 60
    a, b = state_tensors(eager), state_tensors(compiled)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_pixels_and_action_repeat_wrap_every_env_made_from_the_id() -> None:
    """--pixels 24 renders Pendulum's frames (pygame, off-screen) for training and evaluation, one
    frame per agent step, each action applied twice (the rewards summed: an episode of 200
    environment steps is 100 agent steps)."""
    agent = SAC("Pendulum-v1", pixels=24, action_repeat=2, **{**SMALL, "eval_freq": 100, "eval_episodes": 1,
                                                               "total_steps": 100})  # fmt: skip
    assert agent.spec.obs_layout.image is not None and agent.pixels is not None
    assert agent.pixels.chw == (3, 24, 24)
    agent.learn(progress=False)
    assert agent.updates == 40 and agent.episodes == [1]  # 100 agent steps: one whole episode
    with pytest.raises(SoftacError, match=r"--pixels 24 wraps the environments softac makes; .* given an instance"):
        SAC(gym.make("Pendulum-v1", render_mode="rgb_array"), pixels=24, **SMALL)


@pytest.mark.slow
def test_sac_learns_from_pixels() -> None:
    """SAC learns the column task from its 16×16 frames alone: three seeds as learners in one
    process, 900 steps (600 updates, batch 32, Adam at 1e-3 as DrQ on its easier tasks), evaluated
    every 300 steps on 5 episodes. Measured on 2026-12-06 (2-core VM): the untrained policies score
    −4.2 on average, the trained ones −1.2; moving straight to the centre scores about −0.3, uniform
    random actions about −3.5 (computed below on the same evaluation seeds)."""
    agent = SAC(make("hwc"), seeds=[0, 1, 2], total_steps=900, learning_starts=300, batch_size=32,
                hidden_sizes=(64, 64), image_features=16, eval_freq=300, eval_episodes=5, threads=1,
                actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3)  # fmt: skip
    curves: list[list[float]] = []

    class Curves:
        def on_evaluation(self, info: Any) -> bool:
            curves.append(info.eval_return_mean)
            return True

    agent.learn(progress=False, callback=Curves())
    assert agent.updates == 600 and len(curves) == 3
    first, last = np.array(curves[0]), np.array(curves[-1])
    # Uniform random actions on the evaluation episodes' start states (seeds 100,000 + episode).
    rng = np.random.default_rng(0)
    random_returns = []
    for episode in range(5):
        env = Dots("hwc")
        env.reset(seed=100_000 + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
            total, done = total + reward, terminated or truncated
        random_returns.append(total)
    baseline = float(np.mean(random_returns))
    assert (last >= -2.0).all(), (first, last, baseline)
    assert last.mean() >= first.mean() + 2.0 and last.mean() >= baseline + 1.5, (first, last, baseline)
