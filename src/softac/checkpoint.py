"""Atomic, pickle-free checkpoints and exact resume.

A checkpoint is a directory::

    state.json          counters, config, RNG of the envs, optimizer hyper-parameters, file hashes
    model.safetensors   every network (targets too), optimizer moments, log α, torch RNG state
    buffer.safetensors  the replay buffer's filled rows (optional for ``agent.save``)

It is written into ``<name>.tmp-<pid>``; every file is flushed and fsync'ed, then the directory is
renamed into place and its parent fsync'ed. A crash at any moment leaves either the previous
checkpoints untouched plus a ``.tmp`` directory (ignored and cleaned up), or the complete new one.
``state.json`` records a SHA-256 of each tensor file, so a truncated or corrupted file is refused
at load time instead of resuming from garbage.

Nothing is unpickled: tensors are read by ``safetensors`` (a header of JSON and raw bytes) and the
rest by ``json``. A pickle (e.g. a ``torch.save`` file) put in place of a checkpoint file is
recognised and refused with a clear error, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from torch import Tensor

from softac.config import CONFIGS
from softac.errors import SoftacError

if TYPE_CHECKING:
    from softac.agents.base import OffPolicyAgent

FORMAT = "softac-checkpoint"
VERSION = 1
STATE = "state.json"
MODEL = "model.safetensors"
BUFFER = "buffer.safetensors"
_CHUNK = 16 * 1024 * 1024
_STEP_DIR = re.compile(r"^step_(\d{10})$")

_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip


# -- low level: streamed safetensors writing, validated reading --------------------------------
def _byte_chunks(t: Tensor) -> Iterator[memoryview]:
    """The tensor's bytes in chunks, without materialising a second copy of a large tensor
    (a CUDA tensor is copied to the host one chunk at a time)."""
    flat = t.detach().reshape(-1)
    if not flat.is_contiguous():
        flat = flat.contiguous()
    per_chunk = max(1, _CHUNK // max(1, flat.element_size()))
    for start in range(0, flat.numel(), per_chunk):
        part = flat[start : start + per_chunk]
        if part.device.type != "cpu":
            part = part.cpu()
        yield memoryview(part.view(torch.uint8).numpy().data).cast("B")


def write_safetensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str] | None = None) -> str:
    """Write a standard safetensors file, streaming each tensor; return its SHA-256."""
    header: dict[str, Any] = {}
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _DTYPES:
            raise TypeError(f"cannot store dtype {t.dtype} ({name})")
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    if metadata:
        header["__metadata__"] = metadata
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format aligns the data section to 8 bytes
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for piece in (struct.pack("<Q", len(blob)), blob):
            f.write(piece)
            digest.update(piece)
        for t in tensors.values():
            for chunk in _byte_chunks(t):
                f.write(chunk)
                digest.update(chunk)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _refuse_foreign(path: Path) -> None:
    """Name the common wrong files (pickles, torch.save zips) before the generic parse error."""
    with path.open("rb") as f:
        head = f.read(9)
    # Why this first: a safetensors file starts with its header length as a little-endian u64, so
    # a header of 128 mod 256 bytes starts with 0x80 like a pickle (e.g. every DDPG checkpoint on
    # Pendulum with 64×64 networks, or default SAC on Humanoid, was refused as "a pickle"). A
    # plausible safetensors prefix (length that fits the file, then the JSON '{') is not foreign;
    # nothing is unpickled either way, this only picks the error message.
    if len(head) == 9 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= path.stat().st_size:
        return
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise SoftacError(
            f"{path} is a pickle/torch.save file, not a softac checkpoint; softac never unpickles "
            "files (it could run arbitrary code)"
        )


def verify_file(path: Path, expected_sha256: str) -> None:
    if not path.is_file():
        raise SoftacError(f"checkpoint file {path} is missing")
    _refuse_foreign(path)
    if _sha256(path) != expected_sha256:
        raise SoftacError(f"checkpoint file {path} is corrupted or truncated (checksum mismatch)")


def read_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    _refuse_foreign(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises several types for malformed files
        raise SoftacError(f"{path} is not a valid safetensors file ({exc})") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


# -- agent state <-> tensors + JSON -----------------------------------------------------------
def _optimizer_split(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, Tensor]) -> dict[str, Any]:
    sd = opt.state_dict()
    keys: dict[str, list[str]] = {}
    for idx, st in sd["state"].items():
        keys[str(idx)] = []
        for k, v in st.items():
            if not isinstance(v, Tensor):
                raise TypeError(f"optimizer state {k} is not a tensor")
            tensors[f"{prefix}/{idx}/{k}"] = v
            keys[str(idx)].append(k)
    return {"param_groups": sd["param_groups"], "state_keys": keys}


def _optimizer_join(meta: dict[str, Any], prefix: str, tensors: dict[str, Tensor]) -> dict[str, Any]:
    state = {int(idx): {k: tensors[f"{prefix}/{idx}/{k}"] for k in ks} for idx, ks in meta["state_keys"].items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def agent_tensors(agent: OffPolicyAgent) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors: dict[str, Tensor] = {}
    for name, module in agent.modules().items():
        for key, value in module.state_dict().items():
            tensors[f"net/{name}/{key}"] = value
    for name, value in agent.extra_tensors().items():
        tensors[f"extra/{name}"] = value
    optim_meta = {name: _optimizer_split(opt, f"optim/{name}", tensors) for name, opt in agent.optimizers().items()}
    tensors["rng/torch_cpu"] = torch.get_rng_state()
    n_cuda = 0
    if agent.device.type == "cuda":
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
            n_cuda += 1
    return tensors, {"optimizers": optim_meta, "cuda_rng": n_cuda}


def check_finite(agent: OffPolicyAgent) -> str | None:
    """The name of the first network/α holding a non-finite value, or None (one host sync)."""
    names: list[str] = []
    flags: list[Tensor] = []
    for name, module in agent.modules().items():
        for pname, p in module.named_parameters():
            names.append(f"{name}.{pname}")
            flags.append(torch.isfinite(p).all())
    for name, t in agent.extra_tensors().items():
        names.append(name)
        flags.append(torch.isfinite(t).all())
    ok = torch.stack(flags).tolist()
    return next((n for n, good in zip(names, ok, strict=True) if not good), None)


# -- saving -----------------------------------------------------------------------------------
def save_checkpoint(
    agent: OffPolicyAgent, path: Path, include_buffer: bool = True, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``path`` atomically (see the module docstring). ``extra`` adds JSON state (logger)."""
    bad = check_finite(agent)
    if bad is not None:
        raise SoftacError(f"refusing to save a checkpoint: {bad} holds NaN/inf values")
    path = Path(path)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SoftacError(f"cannot create checkpoint directory {parent}: {exc.strerror}") from None
    tmp = parent / f"{path.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        tensors, meta = agent_tensors(agent)
        files = {MODEL: write_safetensors(tmp / MODEL, tensors)}
        if include_buffer:
            files[BUFFER] = write_safetensors(tmp / BUFFER, agent.buffer.state_tensors())
        resume = dict(agent.resume_state or {})
        resume.update(extra or {})
        state = {
            "format": FORMAT,
            "version": VERSION,
            "algo": agent.algo,
            "env_id": agent.config.env_id,
            "obs_dim": agent.spec.obs_dim,
            "act_dim": agent.spec.act_dim,
            "config": agent.config.to_dict(),
            "counters": {"env_steps": agent.env_steps, "updates": agent.updates, "episodes": agent.episodes},
            "buffer": {"included": include_buffer, "size": agent.buffer.size, "cursor": agent.buffer.cursor},
            "resume": resume,
            "files": files,
            "torch_version": torch.__version__,
            **meta,
        }
        with (tmp / STATE).open("w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = parent / f"{path.name}.old-{os.getpid()}"
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        _fsync_dir(parent)
        if old.exists():
            shutil.rmtree(old)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SoftacError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# -- finding and loading ----------------------------------------------------------------------
def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete step checkpoints of a run directory, oldest first (``.tmp`` ones are ignored)."""
    ckpt_dir = run_dir / "checkpoints"
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if _STEP_DIR.match(p.name) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: p.name)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory itself, or the newest checkpoint of a run directory."""
    if not path.exists():
        raise SoftacError(f"{path} does not exist")
    if path.is_file():
        _refuse_foreign(path)
        raise SoftacError(f"{path} is a file; give a checkpoint directory or a run directory")
    if (path / STATE).is_file():
        return path
    found = list_checkpoints(path)
    if not found:
        raise SoftacError(f"{path} is not a softac run or checkpoint directory (no checkpoints found)")
    return found[-1]


def read_state(ckpt: Path) -> dict[str, Any]:
    try:
        text = (ckpt / STATE).read_text()
        state = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SoftacError(f"checkpoint {ckpt} has an unreadable {STATE} ({exc}); it is corrupted") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SoftacError(f"{ckpt} is not a softac checkpoint")
    if state.get("version") != VERSION:
        raise SoftacError(f"{ckpt} has checkpoint format version {state.get('version')}; this softac reads {VERSION}")
    # Why: load_agent indexes these fields directly; a damaged or hand-edited state.json that lacked
    # one crashed with a KeyError/TypeError traceback instead of one clear line (exit 2).
    required: dict[str, type | tuple[type, ...]] = {
        "algo": str, "config": dict, "files": dict, "obs_dim": int, "act_dim": int, "counters": dict,
        "buffer": dict, "optimizers": dict,
    }  # fmt: skip
    nested = {"counters": ("env_steps", "updates", "episodes"), "buffer": ("included", "size", "cursor")}
    for key, kind in required.items():
        if not isinstance(state.get(key), kind) or not all(
            isinstance(state[key].get(k), int) for k in nested.get(key, ())
        ):
            raise SoftacError(f"checkpoint {ckpt} has an incomplete {STATE} (bad or missing '{key}'); it is corrupted")
    return state


def load_agent(path: Path, device: str | None = None, expect: dict[str, Any] | None = None) -> OffPolicyAgent:
    """Rebuild an agent from a checkpoint (weights, optimizers, counters, buffer, RNG).

    ``expect`` may name ``algo``/``env_id`` the caller requires; a mismatch is a clear error.
    """
    from softac.agents import AGENTS

    ckpt = resolve_checkpoint(Path(path))
    state = read_state(ckpt)
    for key, value in (expect or {}).items():
        if value is not None and state.get(key) != value:
            raise SoftacError(f"checkpoint {ckpt} is for {key} '{state.get(key)}', not '{value}'")
    algo = state.get("algo")
    if algo not in AGENTS:
        raise SoftacError(f"checkpoint {ckpt} names an unknown algorithm {algo!r}")
    for name, digest in state["files"].items():
        verify_file(ckpt / name, digest)
    try:
        config = CONFIGS[algo].from_dict(state["config"])
    except (TypeError, ValueError) as exc:  # why: a damaged config must not end in a traceback
        raise SoftacError(f"checkpoint {ckpt} has an invalid config in {STATE}: {exc}") from None
    if device is not None:
        config = config.replace(device=device)
    agent = AGENTS[algo](config=config)
    if (agent.spec.obs_dim, agent.spec.act_dim) != (state["obs_dim"], state["act_dim"]):
        raise SoftacError(
            f"checkpoint {ckpt} was made for observations of size {state['obs_dim']} and actions of size "
            f"{state['act_dim']}, but {config.env_id} now has {agent.spec.obs_dim} and {agent.spec.act_dim}"
        )
    tensors = read_tensors(ckpt / MODEL, device="cpu")
    try:
        for name, module in agent.modules().items():
            prefix = f"net/{name}/"
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        with torch.no_grad():
            for name, t in agent.extra_tensors().items():
                t.copy_(tensors[f"extra/{name}"])
        for name, opt in agent.optimizers().items():
            opt.load_state_dict(_optimizer_join(state["optimizers"][name], f"optim/{name}", tensors))
    except (KeyError, RuntimeError, ValueError) as exc:
        raise SoftacError(f"checkpoint {ckpt} does not match a {algo} agent with this config: {exc}") from None
    counters = state["counters"]
    agent.env_steps, agent.updates, agent.episodes = counters["env_steps"], counters["updates"], counters["episodes"]
    if state["buffer"]["included"]:
        _load_buffer(agent, ckpt / BUFFER, state["buffer"])
    torch.set_rng_state(tensors["rng/torch_cpu"])
    if state.get("cuda_rng") and agent.device.type == "cuda":
        torch.cuda.set_rng_state_all([tensors[f"rng/cuda/{i}"] for i in range(state["cuda_rng"])])
    agent.resume_state = state.get("resume") or None
    agent.loaded_from = ckpt
    return agent


def _load_buffer(agent: OffPolicyAgent, path: Path, meta: dict[str, Any]) -> None:
    """Copy the stored rows into the preallocated buffer chunk by chunk (no second full copy)."""
    _refuse_foreign(path)
    buf = agent.buffer
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            rows = f.get_slice("storage")
            n, width = rows.get_shape()
            if width != buf.row or n > buf.capacity or n != meta["size"]:
                raise SoftacError(f"{path}: stored buffer of shape ({n}, {width}) does not fit this agent")
            step = max(1, _CHUNK // (4 * width))
            for start in range(0, n, step):
                stop = min(n, start + step)
                buf.storage[start:stop].copy_(rows[start:stop])
    except SoftacError:
        raise
    except Exception as exc:
        raise SoftacError(f"{path} is not a valid replay-buffer file ({exc})") from None
    buf.size = n
    buf.cursor = meta["cursor"] % buf.capacity


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints, and stale ``.tmp`` directories."""
    for old in list_checkpoints(run_dir)[:-keep]:
        # Why rename first: rmtree deletes file by file, so a kill midway left a step_* directory
        # that still had state.json but no model.safetensors, listed as a complete checkpoint that
        # does not load. The rename is atomic: the checkpoint is either whole or not listed.
        trash = old.with_name(f"{old.name}.trash-{os.getpid()}")
        old.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    ckpt_dir = run_dir / "checkpoints"
    if ckpt_dir.is_dir():
        for p in ckpt_dir.iterdir():
            if ".old-" in p.name and not (ckpt_dir / p.name.split(".old-")[0]).exists():
                p.rename(ckpt_dir / p.name.split(".old-")[0])  # a replace cut off mid-way: keep the old
            elif ".tmp-" in p.name or ".old-" in p.name or ".trash-" in p.name:
                shutil.rmtree(p, ignore_errors=True)


def step_checkpoint_path(run_dir: Path, env_steps: int) -> Path:
    return run_dir / "checkpoints" / f"step_{env_steps:010d}"
