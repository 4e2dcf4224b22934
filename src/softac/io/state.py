"""Agent state ↔ tensors and JSON, one learner at a time: saving and loading checkpoints.

A checkpoint is a directory::

    state.json          counters, config, env RNG, logger position, tensor names, file hashes
    model.safetensors   every network (targets too), optimizer moments, log α, the random streams
    buffer.safetensors  the learner's training data (replay buffer rows; optional for ``save``)

It holds ONE learner: every learned tensor of an agent is learner-major on its leading dimension
(``softac.protocols``), so learner k's checkpoint is the k-th slice of each, and a batched run of
N seeds writes N ordinary checkpoints, each loadable on its own (``softac eval RUN/seed_3``) or
joined back into a batched agent (``--resume RUN``). Only this module knows the layout; it
reaches the agent through the protocol alone.

Writing is atomic: into ``<name>.tmp-<pid>``, every file fsync'ed, then renamed into place. A
crash at any moment leaves either the previous checkpoint or the complete new one; ``state.json``
records a SHA-256 of each tensor file, so a truncated or corrupted file is refused at load time.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from softac.data.replay import RowsOutOfRange
from softac.errors import SoftacError, WriteError
from softac.io.checks import check_data_counters, check_resume
from softac.io.domains import check_domains
from softac.io.files import DTYPE_NAMES, fsync_dir, loads_json, read_tensors, refuse_foreign, write_safetensors
from softac.io.rundir import STATE
from softac.nn.encoder import encoder_record
from softac.protocols import AgentLike, state_tensors

FORMAT = "softac-checkpoint"
# The first release wrote version 1 (one learner per agent, networks in another layout); later ones,
# until environments were recorded, wrote 2 (no "env" record and no env_kwargs: it could not tell an
# instance's run from an id's).
VERSION = 3
MODEL = "model.safetensors"
DATA = "buffer.safetensors"
CHECKPOINT_FILES = (STATE, MODEL, DATA)
_CHUNK_ROWS_BYTES = 16 * 1024 * 1024
_MAX_COUNTER = 2**62  # config.MAX_INT: the same bound for every counter and integer field


def live_tensors(agent: AgentLike) -> dict[str, Tensor]:
    """Every learned tensor of the agent by checkpoint name (``softac.protocols.state_tensors``, the
    one listing of an agent's state), as the live tensors themselves."""
    return state_tensors(agent)


def learner_slice(t: Tensor, k: int, learners: int) -> Tensor:
    """Learner k's part of a learner-major tensor; a 0-d tensor (an optimizer's step count, equal
    for every learner) is shared."""
    if t.dim() == 0:
        return t
    members, rem = divmod(t.shape[0], learners)
    if rem:
        raise ValueError(f"a tensor of leading size {t.shape[0]} is not learner-major for {learners} learners")
    return t[k * members : (k + 1) * members]


def check_finite(agent: AgentLike) -> list[str | None]:
    """Per learner, the name of its first learned tensor holding a NaN/inf, or None (one host sync)."""
    names, flags = [], []
    for name, t in live_tensors(agent).items():
        if t.dim() == 0 or not t.is_floating_point():
            continue
        names.append(name)
        flags.append(torch.isfinite(t.reshape(agent.learners, -1)).all(dim=1))
    ok = torch.stack(flags).tolist()  # (tensors, learners)
    return [next((n for n, row in zip(names, ok, strict=True) if not row[k]), None) for k in range(agent.learners)]


def _is_checkpoint_dir(path: Path) -> bool:
    try:
        return loads_json((path / STATE).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _foreign_entries(path: Path) -> list[str]:
    """What a checkpoint directory holds besides the files softac writes into one."""
    return sorted(p.name for p in path.iterdir() if p.name not in CHECKPOINT_FILES or p.is_symlink() or not p.is_file())


def save_checkpoint(agent: AgentLike, k: int, path: Path, include_data: bool = True) -> Path:
    """Write learner k of ``agent`` to ``path`` atomically. ``path`` may already hold a softac
    checkpoint (it is replaced); anything else there is refused, never deleted."""
    path = Path(path)
    if path.is_symlink() or path.is_file() or (path.exists() and not _is_checkpoint_dir(path)):
        raise SoftacError(
            f"refusing to write a checkpoint at {path}: it exists and is not a softac checkpoint directory "
            "(nothing was changed); choose another path"
        )
    # Why: the old checkpoint is replaced by renaming the new one over it, which deleted whatever
    # else was in it (a user's notes/ subdirectory). softac deletes only what it wrote.
    foreign = _foreign_entries(path) if path.is_dir() else []
    if foreign:
        raise SoftacError(
            f"refusing to replace the checkpoint {path}: it also holds {', '.join(foreign[:3])}, which softac did not "
            "write and would delete (nothing was changed); move it out, or save to another path"
        )
    bad = check_finite(agent)[k]
    if bad is not None:
        raise SoftacError(f"refusing to save a checkpoint: {bad} holds NaN/inf values")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create checkpoint directory {parent}: {exc.strerror}") from None
    tmp = parent / f"{path.name}.tmp-{os.getpid()}"
    old = parent / f"{path.name}.old-{os.getpid()}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        tensors = {name: learner_slice(t, k, agent.learners) for name, t in live_tensors(agent).items()}
        tensors.update({f"rng/{name}": t for name, t in agent.rng.state(k).items()})
        files = {MODEL: write_safetensors(tmp / MODEL, tensors)}
        if include_data:
            files[DATA] = write_safetensors(tmp / DATA, agent.data_tensors(k))
        state = {
            "format": FORMAT,
            "version": VERSION,
            "algo": agent.algo,
            "env_id": agent.config.env_id,
            "env": agent.env_source.describe(),
            "obs_dim": agent.spec.obs_dim,
            "act_dim": agent.spec.act_dim,
            **_layout_record(agent),
            **encoder_record(getattr(agent, "encoder", None)),
            "config": agent.learner_config(k).to_dict(),
            "counters": {"env_steps": agent.env_steps, "updates": agent.updates, "episodes": agent.episodes[k]},
            "data": {"included": include_data, **agent.data_meta(k)},
            "resume": (agent.resume_state or [{}] * agent.learners)[k],
            "tensors": sorted(tensors),
            "files": files,
            "torch_version": torch.__version__,
        }
        with (tmp / STATE).open("w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        fsync_dir(parent)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            old.rename(path)  # put the previous checkpoint back
        raise WriteError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_state(ckpt: Path) -> dict[str, Any]:
    """``state.json`` of a checkpoint, every field the loader reads checked (one line if not)."""
    try:
        state = loads_json((ckpt / STATE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SoftacError(f"checkpoint {ckpt} has an unreadable {STATE} ({exc}); it is corrupted") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SoftacError(f"{ckpt} is not a softac checkpoint")
    if state.get("version") == 1:
        raise SoftacError(
            f"{ckpt} was written by softac 0.1 (checkpoint format 1), which this softac cannot read "
            f"(format {VERSION}: networks carry a learner axis); evaluate it with softac 0.1 or retrain"
        )
    if state.get("version") == 2:
        raise SoftacError(
            f"{ckpt} was written by softac 0.2 before environment sources were recorded (checkpoint format 2); "
            f"this softac reads format {VERSION}: retrain, or evaluate it with that softac"
        )
    version = state.get("version")
    if not isinstance(version, int) or isinstance(version, bool):  # Why: "3" read "version '3'; reads 3"
        raise SoftacError(
            f"{ckpt} has a 'version' field of the wrong type in {STATE} ({version!r}, a {type(version).__name__}; "
            f"it must be the integer {VERSION}); it is corrupted"
        )
    if version != VERSION:
        raise SoftacError(f"{ckpt} has checkpoint format version {state.get('version')!r}; this softac reads {VERSION}")
    required: dict[str, type | tuple[type, ...]] = {
        "algo": str, "env_id": str, "config": dict, "files": dict, "obs_dim": int, "act_dim": int,
        "counters": dict, "data": dict, "tensors": list, "resume": dict, "env": dict,
    }  # fmt: skip
    nested = {"counters": ("env_steps", "updates", "episodes"), "data": ("included",)}
    for key, kind in required.items():
        value: Any = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SoftacError(f"checkpoint {ckpt} has an incomplete {STATE} (bad or missing '{key}'); it is corrupted")
        for sub in nested.get(key, ()):
            item: Any = state[key].get(sub)
            ok = isinstance(item, bool) if sub == "included" else isinstance(item, int) and not isinstance(item, bool)
            # Bounded: a counter of 2**63 or more overflowed int64 tensors later.
            if not ok or (not isinstance(item, bool) and not 0 <= item <= _MAX_COUNTER):
                raise SoftacError(f"checkpoint {ckpt} has an invalid '{key}.{sub}' in {STATE}: {item!r}")
    check_resume(ckpt, state["resume"], state["config"].get("n_envs"))
    c = state["counters"]
    if c["updates"] > _MAX_COUNTER or c["episodes"] > c["env_steps"]:
        raise SoftacError(
            f"checkpoint {ckpt} has inconsistent counters in {STATE} (env_steps {c['env_steps']}, "
            f"episodes {c['episodes']}): more episodes than steps; it is corrupted"
        )
    check_data_counters(ckpt, state)
    return state


def load_learner(agent: AgentLike, k: int, ckpt: Path, state: dict[str, Any]) -> None:
    """Copy a checkpoint's learner into learner k of ``agent`` (which has the right shapes)."""
    tensors = read_tensors(ckpt / MODEL, device="cpu")
    live = live_tensors(agent)
    names, expected = set(tensors) - {"rng/device"}, {*live, "rng/host"}
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise SoftacError(
            f"checkpoint {ckpt} does not match a {agent.algo} agent with this config "
            f"(missing {missing[:3]}, unexpected {extra[:3]})"
        )
    check_domains(ckpt / MODEL, tensors)
    with torch.no_grad():
        for name, target in live.items():
            dst = learner_slice(target, k, agent.learners)
            src = tensors[name]
            if src.dtype != dst.dtype:  # Why: F64/I64/BOOL tensors were cast silently
                raise SoftacError(
                    f"checkpoint {ckpt}: {name} is stored as {src.dtype}, this agent's is {dst.dtype}; it is corrupted"
                )
            if dst.shape != src.shape:
                raise SoftacError(
                    f"checkpoint {ckpt}: {name} has shape {tuple(src.shape)}, this agent's has {tuple(dst.shape)}"
                )
            dst.copy_(src)
    try:
        agent.rng.set_state(k, {n[4:]: t for n, t in tensors.items() if n.startswith("rng/")})
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # a malformed rng/host tensor crashed
        raise SoftacError(f"checkpoint {ckpt}: its random-number state is invalid ({exc}); it is corrupted") from None
    if state["data"]["included"]:
        _load_data(agent, k, ckpt / DATA, state["data"])


def _load_data(agent: AgentLike, k: int, path: Path, meta: dict[str, Any]) -> None:
    """Copy stored rows into the agent's preallocated regions chunk by chunk (no second full copy)."""
    refuse_foreign(path)
    targets = agent.data_targets(k)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for name in f.keys():  # noqa: SIM118 (not a dict)
                if name not in targets:
                    raise SoftacError(f"{path}: unexpected tensor {name!r}")
                src, dst = f.get_slice(name), targets[name]
                shape = src.get_shape()
                if src.get_dtype() != DTYPE_NAMES.get(dst.dtype):
                    raise SoftacError(f"{path}: stored {name} is {src.get_dtype()}, this agent's is {dst.dtype}")
                if shape and shape[0] > _MAX_COUNTER:
                    raise SoftacError(f"{path}: stored {name} has an impossible number of rows")
                if len(shape) != dst.dim() or shape[0] > dst.shape[0] or list(shape[1:]) != list(dst.shape[1:]):
                    raise SoftacError(f"{path}: stored {name} of shape {tuple(shape)} does not fit this agent")
                step = max(1, _CHUNK_ROWS_BYTES // max(1, dst[:1].numel() * dst.element_size()))
                for start in range(0, shape[0], step):
                    stop = min(shape[0], start + step)
                    dst[start:stop].copy_(src[start:stop])
                    # Why: NaN rows trained into NaN weights, reported as a divergence. Nothing
                    # non-finite is ever stored (such steps are refused or dropped by the collector).
                    if dst.is_floating_point() and not bool(torch.isfinite(dst[start:stop]).all()):
                        raise SoftacError(
                            f"{path}: stored {name} holds NaN/inf values (rows {start}-{stop - 1}); the buffer file "
                            "is corrupted: use an earlier checkpoint"
                        )
    except SoftacError:
        raise
    except Exception as exc:
        raise SoftacError(f"{path} is not a valid training-data file ({exc})") from None
    try:
        agent.load_data_meta(k, meta)
    except RowsOutOfRange as exc:
        raise SoftacError(f"{path}: {exc}; the file is corrupted (or was edited): use an earlier checkpoint") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SoftacError(f"{path}: invalid data description in {STATE} ({exc})") from None


def _layout_record(agent: AgentLike) -> dict[str, str]:
    """A Dict/Discrete observation's layout (``softac.obs``), recorded so a load onto an environment
    whose keys have the same total size in another arrangement is refused; a flat Box records
    nothing (its ``obs_dim`` says it all, and its checkpoints stay as they were)."""
    layout = agent.spec.obs_layout
    return {} if layout.identity else {"obs_layout": layout.describe()}
