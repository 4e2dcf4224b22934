"""Policy export for deployment without softac: ONNX or TorchScript.

The exported function is the *deterministic* policy in the environment's units, exactly what
``predict(obs, deterministic=True)`` returns:

    x = clip((obs − mean) / √(var + ε), −c, c)        only if the agent normalises observations
    y = f_θ(x)                                        the policy's MLP (learner k of its batched trunk)
    a = head(y)                                       tanh(μ) for SAC, tanh(f(s)) for TD3/DDPG: in [−1, 1]
    action = clip(low + (a + 1)(high − low)/2, low, high)

The head is the policy's own ``head(xp, out, noise=None)``, the function acting uses, so the file
cannot drift from the library. Input ``observation`` (batch, obs_dim) float32, output ``action``
(batch, act_dim) float32; the batch size is dynamic.

Observation normalisation slots in through :class:`NormaliserStats`: an agent that normalises its
observations returns its statistics from ``observation_normaliser(k)`` (the base agent returns
None), and the exported module applies them before the MLP.
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from softac.errors import SoftacError, WriteError
from softac.protocols import AgentLike

FORMATS = ("onnx", "torchscript")


@dataclass(frozen=True)
class NormaliserStats:
    """What an observation normaliser applies at acting time: (obs − mean)/√(var + eps), clipped
    to [−clip, clip]; ``mean`` and ``var`` of shape (obs_dim,)."""

    mean: Tensor
    var: Tensor
    clip: float
    eps: float = 1e-8


class DeployedPolicy(nn.Module):
    """One learner's deterministic policy as a plain module: buffers only, no learner axis."""

    def __init__(
        self,
        weights: list[Tensor],
        biases: list[Tensor],
        head: Callable[[Any, Any, Any], Any],
        low: np.ndarray,
        high: np.ndarray,
        normaliser: NormaliserStats | None = None,
    ) -> None:
        super().__init__()
        self.layers = len(weights)
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            self.register_buffer(f"w{i}", w.detach().to("cpu", torch.float32).clone())
            self.register_buffer(f"b{i}", b.detach().to("cpu", torch.float32).reshape(-1).clone())
        self.head = head  # a plain function of (xp, out, noise): no parameters of its own
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.normalise = normaliser is not None
        if normaliser is not None:
            self.register_buffer("mean", normaliser.mean.detach().to("cpu", torch.float32).clone())
            var = normaliser.var.detach().to("cpu", torch.float32)
            self.register_buffer("inv_std", torch.rsqrt(var + normaliser.eps))
            self.clip = float(normaliser.clip)

    def forward(self, observation: Tensor) -> Tensor:
        x = observation
        if self.normalise:
            x = torch.clamp((x - self.get_buffer("mean")) * self.get_buffer("inv_std"), -self.clip, self.clip)
        for i in range(self.layers):
            x = x @ getattr(self, f"w{i}") + getattr(self, f"b{i}")
            if i < self.layers - 1:
                x = torch.relu(x)
        unit = self.head(torch, x, None)
        low, high = self.get_buffer("low"), self.get_buffer("high")
        action = low + (unit + 1.0) * (0.5 * (high - low))
        return torch.minimum(torch.maximum(action, low), high)


def deployed_policy(agent: AgentLike, k: int = 0) -> DeployedPolicy:
    """Learner k's deterministic policy, detached from the agent (a copy of its weights)."""
    policy = getattr(agent, "policy", None)
    trunk = getattr(policy, "trunk", None)
    if policy is None or trunk is None:
        raise SoftacError(f"{agent.algo} has no exportable policy network")
    if not getattr(trunk, "plain_relu", True):
        raise SoftacError(f"exporting a policy with {trunk.norm} normalisation layers is not supported yet")
    members = trunk.groups // agent.learners
    if members != 1:
        raise SoftacError(f"the {agent.algo} policy holds {members} networks per learner; export takes one")
    weights = [w[k] for w in trunk.weights]
    biases = [b[k] for b in trunk.biases]
    get_stats = getattr(agent, "observation_normaliser", None)
    stats = get_stats(k) if get_stats is not None else None
    spec = agent.spec
    return DeployedPolicy(weights, biases, policy.head, spec.action_low, spec.action_high, stats)


def _target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise SoftacError(f"--out {path} is a directory; give a file name (e.g. {path / 'policy.onnx'})")
    # Why: --overwrite replaced /dev/full (a device node) with a file. Only a regular file (not
    # a device, FIFO, socket, nor a symlink to one) is ever replaced.
    if (path.exists() or path.is_symlink()) and (path.is_symlink() or not stat.S_ISREG(path.stat().st_mode)):
        raise SoftacError(f"--out {path} exists and is not a regular file; export writes only regular files")
    if path.exists() and not overwrite:
        raise SoftacError(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    if not path.parent.is_dir():
        raise SoftacError(f"the directory of --out {path} does not exist")
    if not os.access(path.parent, os.W_OK):  # a read-only mount: refused before the export is built
        raise SoftacError(f"the directory of --out {path} is not writable")


def export_policy(agent: AgentLike, path: Path, fmt: str, k: int = 0, overwrite: bool = False) -> Path:
    """Write learner k's deterministic policy to ``path`` (atomically: a temporary file renamed)."""
    if fmt not in FORMATS:
        raise SoftacError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    path = Path(path)
    _target(path, overwrite)
    module = deployed_policy(agent, k).eval()
    example = torch.zeros((2, agent.spec.obs_dim), dtype=torch.float32)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if fmt == "onnx":
            _onnx(module, example, tmp)
        else:
            # Why trace: the module is straight-line tensor code (the head is a Python function of
            # the array namespace, which ``script`` cannot compile). torch ≥ 2.9 marks torch.jit as
            # deprecated in favour of torch.export; the file still loads with ``torch.jit.load``
            # in any torch, with no Python, which is what deployment needs. The warning is not the
            # user's to act on, so it is silenced here; the README says so.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(module, example)
                traced.save(str(tmp))
        tmp.replace(path)
    except (OSError, RuntimeError) as exc:  # torch.jit's save raises RuntimeError for I/O errors
        tmp.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {getattr(exc, 'strerror', None) or str(exc).splitlines()[0]}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _onnx(module: nn.Module, example: Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (imported here: an optional extra, only this format needs it)
        import onnxscript  # noqa: F401
    except ImportError:
        raise SoftacError("ONNX export needs the onnx and onnxscript packages: pip install 'softac[export]'") from None
    # The exporter logs and warns about things irrelevant here (torchvision ops, training mode).
    # ``external_data=False``: the weights go inside the one file. With torch's default they went to
    # a side file named after the temporary file (``.NAME.tmp-PID.data``), which the renamed
    # ``.onnx`` then pointed to: moved elsewhere, it failed to load. A policy MLP is far
    # below protobuf's 2 GB limit, the only reason for external data.
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
    finally:
        quiet.setLevel(level)
