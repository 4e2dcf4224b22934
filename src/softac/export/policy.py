"""One learner's deterministic policy as a plain ``nn.Module``: every step ``predict`` takes between
an observation and the environment's action, made of the library's own parts.

    x = clip((o − μ) / √(σ² + ε), −c, c)    observation normalisation (float64, as the normaliser)
    y = f_θ(x)                              the policy network: the agent's own trunk, learner k's slice
    a = head(y)                             tanh(μ), tanh(f), clip(μ, −1, 1), or argmax as an index
    action = clip(low + (a + 1)(high − low)/2, low, high)  in float64, cast to float32   (Box)
    action = start + round(a)                                as int64                    (Discrete)

Why the library's modules and functions rather than a re-implementation: the first export wrote its
own Linear/ReLU loop and forgot the normaliser; a copy of each step drifts the day the library adds
one (a batch-norm layer, a SimBa block, an action offset). Here the network is a copy of the
agent's trunk (``BatchedMLP`` or ``BatchedSimba``, batch (re)normalisation in evaluation mode, as
acting uses it), the head is the policy's own acting head, the normaliser is the agent's own class
and the action mapping reads the agent's own mapper. ``softac.export.check`` then runs the written
file against ``predict`` before it is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from softac.data.normaliser import ObservationNormaliser
from softac.distributions import categorical_mode, clip_action
from softac.envs import ActionScaler, DiscreteActions
from softac.errors import SoftacError
from softac.protocols import AgentLike

Head = Callable[[Any, Any, Any], Any]


def _box_mean(xp: Any, out: Tensor, noise: Any) -> Tensor:
    """The on-policy agents' deterministic Box action: clip(μ, −1, 1) (``OnPolicyAgent.act``)."""
    return clip_action(out)


def _categorical_index(xp: Any, out: Tensor, noise: Any) -> Tensor:
    """The on-policy agents' deterministic Discrete action: argmax as a float index (``OnPolicyAgent.act``)."""
    return categorical_mode(out).unsqueeze(-1).to(out.dtype)


def _one_learner(net: nn.Module, k: int, learners: int) -> nn.Module:
    """A CPU copy of ``net`` holding learner k's groups only (every parameter and buffer of a batched
    network is learner-major on its leading axis), frozen, on the plain (unfused) ops."""
    one: Any = copy.deepcopy(net).to("cpu")
    for tensor in [*one.parameters(), *one.buffers()]:
        per = tensor.shape[0] // learners
        tensor.data = tensor.data[k * per : (k + 1) * per].clone()
        tensor.requires_grad_(False)
    if hasattr(one, "groups"):
        one.groups //= learners
    one.fused = False  # the fused CPU node is an autograd Function: the same function as plain ops
    return one.eval()


def _normaliser(agent: AgentLike, k: int) -> ObservationNormaliser | None:
    """Learner k's statistics in a one-learner normaliser with the agent's clip and ε."""
    norm: ObservationNormaliser | None = getattr(agent, "obs_norm", None)
    if norm is None:
        return None
    one = ObservationNormaliser((1,), norm.obs_shape, clip=norm.clip, epsilon=norm.epsilon, device="cpu")
    one.load_state({name: t[k : k + 1].detach().cpu() for name, t in norm.state_tensors().items()})
    one.frozen = True
    return one


class DeployedPolicy(nn.Module):
    """Observations (B, obs_dim) float32 → the environment's actions: (B, act_dim) float32 for a Box
    space, (B,) int64 for a Discrete one — ``predict(obs, deterministic=True)``'s arrays."""

    def __init__(
        self,
        trunk: nn.Module,
        head: Head,
        mapper: ActionScaler | DiscreteActions,
        normaliser: ObservationNormaliser | None = None,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.normaliser = normaliser
        self.discrete = isinstance(mapper, DiscreteActions)
        if isinstance(mapper, DiscreteActions):
            self.start = mapper.start
        else:  # float64, as ActionScaler computes
            for name in ("low", "high", "_half_range"):
                self.register_buffer(name.strip("_"), torch.as_tensor(getattr(mapper, name), dtype=torch.float64))

    def network_output(self, observation: Tensor) -> Tensor:
        """f_θ(x) (B, out): Q values or logits of a discrete policy, for the near-tie check."""
        x = observation[None]
        if self.normaliser is not None:
            x = self.normaliser.normalise(x)
        return self.trunk(x)[0]

    def forward(self, observation: Tensor) -> Tensor:
        unit = self.head(torch, self.network_output(observation), None)
        if self.discrete:  # DiscreteActions.to_env: start + rint(index), int64
            return torch.round(unit[..., 0]).to(torch.int64) + self.start
        low, high = self.get_buffer("low"), self.get_buffer("high")
        scaled = low + (unit.to(torch.float64) + 1.0) * self.get_buffer("half_range")
        return torch.clamp(scaled, low, high).to(torch.float32)  # ActionScaler.to_env, then predict's cast


def _policy_parts(agent: AgentLike) -> tuple[nn.Module, Head]:
    """The policy network and its deterministic acting head, as the agent's ``act`` uses them."""
    policy = getattr(agent, "policy", None)  # off-policy agents: ``self.policy.head(xp, trunk(x), None)``
    if policy is not None and hasattr(policy, "trunk") and hasattr(policy, "head"):
        return policy.trunk, policy.head
    net = getattr(agent, "net", None)  # on-policy agents: clip(μ) / argmax of ``net.policy``
    if net is not None and isinstance(getattr(net, "policy", None), nn.Module):
        return net.policy, _categorical_index if agent.spec.action_kind == "Discrete" else _box_mean
    raise SoftacError(f"{agent.algo} has no exportable policy network")


def deployed_policy(agent: AgentLike, k: int = 0) -> DeployedPolicy:
    """Learner k's deterministic policy, detached from the agent (copies of its weights and statistics)."""
    if not 0 <= k < agent.learners:
        raise SoftacError(f"learner {k} does not exist: the agent has {agent.learners}")
    if getattr(agent, "encoder", None) is not None:
        # The user's encoder runs as stacked copies under torch.vmap, which neither exporter traces.
        raise SoftacError("a model with encoder= cannot be exported yet (the encoder runs under torch.vmap, which "
                          "the ONNX and TorchScript exporters do not trace): use the model's predict")  # fmt: skip
    trunk, head = _policy_parts(agent)
    mapper = getattr(agent, "scaler", None)
    if not isinstance(mapper, (ActionScaler, DiscreteActions)):
        raise SoftacError(f"{agent.algo} maps its actions in a way export does not know")
    return DeployedPolicy(_one_learner(trunk, k, agent.learners), head, mapper, _normaliser(agent, k)).eval()


def probe_observations(agent: AgentLike, k: int, n: int = 64) -> np.ndarray:
    """Observations that reach every branch of the graph: raw N(0, 3²) values, values around learner
    k's running mean (normalised inputs of order 1), and values 20 σ away (normalised inputs clipped)."""
    rng = np.random.default_rng(12345)
    dim = agent.spec.obs_dim
    rows = [rng.normal(scale=3.0, size=(n // 2, dim))]
    norm: ObservationNormaliser | None = getattr(agent, "obs_norm", None)
    if norm is not None:
        mean, std = (t[k].cpu().numpy() for t in (norm.mean, norm.var.sqrt()))
        rows.append(mean + std * rng.normal(scale=2.0, size=(n // 4, dim)))
        rows.append(mean + std * 20.0 * rng.choice([-1.0, 1.0], size=(n - n // 2 - n // 4, dim)))
    else:
        rows.append(rng.normal(scale=0.5, size=(n - n // 2, dim)))
    return np.concatenate(rows).astype(np.float32)
