"""The on-policy family's step: one rollout — ``n_steps`` steps of every learner's ``n_envs``
environments — then the agent's update on it. The shell (``softac.train.shell``) calls it until
the budget is spent and does everything else (logging, evaluation, checkpoints, signals,
divergence).

``env_steps`` advances by n_steps × n_envs per call, so the shell's cadences (log, evaluation,
checkpoint) fall between rollouts: a checkpoint never holds half a rollout, and a run that
stops at one continues with the next rollout exactly (bit-identical when the boundary is also
an episode boundary for every environment, see ``softac.collector``). A run ends at the first
rollout boundary at or past ``total_steps``, as SB3's does.
"""

from __future__ import annotations

from typing import Any

from softac.protocols import OnPolicyLike
from softac.train.common import StepResult, check_actions, make_collector


class OnPolicyStep:
    def __init__(self, agent: OnPolicyLike, resume: list[dict[str, Any]] | None) -> None:
        self.agent = agent
        self.envs, self.owns_envs, self.collector = make_collector(agent, resume)

    def __call__(self) -> StepResult:
        agent, collector = self.agent, self.collector
        lead = (agent.learners, agent.config.n_envs)
        result = StepResult([[] for _ in range(agent.learners)], [[] for _ in range(agent.learners)],
                            episode_successes=[[] for _ in range(agent.learners)])  # fmt: skip
        for t in range(agent.config.n_steps):
            starts = collector.needs_reset.reshape(lead).copy()  # the envs whose next episode begins now
            obs = collector.observe(agent.env_steps)
            action = agent.rollout_act(t, obs, starts)
            check_actions(agent, action, agent.env_steps)
            tr = collector.step(action, agent.env_steps)
            agent.env_steps += agent.config.n_envs
            # Terminated, truncated, or dropped as non-finite: the collector decided it, once.
            agent.rollout_record(t, tr, collector.needs_reset.reshape(lead))
            for k in range(agent.learners):
                result.episode_returns[k] += tr.episode_returns[k]
                result.episode_lengths[k] += tr.episode_lengths[k]
                result.episode_successes[k] += tr.episode_successes[k]
        result.metrics = agent.update()
        return result

    def final_step(self, total_steps: int) -> int:
        """The step the run ends at: the first rollout boundary at or past ``total_steps``."""
        rollout = self.agent.config.n_steps * self.agent.config.n_envs
        start = self.agent.env_steps
        return start + max(0, -(-(total_steps - start) // rollout)) * rollout

    def state(self, k: int) -> dict[str, Any]:
        return {"collector": self.collector.state(k)}

    def close(self) -> None:
        if self.owns_envs:  # the user's own vector env is theirs to close
            self.envs.close()
