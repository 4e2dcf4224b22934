"""Rebuilding agents from checkpoints: one learner, or a batched run's seeds joined back together.

The algorithm is looked up in the registry by the name in ``state.json`` (never imported by a name
a file gives), the config is rebuilt field by field and validated, every file's checksum is
checked before anything is read into the agent.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import softac.registry as registry
from softac.env_sources import KINDS
from softac.envs import check_import_allowed, module_of
from softac.errors import SoftacError
from softac.io.files import loads_json, verify_file
from softac.io.rundir import (
    BATCH,
    NoCheckpoint,
    batched_seeds,
    list_checkpoints,
    resolve_checkpoint,
    step_checkpoint_path,
)  # fmt: skip
from softac.io.state import check_finite, load_learner, read_state
from softac.nn.encoder import EncoderSpec, check_encoder_record
from softac.protocols import AgentLike


def _named(env: Any) -> list[str]:
    """The module an id the *caller* gives names: naming it is consent to import it."""
    module = module_of(env) if isinstance(env, str) else None
    return [module] if module else []


def check_env_record(record: Any, config: Any, where: str, env: Any, allow_import: Collection[str]) -> None:
    """The environment a run file names may be rebuilt: an id whose module (``module:EnvId``) the
    user allowed, or — for a run made from an instance, factory or vector env, which no file can
    record — only from the environment the caller gives again."""
    if env is not None:
        if isinstance(env, str):
            check_import_allowed(env, {*allow_import, *_named(env)}, where)
        return
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in KINDS:
        raise SoftacError(f"{where} has an invalid 'env' record {record!r}; it is corrupted")
    if kind != "id":
        raise SoftacError(
            f"{where} was trained on an environment {kind} ({config.env_id}), which a checkpoint cannot record: "
            f"load it in Python with <Algo>.load(PATH, env=<that environment or a factory of it>)"
        )
    check_import_allowed(config.env_id, allow_import, where)


def _build(
    state: dict[str, Any], ckpt: Path, device: str | None, seeds: list[int], env: Any, allow_import: Collection[str],
    encoder: EncoderSpec = (None, {}),
) -> AgentLike:  # fmt: skip
    info = registry.get(state["algo"])
    check_encoder_record(state.get("encoder"), encoder[0], f"checkpoint {ckpt}")
    # Before anything else reads the environment id: the top-level copy is checked too, in case a
    # tool reads it.
    check_import_allowed(state["env_id"], {*allow_import, *_named(env)}, f"checkpoint {ckpt}")
    verify_files(state, ckpt)
    config = info.config_cls.from_dict(state["config"], where=f"checkpoint {ckpt}")
    check_env_record(state["env"], config, f"checkpoint {ckpt}", env, allow_import)
    if device is not None:
        config = config.replace(device=device)
    if env is not None and not isinstance(env, str):
        config = config.replace(env_kwargs=())
    agent = _construct(info, env, config, seeds, f"checkpoint {ckpt}", encoder)
    if (agent.spec.obs_dim, agent.spec.act_dim) != (state["obs_dim"], state["act_dim"]):
        # Why: with env= given, the line named the checkpoint's environment twice ("made for 3,
        # but Pendulum-v1 now has 2"); it names the one given, and the one the run was made on.
        now = f"the environment given ({agent.config.env_id})" if env is not None else f"{config.env_id} now"
        raise SoftacError(
            f"checkpoint {ckpt} was made on {state['env_id']} (observations of size {state['obs_dim']}, actions "
            f"of size {state['act_dim']}), but {now} has {agent.spec.obs_dim} and {agent.spec.act_dim}"
        )
    layout = agent.spec.obs_layout
    recorded, current = state.get("obs_layout"), (None if layout.identity else layout.describe())
    if recorded != current:
        now = f"the environment given ({agent.config.env_id})" if env is not None else f"{config.env_id} now"
        raise SoftacError(
            f"checkpoint {ckpt} was made on observations laid out as {recorded or 'one flat Box'}, but {now} "
            f"gives {current or 'one flat Box'}: load it with the environment it was trained on"
        )
    return agent


def _construct(
    info: Any, env: Any, config: Any, seeds: list[int], where: str, encoder: EncoderSpec = (None, {})
) -> AgentLike:
    """The agent a file's config describes. What its construction refuses before allocating (the
    memory its sizes need, n_step against the episode length) came from the file, not from a flag:
    the line says which file."""
    try:
        agent: AgentLike = info.agent_cls(env, config=config, seeds=seeds, **_encoder_args(encoder))
    except SoftacError as exc:
        if type(exc) is not SoftacError:
            raise
        raise SoftacError(f"{where}: {exc}") from None
    return agent


def verify_files(state: dict[str, Any], ckpt: Path) -> None:
    """Every file a checkpoint needs is listed with its checksum, and matches it. Why: an empty
    ``"files": {}`` disabled verification, and ``"data": {"included": false}`` with a listed buffer
    resumed with an empty replay buffer, silently."""
    files = state["files"]
    for name, digest in files.items():
        if name not in ("model.safetensors", "buffer.safetensors") or not isinstance(digest, str):
            raise SoftacError(f"checkpoint {ckpt} lists an unexpected file {name!r} in state.json")
    needed = {"model.safetensors", *(["buffer.safetensors"] if state["data"]["included"] else [])}
    if set(files) != needed:
        missing, extra = sorted(needed - set(files)), sorted(set(files) - needed)
        raise SoftacError(
            f"checkpoint {ckpt}: state.json's 'files' does not match its 'data' record (unlisted {missing}, "
            f"unexpected {extra}); it is corrupted"
        )
    for name, digest in files.items():
        verify_file(ckpt / name, digest)


def _check_expect(state: dict[str, Any], ckpt: Path, expect: dict[str, Any] | None) -> None:
    for key, value in (expect or {}).items():
        if value is not None and state.get(key) != value:
            raise SoftacError(f"checkpoint {ckpt} is for {key} '{state.get(key)}', not '{value}'")


def load_agent(
    path: Path,
    device: str | None = None,
    expect: dict[str, Any] | None = None,
    env: Any = None,
    allow_import: Collection[str] = (),
    encoder: EncoderSpec = (None, {}),
) -> AgentLike:
    """An agent from a checkpoint directory, a run directory (its newest checkpoint) or a batched
    run directory (every seed, at the newest step they all reached).

    ``expect`` may name ``algo``/``env_id`` the caller requires; a mismatch is a clear error.
    ``env`` gives the environment again (an id, instance, factory or vector env); a ``module:EnvId``
    id from a file is built only if ``allow_import`` names its module. The loaded weights must be
    finite: a NaN/inf checkpoint is refused (it would evaluate to "nan ± nan")."""
    path = Path(path)
    seeds = batched_seeds(path) if path.is_dir() else None
    if seeds is not None:
        return _load_batched(path, seeds, device, expect, env, allow_import, encoder)
    ckpt = resolve_checkpoint(path)
    state = read_state(ckpt)
    _check_expect(state, ckpt, expect)
    agent = _build(state, ckpt, device, [state["config"].get("seed", 0)], env, allow_import, encoder)
    try:
        _restore(agent, [(ckpt, state)])
    except FileNotFoundError as exc:
        raise SoftacError(f"checkpoint {ckpt} disappeared while it was read ({exc.filename}): was it pruned by "
                          "another process training this run? Try again") from None  # fmt: skip
    return agent


def _load_batched(
    run_dir: Path, seeds: list[int], device: str | None, expect: dict[str, Any] | None, env: Any,
    allow_import: Collection[str], encoder: EncoderSpec,
) -> AgentLike:  # fmt: skip
    """Why the newest *common* step: the learners' checkpoints are written one after another, so a
    crash between two of them leaves the newest step on some seeds only; the one before is
    complete on all (older checkpoints are pruned only after every learner's new one is written)."""
    dirs = [run_dir / f"seed_{s}" for s in seeds]
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        raise SoftacError(f"{run_dir / BATCH} lists seed {missing[0].name.removeprefix('seed_')}, but {missing[0]} "
                          "is missing; restore it, or give another seed's directory")  # fmt: skip
    steps = [{p.name for p in list_checkpoints(d)} for d in dirs]
    common = sorted(set.intersection(*steps)) if steps else []
    if not common:
        cls = NoCheckpoint if not any(steps) else SoftacError
        raise cls(f"{run_dir} is a batched run with no checkpoint that every seed reached")
    step = int(common[-1].removeprefix("step_"))
    pairs = []
    for d in dirs:
        ckpt = step_checkpoint_path(d, step)
        state = read_state(ckpt)
        _check_expect(state, ckpt, expect)
        verify_files(state, ckpt)  # every learner's files (only the first seed's were once checked)
        pairs.append((ckpt, state))
    first = pairs[0][1]
    for ckpt, state in pairs[1:]:
        same = {k: v for k, v in state["config"].items() if k != "seed"} == {
            k: v for k, v in first["config"].items() if k != "seed"
        }
        if state["algo"] != first["algo"] or not same:
            raise SoftacError(f"{ckpt} belongs to a different run than {pairs[0][0]} (algorithm or settings differ)")
    seeds_ = [s["config"].get("seed", 0) for _, s in pairs]
    agent = _build(first, pairs[0][0], device, seeds_, env, allow_import, encoder)
    _restore(agent, pairs)
    agent.seed_dirs = True  # type: ignore[attr-defined]  # its layout: softac.io.rundir.seed_layout
    return agent


def _restore(agent: AgentLike, pairs: list[tuple[Path, dict[str, Any]]]) -> None:
    counters = pairs[0][1]["counters"]
    for k, (ckpt, state) in enumerate(pairs):
        c = state["counters"]
        if (c["env_steps"], c["updates"]) != (counters["env_steps"], counters["updates"]):
            raise SoftacError(f"{ckpt} is at another step than {pairs[0][0]}")
        load_learner(agent, k, ckpt, state)
        agent.episodes[k] = c["episodes"]
    for k, bad in enumerate(check_finite(agent)):
        if bad is not None:
            raise SoftacError(
                f"checkpoint {pairs[k][0]} holds NaN/inf values in {bad}; it cannot be evaluated or resumed: "
                "use an earlier checkpoint"
            )
    agent.env_steps, agent.updates = counters["env_steps"], counters["updates"]
    agent.resume_state = [state["resume"] for _, state in pairs]
    agent.loaded_from = pairs[0][0]


def restart_agent(path: Path, device: str | None, allow_import: Collection[str], env: Any = None) -> AgentLike:
    """A fresh agent for a run directory killed before its first checkpoint, from its config.json
    (``runs.json`` for a batched run): every field read and validated, nothing else trusted.
    Why restart rather than refuse: nothing was saved, so nothing is lost, and a scheduler that
    answers a kill with ``--resume`` must not fail on a run that had not reached a checkpoint."""
    seeds = batched_seeds(path)
    meta_path = path / (BATCH if seeds is not None else "config.json")
    try:
        meta = loads_json(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        what = f"{path} has no checkpoint and an unreadable {meta_path.name} ({exc})"
        raise SoftacError(f"{what}; start the run anew with softac train") from None
    where = str(meta_path)
    if not isinstance(meta, dict) or not isinstance(meta.get("algo"), str) or not isinstance(meta.get("config"), dict):
        raise SoftacError(f"{where} lacks a valid 'algo' or 'config'; start the run anew with softac train")
    info = registry.get(meta["algo"])
    config = info.config_cls.from_dict(meta["config"], where=where)
    check_env_record(meta.get("env"), config, where, env, allow_import)
    if device is not None:
        config = config.replace(device=device)
    agent = _construct(info, env, config, seeds if seeds is not None else [config.seed], where)
    agent.seed_dirs = seeds is not None  # type: ignore[attr-defined]
    return agent


def _encoder_args(encoder: EncoderSpec) -> dict[str, Any]:
    """``encoder=``/``encoder_kwargs=`` for the agent's constructor, only when there is one (the
    algorithms without encoders take neither)."""
    return {} if encoder[0] is None else {"encoder": encoder[0], "encoder_kwargs": encoder[1]}

