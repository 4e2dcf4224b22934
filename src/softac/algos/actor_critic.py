"""What SAC, TD3 and DDPG share: an ensemble of critics Q_φj(s, a), its Polyak-averaged target,
its optimizer and its loss (importance-weighted with prioritized replay). Each algorithm adds its
actor and its target y."""

from __future__ import annotations

from torch import Tensor

from softac.algos.offpolicy import OffPolicyAgent
from softac.config import ActorCriticConfig
from softac.data.replay import Batch
from softac.losses import common
from softac.nn import CriticEnsemble
from softac.optim import adam, frozen_copy


class ActorCriticAgent(OffPolicyAgent):
    config: ActorCriticConfig

    def _build_critics(self) -> None:
        """The critics (initialised from the learners' streams after the actor, as every
        algorithm here orders its draws), their target and their optimizer."""
        cfg, spec = self.config, self.spec
        self.critic = CriticEnsemble(self.learners, cfg.n_critics, spec.obs_dim + spec.act_dim, cfg.hidden_sizes,
                                     cfg.critic_layer_norm, cfg.simba("critic"))  # fmt: skip
        self.critic.net.reset_parameters(self.rng.host, members=cfg.n_critics)
        self.critic.to(self.device)
        self.critic_target = frozen_copy(self.critic)
        self.critic_opt = adam(self.critic.net.params(), cfg.critic_lr, self.device)

    def _critic_loss(self, params: list[Tensor], batch: Batch, y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Σ_j E[(Q_φj(s, a) − y)²] as a function of the critics' parameters φ."""
        q = self.critic(batch.obs_act, params=params)
        loss = common.critic_loss(q, y, batch.weight)  # weighted by w with prioritized replay
        metrics = {"loss/critic": loss.detach(), "q/mean": q.detach().mean(dim=(-2, -1))}
        if batch.weight is not None:  # the new priorities' |δ|, taken off by OffPolicyAgent.update
            metrics["per/td"] = common.td_priority(q.detach(), y)
        return loss, metrics
