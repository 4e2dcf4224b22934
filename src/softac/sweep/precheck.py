"""What `softac train` refuses at once, refused by `softac sweep` before Ray starts (
``--algo dqn --env Pendulum-v1`` or ``--grid buffer_size=1e12`` started Ray and failed inside
each trial): every trial's agent is built here as the trial will build it, and SIGTERM ends the
sweep with one line."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import torch

from softac import registry
from softac.errors import SoftacError
from softac.sweep.spec import SweepSpec, space_bounds


class SweepTerminated(KeyboardInterrupt):
    """SIGTERM arrived: raised in the main thread so that Ray Tune unwinds as for Ctrl-C (its
    trials keep their checkpoints; ``--resume`` continues the sweep)."""


_received: list[int] = []  # the SIGTERMs this process received


def _terminate(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise SweepTerminated


def terminated(exc: BaseException) -> bool:
    """The KeyboardInterrupt came from SIGTERM. Why a record and not only the type: Ray Tune may
    catch the exception and raise a plain KeyboardInterrupt of its own in its place."""
    return isinstance(exc, SweepTerminated) or bool(_received)


def catch_sigterm() -> Any:
    """SIGTERM → :class:`SweepTerminated` (returns the previous handler). Again after ``ray.init``,
    whose own handler calls ``sys.exit(15)`` (it exited 1 with Ray's stack dump)."""
    return signal.signal(signal.SIGTERM, _terminate)


def trial_settings(spec: SweepSpec) -> list[tuple[str, dict[str, Any]]]:
    """(where, values) of every distinct setting a trial can start with: the grid's settings, or the
    ends (or choices) of each searched field."""
    if spec.search is None:
        return [(f"setting {label}", values) for label, values in spec.settings()]
    return [
        (f"--space {name}={text}", {name: value})
        for name, text in spec.search["space"].items()
        for value in space_bounds(spec.algo, name, text)
    ]


def precheck(spec: SweepSpec, local: bool) -> None:
    """Build each (environment, setting)'s agent as ``softac.sweep.trial.run_one`` does (the seed
    does not change what is refused). Only for a sweep on this machine (``local``): a cluster's
    machines may have other memory and GPUs, so there only the machine-independent checks of
    ``SweepSpec.validate`` apply."""
    if not local:
        return
    if spec.gpus_per_trial > 0 and not torch.cuda.is_available():  # Ray waited for ever for a GPU
        raise SoftacError("--gpus-per-trial asks for a GPU, but this machine has none: use --gpus-per-trial 0")
    agent_cls = registry.get(spec.algo).agent_cls
    given = spec.given_values()
    for where, values in trial_settings(spec):
        for env_id in spec.envs:
            try:
                agent_cls(env_id, preset=spec.preset, **{**given, **values, "seed": spec.seeds[0]})
            except SoftacError as exc:
                raise SoftacError(f"{env_id}, {where}: {exc}") from None
