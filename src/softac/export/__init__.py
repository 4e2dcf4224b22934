"""Policy export for deployment without softac: ONNX (run with ONNX Runtime) or TorchScript.

The file computes exactly what ``predict(obs, deterministic=True)`` returns, in the environment's
action units (``softac.export.policy`` lists the steps): input ``observation`` (batch, obs_dim)
float32; output ``action`` (batch, act_dim) float32 for a Box action space, (batch,) int64 (the
environment's integers, ``start`` included) for a Discrete one; the batch size is free. Before the
file is kept it is run by its runtime against ``predict`` (``softac.export.check``); a file that
differs is refused, never written.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from softac.errors import SoftacError, WriteError
from softac.export.check import check_file
from softac.export.policy import DeployedPolicy, deployed_policy
from softac.protocols import AgentLike

__all__ = ["FORMATS", "DeployedPolicy", "deployed_policy", "export_policy", "signature"]

FORMATS = ("onnx", "torchscript")


def signature(agent: AgentLike) -> str:
    """The exported function's input and output, in words (what ``softac export`` prints)."""
    out = "(batch,) int64" if agent.spec.action_kind == "Discrete" else f"(batch, {agent.spec.act_dim}) float32"
    return f"input 'observation' (batch, {agent.spec.obs_dim}) float32 → output 'action' {out}"


def _target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise SoftacError(f"--out {path} is a directory; give a file name (e.g. {path / 'policy.onnx'})")
    # Only a regular file (not a device such as /dev/full, a FIFO, a socket, nor a symlink to one) is
    # ever replaced: --overwrite once replaced a device node with a file.
    if (path.exists() or path.is_symlink()) and (path.is_symlink() or not stat.S_ISREG(path.stat().st_mode)):
        raise SoftacError(f"--out {path} exists and is not a regular file; export writes only regular files")
    if path.exists() and not overwrite:
        raise SoftacError(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    if not path.parent.is_dir():
        raise SoftacError(f"the directory of --out {path} does not exist")
    if not os.access(path.parent, os.W_OK):  # a read-only mount: refused before the export is built
        raise SoftacError(f"the directory of --out {path} is not writable")


def _exactly_reproducible(agent: AgentLike) -> None:
    """The configurations whose ``predict`` a float32 file cannot reproduce, refused up front."""
    if agent.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        raise SoftacError(
            "this agent's predict multiplies in TF32 on the GPU (--tf32), which a float32 export does not "
            "reproduce: export the run from its checkpoint (softac export RUN, or load it with device='cpu')"
        )


def export_policy(agent: AgentLike, path: Path | str, fmt: str, k: int = 0, overwrite: bool = False) -> Path:
    """Write learner k's deterministic policy to ``path`` (atomically: a temporary file, checked
    against ``predict`` and then renamed)."""
    if fmt not in FORMATS:
        raise SoftacError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        _onnx_packages()
    path = Path(path)
    _target(path, overwrite)
    _exactly_reproducible(agent)
    module = deployed_policy(agent, k)
    example = torch.zeros((2, agent.spec.obs_dim), dtype=torch.float32)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with torch.no_grad():
            if fmt == "onnx":
                _onnx(module, example, tmp)
            else:
                _torchscript(module, example, tmp)
        check_file(module, agent, k, tmp, fmt)
        tmp.replace(path)
    except (OSError, RuntimeError) as exc:  # torch.jit's save raises RuntimeError for I/O errors
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {getattr(exc, 'strerror', None) or str(exc).splitlines()[0]}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _torchscript(module: nn.Module, example: Tensor, path: Path) -> None:
    # Why trace: the module is straight-line tensor code (the heads are Python functions of the array
    # namespace, which ``script`` cannot compile). torch ≥ 2.9 marks torch.jit as deprecated in favour
    # of torch.export; the file still loads with ``torch.jit.load`` in any torch, with no Python,
    # which is what deployment needs. The warning is not the user's to act on, so it is silenced, as
    # are the tracer's notes that shape checks become constants (they depend on obs_dim alone).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.jit.trace(module, example, check_trace=False).save(str(path))


def _onnx_packages() -> None:
    try:
        import onnx  # noqa: F401  (imported here: an optional extra, only this format needs it)
        import onnxruntime  # noqa: F401  (runs the file against predict before it is kept)
        import onnxscript  # noqa: F401
    except ImportError:
        raise SoftacError(
            "ONNX export needs the onnx, onnxscript and onnxruntime packages: pip install 'softac[export]'"
        ) from None


def _onnx(module: nn.Module, example: Tensor, path: Path) -> None:
    # The exporter logs and warns about things irrelevant here (torchvision ops, training mode).
    # ``external_data=False``: the weights go inside the one file. With torch's default they went to
    # a side file named after the temporary file (``.NAME.tmp-PID.data``), which the renamed ``.onnx``
    # then pointed to: moved elsewhere, it failed to load. A policy network is far below protobuf's
    # 2 GB limit, the only reason for external data.
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (example,), str(path), input_names=["observation"], output_names=["action"],
                dynamic_shapes={"observation": {0: torch.export.Dim("batch")}}, dynamo=True, verbose=False,
                external_data=False,
            )  # fmt: skip
    except torch.onnx.errors.OnnxExporterError as exc:  # a RuntimeError, not an I/O error: said as what it is
        raise SoftacError(f"cannot export this policy to ONNX: {str(exc).strip().splitlines()[0]}") from None
    finally:
        quiet.setLevel(level)
