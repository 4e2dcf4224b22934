"""How an update runs: eagerly, through ``torch.compile``, or replayed from a CUDA graph.

An algorithm's update is split in two (see ``softac.accel``): ``draw(phase)`` makes its random draws
(replay sampling, noise) from the learners' streams, ``compute(draws, phase)`` does everything
else in place and returns its metrics as tensors. ``phase`` is a small hashable that selects a
variant of the update decided on the host (TD3's delayed actor step); each variant gets its own
compiled graph or CUDA graph.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch
from torch import Tensor

from softac.accel.state import Snapshot

Draw = Callable[[Hashable], Any]
Compute = Callable[[Any, Hashable], dict[str, Tensor]]
Update = Callable[[Hashable], dict[str, Tensor]]


def warn(message: str) -> None:
    print(f"softac: warning: {message}", file=sys.stderr, flush=True)


def note_auto_compile() -> None:
    """One line when a run compiles its update because it is long, not because it was asked to
    (``BaseConfig.compiles``): the first update then takes tens of seconds, which should not look
    like a hang."""
    print("softac: compiling the update (the default for CPU runs of 50,000 updates or more: 10-40 s "
          "once, then faster steps; --no-compile-update runs it eagerly)", file=sys.stderr, flush=True)  # fmt: skip


def _own_code(method: Callable[..., Any]) -> Callable[..., Any]:
    """The (bound) function over a private copy of its code object. Dynamo keeps compiled graphs per
    code object, at most 8 (``recompile_limit``), and every agent's graph is guarded on that agent's
    own tensors: with one shared code object the ninth agent made in a process — a sweep, a test
    session — would exceed the limit, even after the first eight were freed."""
    func = method.__func__ if isinstance(method, types.MethodType) else method
    assert isinstance(func, types.FunctionType)
    code = func.__code__.replace()  # a new, equal code object: its own cache
    copy = types.FunctionType(code, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
    return types.MethodType(copy, method.__self__) if isinstance(method, types.MethodType) else copy


class Eager:
    def __init__(self, draw: Draw, compute: Compute) -> None:
        self.draw, self.compute = draw, compute

    def __call__(self, phase: Hashable) -> dict[str, Tensor]:
        return self.compute(self.draw(phase), phase)


class Compiled:
    """``compute`` under ``torch.compile`` (Inductor, static shapes); the draws stay eager so the
    random streams are the eager update's. Autograd's ``backward`` splits the function into a few
    graphs (forward graphs whose backward AOTAutograd compiled too, and the optimizer steps).

    A failure to compile — no C++ compiler on a CPU machine, an op or a torch version Inductor
    rejects — must never cost a run: the agent's tensors and streams are put back as they were
    before the failed call (a graph break means part of the update may already have run) and the
    update continues uncompiled, after one warning line."""

    def __init__(self, draw: Draw, compute: Compute, tensors: Callable[[], Sequence[Tensor]],
                 generators: Sequence[torch.Generator], options: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.draw = draw
        self.eager_compute = compute
        self.compute = torch.compile(_own_code(compute), dynamic=False, options=options)
        self.tensors, self.generators = tensors, generators
        self.ready: set[Hashable] = set()
        self.failed = False

    def __call__(self, phase: Hashable) -> dict[str, Tensor]:
        if self.failed:
            return self.eager_compute(self.draw(phase), phase)
        if phase in self.ready:
            return self.compute(self.draw(phase), phase)
        snapshot = Snapshot(self.tensors(), self.generators)
        try:
            out = self.compute(self.draw(phase), phase)
        except Exception as exc:  # whatever the compiler raised: one line, then carry on uncompiled
            snapshot.restore()
            self.failed = True
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            warn(f"torch.compile could not compile the update ({type(exc).__name__}: {first}); continuing without it")
            return self.eager_compute(self.draw(phase), phase)
        self.ready.add(phase)
        return out


class CudaGraphed:
    """The whole update — draws included — captured once per phase in a CUDA graph and replayed:
    one launch instead of hundreds of kernel launches and their Python.

    Capture needs the tensors the update touches to stay at fixed addresses (parameters, optimizer
    moments, the replay storage, its fill level — a device tensor, see ``softac.data.replay``) and
    the learners' CUDA generators registered with the graph, so each replay draws fresh numbers
    from them. Before capture the update runs a few times on a side stream (cuBLAS workspaces,
    autograd's stream bookkeeping), then every tensor and stream is put back: the warm-up must not
    count as training. Each phase gets its own memory pool, because phases are replayed in any
    order. ``inner`` is the update to capture (eager or compiled)."""

    WARMUP = 3

    def __init__(self, inner: Update, tensors: Callable[[], Sequence[Tensor]],
                 generators: Sequence[torch.Generator]) -> None:  # fmt: skip
        self.inner = inner
        self.tensors, self.generators = tensors, generators
        self.graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]] = {}

    def __call__(self, phase: Hashable) -> dict[str, Tensor]:
        if phase not in self.graphs:
            self.graphs[phase] = self._capture(phase)
        graph, out = self.graphs[phase]
        graph.replay()
        return out

    def _capture(self, phase: Hashable) -> tuple[torch.cuda.CUDAGraph, dict[str, Tensor]]:
        snapshot = Snapshot(self.tensors(), self.generators)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP):
                self.inner(phase)
        torch.cuda.current_stream().wait_stream(side)
        snapshot.restore()
        graph = torch.cuda.CUDAGraph()
        for gen in self.generators:
            graph.register_generator_state(gen)
        with torch.cuda.graph(graph):
            out = self.inner(phase)
        return graph, out


def graphs_available(device: torch.device, cuda_graph: bool) -> bool:
    """Whether updates on ``device`` are captured in CUDA graphs (configured, and possible)."""
    if device.type != "cuda" or not cuda_graph:
        return False
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        warn(f"torch {torch.__version__} cannot capture custom random generators in a CUDA graph; "
             "running the update without CUDA graphs")  # fmt: skip
        return False
    return True


def make_runners(
    draw: Draw,
    compute: Compute,
    tensors: Callable[[], Sequence[Tensor]],
    generators: Sequence[torch.Generator],
    device: torch.device,
    compile_update: bool,
    cuda_graph: bool,
) -> tuple[Update, Update]:
    """The update as configured: ``inner`` runs it (compiled or not) where it is called — inside a
    larger captured graph too — and ``outer`` is what an update on its own runs (``inner``
    captured in its own CUDA graph on CUDA, unless that is switched off)."""
    # On CUDA, Inductor's loop reordering after fusion asserted on SAC's update in torch 2.11
    # (``scheduler.reorder_loops_by_dep_pair``: ``assert isinstance(snode, SchedulerNode)``; the
    # whole traceback from an H200, 2026-12-04: docs/results/gpu/2026-12-04-compile-traceback.txt),
    # so `softac train --device cuda --compile-update` fell back to eager. That optimisation is off
    # for CUDA updates; the CPU keeps it.
    options = {"loop_ordering_after_fusion": False} if device.type == "cuda" else None
    inner: Update = Compiled(draw, compute, tensors, generators, options) if compile_update else Eager(draw, compute)
    if graphs_available(device, cuda_graph):
        return inner, CudaGraphed(inner, tensors, generators)
    return inner, inner
