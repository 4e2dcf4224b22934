"""The off-policy family's step: collect one transition per environment → replay buffer → the
updates owed (update-to-data ratio). The shell (``softac.train.shell``) calls it until the budget
is spent and does everything else (logging, evaluation, checkpoints, signals, divergence).

On CUDA (with ``cuda_graph``) a step's device work — storing the transitions, the updates and the
next behaviour action — replays as one graph (``softac.accel.step_graph``) whenever it can; the
action it computes is the one the next step acts with, exactly as if it were computed then."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from softac.accel.runner import graphs_available
from softac.accel.step_graph import StepGraph
from softac.protocols import OffPolicyLike
from softac.train.common import StepResult, check_actions, make_collector


class OffPolicyStep:
    def __init__(self, agent: OffPolicyLike, resume: list[dict[str, Any]] | None) -> None:
        cfg = agent.config
        self.agent = agent
        self.envs, self.owns_envs, self.collector = make_collector(agent, resume)
        agent.cut_episodes()  # a new collector starts new episodes (n-step tails of old ones end)
        # The step graph computes the next action from the raw next observation; with normalize_obs
        # the statistics must first take it in on the host, so only the update is captured then.
        # n-step returns are assembled on the host (softac.data.nstep): the plain path, too.
        # Prioritized replay updates its priorities after each update, on the plain path too.
        # Hindsight relabelling samples on the host (softac.data.her): the plain path, too.
        # A user's encoder (softac.nn.encoder) updates eagerly, without graphs (OffPolicyAgent._runners).
        graphed = (graphs_available(agent.device, cfg.cuda_graph) and not cfg.normalize_obs and cfg.n_step == 1
                   and not agent.buffer.prioritized and not agent.buffer.relabels
                   and getattr(agent, "encoder", None) is None)  # fmt: skip
        self.graph = StepGraph(agent, cfg.n_envs) if graphed else None
        self.next_action: np.ndarray | None = None  # computed by the step graph for the next step

    def _graphable(self, ok: np.ndarray, due: int) -> bool:
        """The step graph serves this step when the next action is the policy's (past warm-up), no
        episode ended (the next observation is the transition's own), every transition was kept,
        the learners' buffers are aligned, and at most four updates are owed (UTD ≤ 4: one graph
        per tuple of update variants)."""
        agent = self.agent
        return (
            self.graph is not None
            and agent.env_steps >= agent.config.learning_starts
            and not self.collector.needs_reset.any()
            and bool(ok.all())
            and agent.buffer.aligned()
            and due <= 4
        )

    def __call__(self) -> StepResult:
        agent = self.agent
        before = agent.env_steps
        obs = self.collector.observe(before)
        action = self.next_action if self.next_action is not None else agent.explore(obs)
        self.next_action = None
        check_actions(agent, action, before)
        tr = self.collector.step(action, before)
        agent.env_steps += agent.config.n_envs
        due = agent.updates_due()
        metrics: dict[str, Tensor] = {}
        if self.graph is not None and self._graphable(tr.ok, due):
            rows = agent.buffer.rows(tr.obs, tr.action, tr.reward, tr.terminated, tr.next_obs)
            phases = tuple(agent.update_phase(agent.updates + i) for i in range(due))
            self.next_action, metrics = self.graph(rows, phases)
        else:
            agent.add_transitions(tr)
            for _ in range(due):
                metrics = agent.update()
        return StepResult(tr.episode_returns, tr.episode_lengths, metrics, tr.episode_successes)

    def state(self, k: int) -> dict[str, Any]:
        return {"collector": self.collector.state(k)}

    def close(self) -> None:
        if self.owns_envs:  # the user's own vector env is theirs to close
            self.envs.close()
