"""Safe files: streamed safetensors writing with a checksum, validated reading, atomic JSON.

Nothing is ever unpickled: tensors are read by ``safetensors`` (a header of JSON and raw bytes) and
everything else by ``json``. A pickle (e.g. a ``torch.save`` file) put in place of a softac file is
recognised and refused with a clear error, never loaded. Every write goes to a temporary name,
is flushed and fsync'ed, then renamed into place, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import Tensor

from softac.errors import SoftacError, WriteError

_CHUNK = 16 * 1024 * 1024

DTYPE_NAMES = _DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def refuse_foreign(path: Path) -> None:
    """Name the common wrong files (pickles, torch.save zips) and a truncated file before the generic
    parse error."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    # Why the safetensors shape first: a safetensors file starts with its header length as a
    # little-endian u64, so a header of 128 mod 256 bytes starts with 0x80 like a pickle (e.g. every
    # DDPG checkpoint on Pendulum with 64×64 networks). A pickle's second byte is its protocol (2-5)
    # and a FRAME opcode follows, never seven bytes of a length and then '{'. Nothing is unpickled
    # either way: this only picks the error message.
    if len(head) == 9 and head[8:9] == b"{":
        if 8 + struct.unpack("<Q", head[:8])[0] <= size:
            return
        raise SoftacError(
            f"{path} is truncated or damaged: its safetensors header says it holds more bytes than the file's "
            f"{size} (an interrupted copy or a full disk?); use an earlier checkpoint or copy it again"
        )
    if size < 9 and not head.startswith(b"PK"):
        raise SoftacError(
            f"{path} is truncated or damaged ({size} bytes, shorter than any safetensors file); use an earlier "
            "checkpoint or copy it again"
        )
    if (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) or head[:2] == b"PK":
        raise SoftacError(
            f"{path} is a pickle/torch.save file, not a softac checkpoint; softac never unpickles "
            "files (it could run arbitrary code)"
        )


def verify_file(path: Path, expected_sha256: str) -> None:
    if not path.exists() and not path.is_symlink():
        raise SoftacError(f"checkpoint file {path} is missing")
    if path.is_symlink() or not path.is_file():  # a FIFO or a link to /dev/zero was "missing"
        raise SoftacError(f"checkpoint file {path} is not a regular file (a link, device or FIFO); it is refused")
    refuse_foreign(path)
    if sha256_file(path) != expected_sha256:
        end, size = _declared_end(path), path.stat().st_size
        if end is not None and end > size:
            raise SoftacError(
                f"checkpoint file {path} is truncated: its header describes {end} bytes, the file has {size} "
                "(an interrupted copy or a full disk?); use an earlier checkpoint or copy it again"
            )
        raise SoftacError(f"checkpoint file {path} is corrupted or truncated (checksum mismatch)")


def _declared_end(path: Path) -> int | None:
    """The byte count a safetensors file's header describes (header + the last tensor's end), or
    None when the header cannot be read: only to tell a truncated file from an altered one."""
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 100 * 1024 * 1024:
                return None
            header = loads_json(f.read(length).decode())
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        return 8 + length + max(ends, default=0)
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error):
        return None


def read_tensors(path: Path, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    refuse_foreign(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            return {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises several types for malformed files
        if "incomplete" in str(exc).lower() or "out of bounds" in str(exc).lower():
            raise SoftacError(f"{path} is truncated or damaged ({exc}); use an earlier checkpoint") from None
        raise SoftacError(f"{path} is not a valid safetensors file ({exc})") from None


def loads_json(text: str) -> Any:
    """``json.loads`` that answers deeply nested input (``[[[[...``) with a JSONDecodeError like any
    other malformed JSON, not a RecursionError traceback: every reader of a file or flag
    goes through here."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text[:64], 0) from None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """``path`` replaced by ``data`` as JSON, atomically; on an OSError (disk full, read-only, ...) the
    temporary file is removed and the error is one line naming the file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
