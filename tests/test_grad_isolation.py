"""Gradient isolation on real agents (DESIGN.md's testing lesson from Spinning Up's silent bug):
after the actor loss's backward pass the critics and α have no gradient, and after the critic
loss's backward pass the actor has none.

Two ways: (1) the update's computation reproduced step by step with the agent's own modules and
loss functions; (2) ``agent.update`` itself, observed through its optimizers' ``step`` calls.
Both on the plain autograd update (``fast_update=False``) and on the fused layer stack (the default),
which must leave exactly the same gradients where the plain ops leave them.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers import TINY, fill_buffer

from softac import DDPG, DQN, SAC, TD3, DiscreteSAC
from softac.data.replay import Batch
from softac.distributions import squashed_gaussian_rsample
from softac.losses import common
from softac.losses import discrete_sac as LDS
from softac.losses import distributional as D
from softac.losses import dqn as LD
from softac.losses import sac as LS
from softac.losses import td3 as LT


def _fill(agent: Any, n: int = 256, seed: int = 0) -> Batch:
    fill_buffer(agent, n, seed)
    return agent.buffer.sample(64, agent.rng)


def _no_grad(params: Any) -> bool:
    return all(p.grad is None or not p.grad.any() for p in params)


def _has_grad(params: Any) -> bool:
    return all(p.grad is not None for p in params) and any(p.grad.abs().sum() > 0 for p in params)


def _zero_all(agent: Any) -> None:
    for module in agent.modules().values():
        module.zero_grad(set_to_none=True)
    for t in agent.extra_tensors().values():
        t.grad = None


@pytest.fixture
def sac_agent() -> SAC:
    return SAC("Pendulum-v1", **TINY, seed=1)


@pytest.fixture
def td3_agent() -> TD3:
    return TD3("Pendulum-v1", **TINY, seed=1, policy_delay=1)


# -- (1) step by step --------------------------------------------------------------------------
def test_sac_actor_loss_reaches_only_the_actor(sac_agent: SAC) -> None:
    agent = sac_agent
    batch = _fill(agent)
    assert agent.log_alpha.requires_grad  # autotuned: α *could* receive a gradient
    _zero_all(agent)
    alpha = agent.log_alpha.detach().exp()
    action, log_prob = squashed_gaussian_rsample(*agent.actor(batch.obs))
    q_pi = agent.critic(torch.cat([batch.obs, action], dim=-1), detach_params=True)
    LS.actor_loss(q_pi, log_prob, alpha).sum().backward()
    assert _has_grad(list(agent.actor.parameters()))
    assert _no_grad(agent.critic.parameters())
    assert _no_grad(agent.critic_target.parameters())
    assert agent.log_alpha.grad is None

    # Control: the same loss with the critic *not* detached would leak into the critic, so the
    # check above is able to fail.
    _zero_all(agent)
    action, log_prob = squashed_gaussian_rsample(*agent.actor(batch.obs))
    q_pi = agent.critic(torch.cat([batch.obs, action], dim=-1))
    LS.actor_loss(q_pi, log_prob, agent.log_alpha.exp()).sum().backward()
    assert not _no_grad(agent.critic.parameters())
    assert agent.log_alpha.grad is not None


def test_sac_critic_loss_reaches_only_the_critic(sac_agent: SAC) -> None:
    agent = sac_agent
    batch = _fill(agent)
    _zero_all(agent)
    alpha = agent.log_alpha.detach().exp()
    with torch.no_grad():
        next_action, next_log_prob = squashed_gaussian_rsample(*agent.actor(batch.next_obs))
        next_q = agent.critic_target(torch.cat([batch.next_obs, next_action], dim=-1))
        y = LS.soft_target(batch.reward, batch.terminated, agent.config.gamma, next_q, next_log_prob, alpha)
    LS.critic_loss(agent.critic(batch.obs_act), y).sum().backward()
    assert _has_grad(list(agent.critic.parameters()))
    assert _no_grad(agent.actor.parameters())
    assert _no_grad(agent.critic_target.parameters())
    assert agent.log_alpha.grad is None


def test_sac_temperature_loss_reaches_only_log_alpha(sac_agent: SAC) -> None:
    agent = sac_agent
    batch = _fill(agent)
    _zero_all(agent)
    _, log_prob = squashed_gaussian_rsample(*agent.actor(batch.obs))
    LS.temperature_loss(agent.log_alpha, log_prob.detach(), agent.target_entropy).sum().backward()
    assert agent.log_alpha.grad is not None and (agent.log_alpha.grad != 0).all()
    assert _no_grad(agent.actor.parameters()) and _no_grad(agent.critic.parameters())


def test_td3_losses_are_isolated(td3_agent: TD3) -> None:
    agent = td3_agent
    batch = _fill(agent)
    _zero_all(agent)
    q_pi = agent.critic(torch.cat([batch.obs, agent.actor(batch.obs)], dim=-1), detach_params=True)
    LT.actor_loss(q_pi[:, 0]).sum().backward()
    assert _has_grad(list(agent.actor.parameters()))
    assert _no_grad(agent.critic.parameters()) and _no_grad(agent.actor_target.parameters())

    _zero_all(agent)
    with torch.no_grad():
        noise = torch.randn(1, 64, 1, device=agent.device) * 0.2
        clip = agent.config.target_noise_clip
        next_action = LT.smoothed_target_action(agent.actor_target(batch.next_obs), noise, clip)
        y = LT.target(batch.reward, batch.terminated, agent.config.gamma,
                      agent.critic_target(torch.cat([batch.next_obs, next_action], dim=-1)))  # fmt: skip
    LT.critic_loss(agent.critic(batch.obs_act), y).sum().backward()
    assert _has_grad(list(agent.critic.parameters()))
    assert _no_grad(agent.actor.parameters()) and _no_grad(agent.actor_target.parameters())
    assert _no_grad(agent.critic_target.parameters())


# -- (2) inside agent.update ---------------------------------------------------------------------
def _grads(params: Any) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in params]


def _same(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(a, b, strict=True))  # fmt: skip


def _named_params(agent: Any) -> dict[str, list[torch.Tensor]]:
    out = {name: list(m.parameters()) for name, m in agent.modules().items()}
    out.update({name: [t] for name, t in agent.extra_tensors().items()})
    return out


def _watch_losses(
    agent: Any, watched: list[tuple[Any, str]], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Wrap the loss functions the agent's update calls: each time one is built, ask autograd
    which of the agent's tensors it can reach (without changing what the update computes)."""
    reach: dict[str, Any] = {}
    params = _named_params(agent)

    def wrap(losses: Any, fn_name: str) -> None:
        original = getattr(losses, fn_name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            loss = original(*args, **kwargs)
            flat = [(name, p) for name, ps in params.items() for p in ps if p.requires_grad]
            grads = torch.autograd.grad(loss.sum(), [p for _, p in flat], retain_graph=True, allow_unused=True)
            reached: dict[str, bool] = {}
            for (name, _), g in zip(flat, grads, strict=True):
                reached[name] = reached.get(name, False) or (g is not None and bool(g.abs().sum() > 0))
            reach[fn_name] = reached
            return loss

        monkeypatch.setattr(losses, fn_name, spy)

    for losses, fn_name in watched:
        wrap(losses, fn_name)
    return reach


# The actor-critic algorithms (TD3's actor in every update), and options that change the update's data
SIMBA_SMALL: dict[str, Any] = {"network": "simba", "simba_width_actor": 8, "simba_width_critic": 8}
ISOLATION_CASES: list[tuple[type, dict[str, Any]]] = [
    (SAC, {}), (TD3, {"policy_delay": 1}), (DDPG, {}), (SAC, {"n_step": 3}),
    (SAC, SIMBA_SMALL), (TD3, {"policy_delay": 1, **SIMBA_SMALL}), (DDPG, SIMBA_SMALL),
    (SAC, {"critic_dist": "c51"}), (TD3, {"policy_delay": 1, "critic_dist": "hl_gauss"}),
]  # fmt: skip
ISOLATION_IDS = [f"{cls.__name__}-{extra}" for cls, extra in ISOLATION_CASES]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize(("cls", "extra"), ISOLATION_CASES, ids=ISOLATION_IDS)
def test_losses_built_inside_update_reach_only_their_parameters(
    cls: type, extra: dict[str, Any], fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = cls("Pendulum-v1", **{**TINY, "cuda_graph": False}, seed=2, fast_update=fused, **extra)
    # the critic loss is the shared one (losses.common), the others the algorithm's own
    names = ["critic_loss", "actor_loss", "temperature_loss"] if cls is SAC else ["critic_loss", "actor_loss"]
    critic = D if "critic_dist" in extra else common  # a distributional critic's loss is its own
    watched = [(critic if name == "critic_loss" else LS if cls is SAC else LT, name) for name in names]
    reach = _watch_losses(agent, watched, monkeypatch)
    fill_buffer(agent, 256)
    agent.update()
    assert set(reach) == set(names)  # every loss was built (and watched) in this update
    assert reach["critic_loss"] == {**{k: False for k in reach["critic_loss"]}, "critic": True}
    assert reach["actor_loss"] == {**{k: False for k in reach["actor_loss"]}, "actor": True}
    if cls is SAC:
        assert "log_alpha" in reach["actor_loss"]  # α was a candidate, and the actor loss missed it
        assert reach["temperature_loss"] == {**{k: False for k in reach["temperature_loss"]}, "log_alpha": True}


def _spy_steps(agent: Any) -> dict[str, Any]:
    """Record every module's gradients (and log α's) each time an optimizer steps."""
    seen: dict[str, Any] = {}
    names = {id(opt): name for name, opt in agent.optimizers().items()}
    original = agent.step_optimizer

    def step(opt: torch.optim.Optimizer, grads: Any = None) -> None:
        seen[names[id(opt)]] = {m: _grads(ps) for m, ps in _named_params(agent).items()}
        original(opt, grads)

    agent.step_optimizer = step
    return seen


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize(("cls", "extra"), ISOLATION_CASES, ids=ISOLATION_IDS)
def test_update_isolates_gradients(cls: type, extra: dict[str, Any], fused: bool) -> None:
    if extra.get("network") == "simba" and fused:
        pytest.skip("a SimBa network has no fused node")
    agent = cls("Pendulum-v1", **{**TINY, "cuda_graph": False}, seed=2, fast_update=fused, **extra)
    for _ in range(3):  # several updates: stale grads from a previous update must not leak either
        fill_buffer(agent, 64, seed=agent.updates)
        _zero_all(agent)
        seen = _spy_steps(agent)
        metrics = agent.update()
        assert "critic" in seen and "actor" in seen
        # at the critic step: the critic has gradient, the actor (and α) none
        at_critic = seen["critic"]
        assert all(g is not None and g.abs().sum() > 0 for g in at_critic["critic"])
        assert all(g is None for g in at_critic["actor"])
        assert all(g is None for g in at_critic.get("log_alpha", []))
        # at the actor step: the actor has gradient, the critic's is exactly what the critic loss left
        at_actor = seen["actor"]
        assert all(g is not None for g in at_actor["actor"])
        assert _same(at_actor["critic"], at_critic["critic"])
        for target in ("critic_target", "actor_target"):
            if target in at_actor:
                assert all(g is None for g in at_actor[target])
        if cls is SAC:
            # log α's gradient is the temperature loss's alone, −E[log π + H̄] = entropy − H̄: the
            # actor loss (α detached) added nothing to it
            (g_alpha,) = at_actor["log_alpha"]
            assert g_alpha is not None
            expected = metrics["policy/entropy"] - agent.target_entropy
            torch.testing.assert_close(g_alpha, expected, rtol=1e-5, atol=1e-6)


# -- the discrete-action algorithms ----------------------------------------------------------------
def _only(reach: dict[str, bool], name: str) -> dict[str, bool]:
    return {**{k: False for k in reach}, name: True}


@pytest.mark.parametrize("fused", [False, True])
def test_discrete_losses_built_inside_update_reach_only_their_parameters(
    fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discrete SAC: the critic loss reaches only the critics, the actor loss only the actor (the
    critics' values enter it as constants), the temperature loss only log α. DQN: its TD loss
    reaches the Q-network, never the target network."""
    agent = DiscreteSAC("CartPole-v1", **{**TINY, "cuda_graph": False}, seed=2, fast_update=fused)
    names = ["critic_loss", "actor_loss", "temperature_loss"]
    reach = _watch_losses(agent, [(LDS, name) for name in names], monkeypatch)
    fill_buffer(agent, 256)
    agent.update()
    assert set(reach) == set(names)
    assert reach["critic_loss"] == _only(reach["critic_loss"], "critic")
    assert reach["actor_loss"] == _only(reach["actor_loss"], "actor") and "log_alpha" in reach["actor_loss"]
    assert reach["temperature_loss"] == _only(reach["temperature_loss"], "log_alpha")

    dqn = DQN("CartPole-v1", **{**TINY, "cuda_graph": False}, seed=2, fast_update=fused, double_q=True)
    reach = _watch_losses(dqn, [(LD, "td_loss")], monkeypatch)
    fill_buffer(dqn, 256)
    dqn.update()
    assert reach["td_loss"] == {"q": True}  # the only candidate: the target network cannot take a gradient
    assert not any(p.requires_grad for p in dqn.q_target.parameters())


@pytest.mark.parametrize("fused", [False, True])
def test_discrete_updates_isolate_gradients(fused: bool) -> None:
    agent = DiscreteSAC("CartPole-v1", **{**TINY, "cuda_graph": False}, seed=2, fast_update=fused)
    dqn = DQN("CartPole-v1", **{**TINY, "cuda_graph": False}, seed=2, fast_update=fused, utd_ratio=1.0,
              target_update_interval=2)  # fmt: skip
    for _ in range(3):
        fill_buffer(agent, 64, seed=agent.updates)
        _zero_all(agent)
        seen = _spy_steps(agent)
        metrics = agent.update()
        at_critic, at_actor = seen["critic"], seen["actor"]
        assert all(g is not None and g.abs().sum() > 0 for g in at_critic["critic"])
        assert all(g is None for g in at_critic["actor"] + at_critic["log_alpha"] + at_critic["critic_target"])
        assert all(g is not None and g.abs().sum() > 0 for g in at_actor["actor"])
        assert _same(at_actor["critic"], at_critic["critic"])  # the actor step added nothing to the critics
        assert all(g is None for g in at_actor["critic_target"])
        # log α's gradient is the temperature loss's alone: E[H(π(·|s))] − H̄
        (g_alpha,) = at_actor["log_alpha"]
        assert g_alpha is not None
        torch.testing.assert_close(g_alpha, metrics["policy/entropy"] - agent.target_entropy, rtol=1e-5, atol=1e-6)

        fill_buffer(dqn, 64, seed=dqn.updates)
        _zero_all(dqn)
        seen = _spy_steps(dqn)
        dqn.update()
        assert all(g is not None and g.abs().sum() > 0 for g in seen["q"]["q"])
        assert all(g is None for g in seen["q"]["q_target"])
