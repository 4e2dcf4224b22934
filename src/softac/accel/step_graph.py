"""One off-policy environment step's device work as one CUDA graph: store the step's transitions,
run the updates owed, compute the next behaviour action.

Why: on a GPU the update itself is fast (a captured SAC update replays in ≈0.4 ms), and what a
training step costs beyond it is launches, host↔device copies and the host waiting for each
of them: the action is needed on the host right after the update. Here the host writes the
step's transition rows into pinned memory, replays one graph — copy the rows in, append them to
the replay buffer at the device's own write position, the updates (each with its replay sample
and noise from the learners' generators), the actor on the new observations, the action copied
out — and waits once. The result is the eager loop's: the same rows, the same updates in the
same order, the same draws from the same streams (``tests/test_accel.py`` checks the eager body
against the plain loop on the CPU, and the captured graph against it on CUDA).

It only runs when the next observation is the one the transition ends in (no environment
finished its episode this step: a reset must happen on the host first) and every learner kept
its transition; otherwise the trainer takes the plain path for that step.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from softac.accel.state import Snapshot


class StepGraph:
    WARMUP = 3

    def __init__(self, agent: Any, rows_per_learner: int, capture: bool = True) -> None:
        self.agent = agent
        buf = agent.buffer
        self.n = rows_per_learner
        shape = (agent.learners, rows_per_learner, buf.row)
        pinned = capture and torch.cuda.is_available()
        self.h_rows = torch.empty(shape, pin_memory=pinned)
        self.h_action = torch.empty((agent.learners, rows_per_learner, agent.spec.act_dim), pin_memory=pinned)
        self.d_rows = torch.empty(shape, device=agent.device)
        self.capture = capture
        self.graphs: dict[Hashable, tuple[Any, dict[str, Tensor]]] = {}

    def _body(self, phases: tuple[Hashable, ...]) -> dict[str, Tensor]:
        agent, buf = self.agent, self.agent.buffer
        self.d_rows.copy_(self.h_rows, non_blocking=True)
        buf.append_device(self.d_rows)
        metrics: dict[str, Tensor] = {}
        for phase in phases:
            metrics = agent.run_update(phase)
        next_obs = self.d_rows[..., buf.obs_dim + buf.act_dim + 2 :]
        with torch.no_grad():
            noise = agent._exploration_noise(self.n)
            trunk = agent.policy.trunk
            action = agent.policy.head(torch, trunk(next_obs), noise)
        self.h_action.copy_(action, non_blocking=True)
        return metrics

    def _tensors(self) -> list[Tensor]:
        """What a warm-up run changes: the agent's learned state, the buffer's counters and the
        rows the warm-up appends (the buffer may be full, so they can hold older data)."""
        buf = self.agent.buffer
        self._rows_idx = (torch.arange(self.WARMUP * self.n, device=buf.device) + buf.cursor_t) % buf.capacity
        self._saved_rows = buf.storage.index_select(1, self._rows_idx)
        return [*self.agent.mutable_tensors(), buf.size_t, buf.cursor_t]

    def _capture(self, phases: tuple[Hashable, ...]) -> tuple[Any, dict[str, Tensor]]:
        buf = self.agent.buffer
        snapshot = Snapshot(self._tensors(), self.agent.rng.dev)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP):
                self._body(phases)
        torch.cuda.current_stream().wait_stream(side)
        snapshot.restore()
        buf.storage.index_copy_(1, self._rows_idx, self._saved_rows)
        graph = torch.cuda.CUDAGraph()
        for gen in self.agent.rng.dev:
            graph.register_generator_state(gen)
        with torch.cuda.graph(graph):
            out = self._body(phases)
        return graph, out

    def __call__(self, rows: np.ndarray, phases: tuple[Hashable, ...]) -> tuple[np.ndarray, dict[str, Tensor]]:
        """Store ``rows`` (L, n, row), run the updates ``phases`` name, return the next action
        (L, n, act_dim) for the observations the rows end in, and the last update's metrics."""
        self.h_rows.numpy()[:] = rows
        self.agent.prepare_explore(self.agent.env_steps)  # the next action is for this step count
        if not self.capture:  # the same body, eagerly (the CPU tests check it against the plain loop)
            metrics = self._body(phases)
        else:
            if phases not in self.graphs:
                self.graphs[phases] = self._capture(phases)
            graph, metrics = self.graphs[phases]
            graph.replay()
            torch.cuda.current_stream().synchronize()
        self.agent.buffer.commit_host(self.n)
        self.agent.updates += len(phases)
        return self.h_action.numpy().copy(), metrics
