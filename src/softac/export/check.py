"""The written file, run by the runtime a deployment uses, against ``predict(obs, deterministic=True)``
before the file is kept: an export that differs from the library's policy is refused, never written.

Why a check at export time as well as the tests: the tests cover every configuration softac trains
today; this covers the one added tomorrow (a new layer, an observation transform, an action
mapping) whose step the deployed module might not yet take. A missing step changes actions by
whole units (the observation normaliser left out moved an action from 0.0097 to 0.3726); float32
rounding moves them by < 10⁻⁶ of the action range.

Tolerances. Box: |exported − predict| ≤ 10⁻⁵ · (high − low)/2 per dimension. Both sides compute the
same float32 network; they differ only in the order of each dot product's additions (numpy's or
torch's matmul against ONNX Runtime's): at most 8.8·10⁻⁷ of the half-range measured with the
default 256-wide networks on HalfCheetah (SAC, TD3, CrossQ, SimBa, PPO), 0 for TorchScript. The
normalisation and the action mapping are float64 on both sides. Discrete: the same integer, except
on a row whose best two Q values (or logits) lie within 10⁻⁵ of each other, where that rounding may
pick either.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softac.errors import SoftacError
from softac.export.policy import DeployedPolicy, probe_observations
from softac.protocols import AgentLike

BOX_TOLERANCE = 1e-5  # of each dimension's half-range (high − low)/2
TIE_GAP = 1e-5  # best two values closer than this (relative to 1 + |best|): either argmax is right


def reference_actions(agent: AgentLike, k: int, obs: np.ndarray) -> np.ndarray:
    """Learner k's ``predict(obs, deterministic=True)``: for a batched agent (whose ``predict`` acts
    for one learner only) the same steps, ``act`` then ``to_env`` and the float32 cast."""
    model: Any = agent
    if agent.learners == 1:
        return np.asarray(model.predict(obs, deterministic=True)[0])
    batch = np.ascontiguousarray(np.broadcast_to(obs, (agent.learners, *obs.shape)))
    action = np.asarray(agent.to_env(agent.act(batch, deterministic=True)[k]))
    return action.astype(np.float32) if agent.spec.action_kind == "Box" else action


def load_jit(path: Path) -> Any:
    """``torch.jit.load``, deprecated in torch ≥ 2.9 (in favour of torch.export) but what a deployment
    without Python's softac loads TorchScript with; the warning is not the user's to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu")


def run_file(path: Path, fmt: str, obs: np.ndarray) -> np.ndarray:
    """The exported file's actions for ``obs``, computed by ONNX Runtime or TorchScript."""
    if fmt == "onnx":
        import onnxruntime  # an optional extra; ``softac.export`` checked it is installed

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(["action"], {"observation": obs})[0])
    with torch.no_grad():
        return np.asarray(load_jit(path)(torch.from_numpy(obs)).numpy())


def mismatch(module: DeployedPolicy, agent: AgentLike, obs: np.ndarray, got: np.ndarray, expected: np.ndarray) -> str:
    """'' if ``got`` equals ``expected`` within the tolerances above, else what differs."""
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return f"gives {got.dtype} actions of shape {got.shape} where predict gives {expected.dtype} {expected.shape}"
    if agent.spec.action_kind == "Box":
        half_range = 0.5 * (agent.spec.action_high - agent.spec.action_low)
        excess = np.abs(got.astype(np.float64) - expected) / (BOX_TOLERANCE * half_range)
        if (excess > 1).any():
            row = int(np.argmax(excess.max(axis=-1)))
            return f"gives {got[row]} where predict gives {expected[row]}"
        return ""
    differ = np.flatnonzero(got != expected)
    if differ.size:
        with torch.no_grad():
            best = module.network_output(torch.from_numpy(obs[differ])).topk(2, dim=-1).values.double()
        gap = (best[:, 0] - best[:, 1]) / (1.0 + best[:, 0].abs())
        ties = (gap <= TIE_GAP).numpy()
        if not ties.all():
            row = int(differ[np.argmin(ties)])
            return f"gives action {got[row]} where predict gives {expected[row]}"
    return ""


def check_file(module: DeployedPolicy, agent: AgentLike, k: int, path: Path, fmt: str) -> None:
    """Raise :class:`SoftacError` unless the file at ``path`` acts as ``predict`` on probe observations
    (a batch, and one observation alone: the batch size is free)."""
    obs = probe_observations(agent, k)
    expected = reference_actions(agent, k, obs)
    for rows in (obs, obs[:1]):
        try:
            got = run_file(path, fmt, rows)
        except Exception as exc:  # ONNX Runtime's errors derive from Exception alone
            runtime = "ONNX Runtime" if fmt == "onnx" else "TorchScript"
            raise SoftacError(f"refusing to write the {fmt} export of this {agent.algo} policy: {runtime} cannot run "
                              f"it ({str(exc).strip().splitlines()[0]})") from None  # fmt: skip
        problem = mismatch(module, agent, rows, got, expected[: len(rows)])
        if problem:
            raise SoftacError(f"refusing to write the {fmt} export of this {agent.algo} policy: the file {problem}; "
                              "please report the configuration")  # fmt: skip
