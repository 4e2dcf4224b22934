"""Rebuilding agents from checkpoints: one learner, or a batched run's seeds joined back together.

The algorithm is looked up in the registry by the name in ``state.json`` (never imported by a name
a file gives), the config is rebuilt field by field and validated, every file's checksum is
checked before anything is read into the agent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import softac.registry as registry
from softac.errors import SoftacError
from softac.io.files import verify_file
from softac.io.rundir import batched_seeds, list_checkpoints, resolve_checkpoint, step_checkpoint_path
from softac.io.state import load_learner, read_state
from softac.protocols import AgentLike


def _build(state: dict[str, Any], ckpt: Path, device: str | None, seeds: list[int]) -> AgentLike:
    info = registry.get(state["algo"])
    for name, digest in state["files"].items():
        if name not in ("model.safetensors", "buffer.safetensors") or not isinstance(digest, str):
            raise SoftacError(f"checkpoint {ckpt} lists an unexpected file {name!r} in state.json")
        verify_file(ckpt / name, digest)
    config = info.config_cls.from_dict(state["config"], where=f"checkpoint {ckpt}")
    if device is not None:
        config = config.replace(device=device)
    agent: AgentLike = info.agent_cls(config=config, seeds=seeds)
    if (agent.spec.obs_dim, agent.spec.act_dim) != (state["obs_dim"], state["act_dim"]):
        raise SoftacError(
            f"checkpoint {ckpt} was made for observations of size {state['obs_dim']} and actions of size "
            f"{state['act_dim']}, but {config.env_id} now has {agent.spec.obs_dim} and {agent.spec.act_dim}"
        )
    return agent


def _check_expect(state: dict[str, Any], ckpt: Path, expect: dict[str, Any] | None) -> None:
    for key, value in (expect or {}).items():
        if value is not None and state.get(key) != value:
            raise SoftacError(f"checkpoint {ckpt} is for {key} '{state.get(key)}', not '{value}'")


def load_agent(path: Path, device: str | None = None, expect: dict[str, Any] | None = None) -> AgentLike:
    """An agent from a checkpoint directory, a run directory (its newest checkpoint) or a batched
    run directory (every seed, at the newest step they all reached).

    ``expect`` may name ``algo``/``env_id`` the caller requires; a mismatch is a clear error."""
    path = Path(path)
    seeds = batched_seeds(path) if path.is_dir() else None
    if seeds is not None:
        return _load_batched(path, seeds, device, expect)
    ckpt = resolve_checkpoint(path)
    state = read_state(ckpt)
    _check_expect(state, ckpt, expect)
    agent = _build(state, ckpt, device, [state["config"].get("seed", 0)])
    _restore(agent, [(ckpt, state)])
    return agent


def _load_batched(run_dir: Path, seeds: list[int], device: str | None, expect: dict[str, Any] | None) -> AgentLike:
    """Why the newest *common* step: the learners' checkpoints are written one after another, so a
    crash between two of them leaves the newest step on some seeds only; the one before is
    complete on all (older checkpoints are pruned only after every learner's new one is written)."""
    dirs = [run_dir / f"seed_{s}" for s in seeds]
    steps = [{p.name for p in list_checkpoints(d)} for d in dirs]
    common = sorted(set.intersection(*steps)) if steps else []
    if not common:
        raise SoftacError(f"{run_dir} is a batched run with no checkpoint that every seed reached")
    step = int(common[-1].removeprefix("step_"))
    pairs = []
    for d in dirs:
        ckpt = step_checkpoint_path(d, step)
        state = read_state(ckpt)
        _check_expect(state, ckpt, expect)
        pairs.append((ckpt, state))
    first = pairs[0][1]
    for ckpt, state in pairs[1:]:
        same = {k: v for k, v in state["config"].items() if k != "seed"} == {
            k: v for k, v in first["config"].items() if k != "seed"
        }
        if state["algo"] != first["algo"] or not same:
            raise SoftacError(f"{ckpt} belongs to a different run than {pairs[0][0]} (algorithm or settings differ)")
    agent = _build(first, pairs[0][0], device, [s["config"].get("seed", 0) for _, s in pairs])
    _restore(agent, pairs)
    return agent


def _restore(agent: AgentLike, pairs: list[tuple[Path, dict[str, Any]]]) -> None:
    counters = pairs[0][1]["counters"]
    for k, (ckpt, state) in enumerate(pairs):
        c = state["counters"]
        if (c["env_steps"], c["updates"]) != (counters["env_steps"], counters["updates"]):
            raise SoftacError(f"{ckpt} is at another step than {pairs[0][0]}")
        load_learner(agent, k, ckpt, state)
        agent.episodes[k] = c["episodes"]
    agent.env_steps, agent.updates = counters["env_steps"], counters["updates"]
    agent.resume_state = [state["resume"] for _, state in pairs]
    agent.loaded_from = pairs[0][0]
