"""Memory is checked before anything is allocated, and sizes with a natural bound are range-checked.

Each refusal is one line naming the field, with exit 2 on the command line, a ``SoftacError`` in
Python, and the same for a value edited into a checkpoint (``softac eval``, ``--resume``), files
untouched. "Before anything is allocated" is held two ways: command-line refusals run under an
address-space limit (``RLIMIT_AS`` 3 GiB, a third of what the named cases used to take), so an
allocation made before the check would end in a traceback instead of the line; in-process
refusals must come back in well under a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import SOFTAC, TINY, TINY_FLAGS, cli_env

import softac.algos.base as base
from softac import DDPG, DQN, PPO, SAC, TD3, CrossQ, DiscreteSAC, memory
from softac.errors import SoftacError

LIMIT = 3 << 30  # bytes of address space a refused command may reserve


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def run_limited(*args: str) -> subprocess.CompletedProcess[str]:
    """``softac ARGS`` in a subprocess that cannot reserve more than ``LIMIT`` bytes."""
    return subprocess.run([*SOFTAC, *args], capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
                          preexec_fn=_limited)  # fmt: skip


def one_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("softac: error:"), proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def refused_quickly(cls: type, *needles: str, **kwargs: Any) -> str:
    start = time.monotonic()
    with pytest.raises(SoftacError) as info:
        cls(**kwargs)
    assert time.monotonic() - start < 1.0, kwargs
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert "\n" not in str(info.value)
    return str(info.value)


# -- the named cases and their variants, on the command line --------------------------------------
@pytest.mark.parametrize(("flags", "needles"), [
    (["--critic-dist", "c51", "--dist-bins", "10000000"], ["lower dist_bins (now dist_bins=10000000)", " fits"]),
    (["--algo", "td3", "--critic-dist", "hl_gauss", "--dist-bins", "3000000000"], ["lower dist_bins", " fits"]),
    (["--n-step", "1000000000"], ["n_step (1000000000) must not exceed buffer_size (1000000)"]),
    (["--n-step", "1000000000", "--buffer-size", "1000000000", "--learning-starts", "1000000000"],
     ["n_step (1000000000) must not exceed the episode length of Pendulum-v1 (200 steps): use n_step=200"]),
    (["--network", "simba", "--simba-width-critic", "1000000"], ["lower simba_width_critic", " fits"]),
    (["--algo", "crossq", "--critic-hidden-sizes", "400000", "400000"], ["lower critic_hidden_sizes", " fits"]),
    (["--algo", "ppo", "--n-steps", "200000000", "--n-envs", "4"], ["the rollout", "lower n_steps", " fits"]),
    (["--n-envs", "100000000"], ["the environments", "lower n_envs", " fits"]),
    (["--per", "--buffer-size", "10000000000", "--total-steps", "1000"], ["lower buffer_size", " fits"]),
    (["--algo", "crossq", "--critic-hidden-sizes", "0"], ["critic_hidden_sizes must be one or more positive"]),
    (["--algo", "crossq", "--adam-beta1", "1"], ["adam_beta1 must be in [0, 1), got 1.0"]),
    (["--per", "--per-alpha", "1e30"], ["per_alpha must be in [0, 1], got 1e+30"]),
    (["--per", "--per-beta", "nan"], ["per_beta must be a finite number"]),
    (["--n-step", "5", "--learning-starts", "2"], ["n_step 5 with learning_starts 2", "learning_starts=4 or more"]),
])  # fmt: skip
def test_the_command_line_refuses_in_one_line_before_allocating(
    flags: list[str], needles: list[str], tmp_path: Path
) -> None:
    # On the CPU: a CUDA context alone reserves more address space than the limit.
    proc = run_limited("train", "--env", "Pendulum-v1", *flags, "--device", "cpu", "--run-dir", str(tmp_path / "r"),
                       "--no-progress")  # fmt: skip
    line = one_line(proc, *needles)
    if " fits" in line:  # the refusal names a value, and it is one the config accepts
        assert "B available of" in line
    assert not (tmp_path / "r").exists()


# -- the Python API -------------------------------------------------------------------------------
def test_the_api_refuses_the_named_cases_at_once() -> None:
    refused_quickly(SAC, "n_step (1000000000) must not exceed buffer_size", env="Pendulum-v1", n_step=10**9)
    refused_quickly(CrossQ, "critic_hidden_sizes must be", env="Pendulum-v1", critic_hidden_sizes=(0, 256))
    refused_quickly(CrossQ, "adam_beta1 must be in [0, 1)", env="Pendulum-v1", adam_beta1=1.0)
    too_large = [
        refused_quickly(SAC, "lower dist_bins", env="Pendulum-v1", critic_dist="c51", dist_bins=10**9),
        refused_quickly(DQN, "lower hidden_sizes", env="CartPole-v1", hidden_sizes=(10**7, 10**7)),
        refused_quickly(DiscreteSAC, "lower hidden_sizes", env="CartPole-v1", hidden_sizes=(10**7,) * 2),
        refused_quickly(PPO, "lower n_steps", env="Pendulum-v1", n_steps=10**10, minibatch_size=64),
    ]
    for message in too_large:  # each names the room it measured and a value of its field that fits
        assert "available of" in message and message.endswith(" fits"), message


def _fake_room(monkeypatch: pytest.MonkeyPatch, free: int, total: int) -> None:
    monkeypatch.setattr(base, "available", lambda device: (free, total))


def test_mujoco_environments_are_counted_with_their_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MuJoCo environment holds about 1.1 MB (``softac.envs.simulator_bytes``); the check counted every
    environment at 4 KB, so ``--n-envs`` in the tens of thousands on HalfCheetah-v5 passed it and then
    outgrew the machine. In a room of 100 MiB, 200 of them (≈ 216 MB) are refused at once, and the count
    the line offers fits that room at the measured size."""
    room = 100 << 20
    _fake_room(monkeypatch, room, 1 << 40)
    line = refused_quickly(SAC, "the environments", "lower n_envs (now n_envs=200)", env="HalfCheetah-v5",
                           n_envs=200, total_steps=10_000, **TINY)  # fmt: skip
    match = re.search(r"n_envs=(\d+) fits", line)
    assert match is not None, line
    assert 0 < int(match.group(1)) * 1_100_000 <= room  # 1.1 MB: the resident size measured below


def test_the_bytes_counted_for_a_mujoco_environment_are_its_resident_memory() -> None:
    """Counted (``memory.ENV_BYTES`` + ``simulator_bytes``) against measured: the resident memory 60
    HalfCheetah-v5 environments add, 20 steps each, in a fresh process (the pytest worker's allocator
    would reuse memory freed by other tests)."""
    code = (
        "import os, gymnasium as gym\n"
        "from softac import memory\n"
        "from softac.envs import simulator_bytes\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "envs = [gym.make('HalfCheetah-v5')]; envs[0].reset(seed=0)\n"
        "before = rss()\n"
        "for i in range(60):\n"
        "    e = gym.make('HalfCheetah-v5'); e.reset(seed=i); envs.append(e)\n"
        "    for _ in range(20): e.step(e.action_space.sample())\n"
        "print((rss() - before) / 60, memory.ENV_BYTES + simulator_bytes(envs[0]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    measured, counted = (float(x) for x in proc.stdout.split())
    assert 0.8 * measured <= counted <= 1.5 * measured, (measured, counted)


ROOM = 64 << 20  # 64 MiB: every default below fits, every enlarged field does not
LONG = {"env_kwargs": {"max_episode_steps": 10**6}}  # Pendulum without its 200-step limit


@pytest.mark.parametrize(("cls", "env", "fields", "field"), [
    (SAC, "Pendulum-v1", {"critic_dist": "c51", "dist_bins": 10**6}, "dist_bins"),
    (SAC, "Pendulum-v1", {**LONG, "n_step": 10**6, "buffer_size": 10**6, "n_envs": 8, "learning_starts": 10**7},
     "n_step"),
    (SAC, "Pendulum-v1", {"buffer_size": 10**8, "total_steps": 10**8}, "buffer_size"),
    (SAC, "Pendulum-v1", {"buffer_size": 10**8, "per": True}, "buffer_size"),
    (SAC, "Pendulum-v1", {"n_envs": 10**5}, "n_envs"),
    (TD3, "Pendulum-v1", {"network": "simba", "simba_width_critic": 4096}, "simba_width_critic"),
    (DDPG, "Pendulum-v1", {"hidden_sizes": (8192, 8192)}, "hidden_sizes"),
    (CrossQ, "Pendulum-v1", {"critic_hidden_sizes": (8192, 8192)}, "critic_hidden_sizes"),
    (PPO, "Pendulum-v1", {"n_steps": 10**7}, "n_steps"),
    (DQN, "CartPole-v1", {"hidden_sizes": (8192, 8192)}, "hidden_sizes"),
])  # fmt: skip
def test_each_structure_is_refused_naming_its_field_and_the_largest_value_that_fits(
    cls: type, env: str, fields: dict[str, Any], field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = {**TINY, "hidden_sizes": (16, 16)} if field != "hidden_sizes" else {**TINY}
    small = {k: v for k, v in small.items() if k in {f.name for f in dataclasses.fields(cls.config_cls)}}
    if cls is PPO:
        small |= {"n_steps": 64, "minibatch_size": 32}
    if cls is CrossQ:
        small |= {"critic_hidden_sizes": (16, 16)}
    _fake_room(monkeypatch, ROOM, 2 * ROOM)
    fitting = cls(env, **small)  # the defaults of the test fit, and give the estimate to probe with
    message = refused_quickly(cls, f"lower {field} (now ", env=env, **{**small, **fields})
    shown = message.rsplit(f"{field}=", 1)[1].removesuffix(" fits").split()
    value: Any = tuple(int(v) for v in shown) if len(shown) > 1 or field.endswith("sizes") else int(shown[0])
    cfg = fitting.config.replace(**{**fields, field: value})
    room = (ROOM, 2 * ROOM)
    memory.check_fits(cfg, fitting._memory, room)  # the value named fits ...
    bigger = tuple(v + 1 for v in value) if isinstance(value, tuple) else value + 1
    with pytest.raises(SoftacError):  # ... and is the largest that does
        memory.check_fits(cfg.replace(**{field: bigger}), fitting._memory, room)


# -- each structure's estimate is what its constructor allocates ----------------------------------
def _nbytes(*tensors: Any) -> int:
    return sum(t.nbytes for t in tensors)


def test_the_data_structures_estimates_are_their_exact_allocations() -> None:
    agent = SAC("Pendulum-v1", **{**TINY, "buffer_size": 3000}, n_step=3, n_envs=2, per=True, learning_starts=100)
    spec, n = agent.spec, agent.learners
    assert memory.replay_buffer(n, 3000, spec.obs_dim, spec.act_dim, True) == agent.buffer.storage.nbytes
    assert memory.priority_tree(n, 3000) == agent.buffer.tree.nodes.nbytes  # type: ignore[attr-defined]
    acc = agent.nstep
    assert acc is not None
    window = _nbytes(acc.obs, acc.action, acc.reward, acc.count, acc._last_next, acc._powers)
    assert memory.nstep_window(n, 2, 3, spec.obs_dim, spec.act_dim) == window
    ppo = PPO("Pendulum-v1", hidden_sizes=(16, 16), n_steps=64, n_envs=3, minibatch_size=32, seeds=[0, 1])
    r = ppo.rollout
    held = _nbytes(r.obs, r.action, r.log_prob, r.value, r.reward, r.terminated, r.episode_end, r.next_value,
                   r.advantage, r.returns, r.samples)  # fmt: skip
    assert memory.rollout(2, 64, 3, spec.obs_dim, spec.act_dim) == held


def _trained_params(agent: Any) -> int:
    return sum(p.numel() for opt in agent.optimizers().values() for g in opt.param_groups for p in g["params"])


@pytest.mark.parametrize(("cls", "env", "fields"), [
    (SAC, "Pendulum-v1", {}), (TD3, "Pendulum-v1", {}), (DDPG, "Pendulum-v1", {}),
    (SAC, "Pendulum-v1", {"network": "simba", "simba_width_critic": 64, "simba_width_actor": 32}),
    (SAC, "Pendulum-v1", {"critic_dist": "c51", "dist_bins": 301}),
    (TD3, "Pendulum-v1", {"critic_dist": "hl_gauss", "dist_bins": 301, "n_critics": 3}),
    (CrossQ, "Pendulum-v1", {"critic_hidden_sizes": (64, 64)}),
    (DQN, "CartPole-v1", {}), (DiscreteSAC, "CartPole-v1", {}),
    (PPO, "Pendulum-v1", {"n_steps": 32, "minibatch_size": 8}),
])  # fmt: skip
def test_the_network_estimate_covers_every_algorithms_parameters(cls: type, env: str, fields: dict[str, Any]) -> None:
    """Weights, gradients and Adam's two moments of every trained parameter at least (a missing
    output layer of ``dist_bins`` or a SimBa block would fall below), and not wildly more."""
    names = {f.name for f in dataclasses.fields(cls.config_cls)}
    small = {k: v for k, v in {**TINY, "hidden_sizes": (16, 16), "batch_size": 8}.items() if k in names}
    agent = cls(env, **{**small, **fields}, seeds=[0, 1])
    params = _trained_params(agent) * memory.FLOAT
    held = sum(t.nbytes for m in agent.modules().values() for t in m.parameters())  # targets included
    estimate = agent.memory_estimate()
    assert estimate["networks"] >= max(4 * params, held), (estimate, params)
    assert estimate["networks"] <= 12 * params, (estimate, params)
    if fields.get("critic_dist"):
        assert estimate["distributional critic"] >= agent.atoms.nbytes + 2 * 2 * 8 * fields["dist_bins"] * 4


# -- checkpoints: a value edited into state.json or config.json -----------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("mem") / "run"
    proc = subprocess.run(
        [*SOFTAC, "train", "--env", "Pendulum-v1", *TINY_FLAGS, "--total-steps", "120", "--learning-starts", "60",
         "--eval-freq", "120", "--critic-dist", "c51", "--dist-bins", "11", "--n-step", "3", "--run-dir", str(run)],
        capture_output=True, text=True, env=cli_env(), timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def _edit(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data["config"].update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("changes", "needles"), [
    ({"dist_bins": 10_000_000}, ["lower dist_bins (now dist_bins=10000000)", " fits"]),
    ({"n_step": 1_000_000_000}, ["n_step (1000000000) must not exceed buffer_size (4000)"]),
    ({"buffer_size": 10**13, "total_steps": 10**13}, ["replay buffer would need", "lower buffer_size"]),
    ({"hidden_sizes": [0, 32]}, ["hidden_sizes must be one or more positive integers, got 0 32"]),
])  # fmt: skip
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_checkpoint_edited_to_an_impossible_size_is_refused_with_files_untouched(
    trained_run: Path, tmp_path: Path, changes: dict[str, Any], needles: list[str], command: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (state,) = run.glob("checkpoints/step_*/state.json")
    _edit(state, **changes)
    before = _digests(run)
    args = ["eval", str(run)] if command == "eval" else ["train", "--resume", str(run), "--no-progress"]
    args += ["--device", "cpu"]
    line = one_line(run_limited(*args), *needles)
    assert f"checkpoint {state.parent}" in line
    assert _digests(run) == before


def test_a_run_without_checkpoint_whose_config_json_was_edited_is_refused(trained_run: Path, tmp_path: Path) -> None:
    """Killed before its first checkpoint, a run restarts from config.json: that file is checked too."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "checkpoints")
    _edit(run / "config.json", dist_bins=10_000_000)
    before = _digests(run)
    line = one_line(run_limited("train", "--resume", str(run), "--device", "cpu", "--no-progress"), "lower dist_bins",
                    " fits")  # fmt: skip
    assert f"{run / 'config.json'}:" in line
    assert _digests(run) == before


# -- n-step returns: the buffer, the episode and the first update --------------------------------
@pytest.mark.parametrize(("fields", "bad"), [
    ({"n_step": 5, "learning_starts": 4}, {"learning_starts": 3}),
    ({"n_step": 4, "learning_starts": 6, "n_envs": 2}, {"learning_starts": 5}),
    ({"n_step": 5, "learning_starts": 3, "utd_ratio": 0.5}, {"learning_starts": 2}),
])  # fmt: skip
def test_the_first_update_bound_is_exact(fields: dict[str, Any], bad: dict[str, Any]) -> None:
    """At the bound a run updates from its first rows; one step below, the config refuses it, and
    forced past the check, the run stops with the error the check prevents."""
    kw = {**TINY, "total_steps": 40, "eval_freq": 40, "checkpoint_freq": 0}
    SAC("Pendulum-v1", **kw, **fields).learn(progress=False)
    with pytest.raises(SoftacError, match=r"the first update would come before the first n-step row"):
        SAC("Pendulum-v1", **kw, **{**fields, **bad})
    forced = SAC("Pendulum-v1", **kw, **fields)
    object.__setattr__(forced.config, "learning_starts", bad["learning_starts"])
    with pytest.raises(SoftacError, match="cannot update from an empty replay buffer"):
        forced.learn(progress=False)


def test_dqn_bursts_have_their_own_first_update() -> None:
    kw = {**TINY, "learning_starts": 0, "burst_every": 4, "utd_ratio": 0.25}
    assert DQN("CartPole-v1", **kw, n_step=4).config.n_step == 4  # the bound itself is accepted
    refused_quickly(DQN, "use learning_starts=4 or more, or n_step=4 or less", env="CartPole-v1", **kw, n_step=5)


def test_n_step_is_bounded_by_the_episode_length() -> None:
    assert SAC("Pendulum-v1", **TINY, n_step=200, learning_starts=1000).config.n_step == 200  # the episode, whole
    refused_quickly(SAC, "episode length of Pendulum-v1 (200 steps): use n_step=200", env="Pendulum-v1", **TINY,
                    n_step=201, learning_starts=1000)  # fmt: skip
    refused_quickly(SAC, "(50 steps): use n_step=50 or less", env="Pendulum-v1", **TINY, n_step=51,
                    learning_starts=1000, env_kwargs={"max_episode_steps": 50})  # fmt: skip


# -- an extended budget fills more of the buffer --------------------------------------------------
def test_extending_the_budget_checks_the_rows_it_will_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = SAC("Pendulum-v1", **{**TINY, "buffer_size": 10**7}, total_steps=100)
    _fake_room(monkeypatch, 8 << 20, 1 << 40)  # 8 MiB free: 233,016 more rows of 36 bytes
    with pytest.raises(SoftacError, match=r"total_steps=10000000 would fill .* total_steps=\d+ fits") as info:
        agent.learn(10**7, progress=False)
    fit = int(str(info.value).rsplit("total_steps=", 1)[1].split()[0])
    assert (fit - 100) * 36 <= 8 << 20 < (fit + 1 - 100) * 36
    assert agent.env_steps == 0 and agent.config.total_steps == 100  # nothing changed


def test_the_address_space_limit_counts_as_the_machines_memory() -> None:
    room = memory.available(torch.device("cpu"))
    assert room is not None and 0 < room[0] <= room[1]
    probe = subprocess.run(
        [*SOFTAC[:1], "-c", "import torch, softac.memory as m; print(m.available(torch.device('cpu'))[1])"],
        capture_output=True, text=True, env=cli_env(), timeout=120, check=False, preexec_fn=_limited,
    )  # fmt: skip
    assert probe.returncode == 0 and int(probe.stdout) == LIMIT, probe.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_gpus_memory_is_the_bound() -> None:
    _, total = torch.cuda.mem_get_info()
    bins = int(total // (256 * 4 * 5)) + 1  # the critics' output layer alone exceeds the GPU
    line = refused_quickly(SAC, "this GPU", "lower dist_bins", env="Pendulum-v1", device="cuda", critic_dist="c51",
                           dist_bins=bins)  # fmt: skip
    assert torch.cuda.memory_allocated() < 1 << 30, line
