"""Every accelerated form of the update equals the plain eager autograd update (DESIGN.md, testing):
the fused CPU layer stack, ``torch.compile``, CUDA graphs, the numpy acting path — and the
learner axis: N learners stacked in one agent equal N single agents with the same seeds."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from helpers import DEVICE, TINY, assert_learners_equal_singles, fill_buffer, on_cpu, seed_rows, state_tensors

from softac import DDPG, DQN, PPO, SAC, TD3, CrossQ, DiscreteSAC
from softac.accel import runner as runner_mod
from softac.config import COMPILE_AUTO_UPDATES
from softac.distributions import squashed_gaussian_rsample
from softac.nn import BatchedMLP, BatchedSimba
from softac.nn import fused as fused_mod

# DQN: an update every step and a target copy after every 4th (both phases), clipping that bites
DQN_SYNC_CLIP: dict[str, Any] = {"utd_ratio": 1.0, "target_update_interval": 4, "max_grad_norm": 0.1}
CROSSQ_SMALL: dict[str, Any] = {"critic_hidden_sizes": (32, 32), "renorm_warmup": 2}
# Distributional critics: 11 atoms on [−5, 5] (fill_buffer's rewards are N(0, 1), so targets clip at both ends)
DIST_SMALL: dict[str, Any] = {"dist_bins": 11, "dist_v_min": -5.0, "dist_v_max": 5.0}
UPDATE_CASES: list[tuple[type, dict[str, Any]]] = [
    (SAC, {}),
    (SAC, {"autotune_alpha": False, "alpha": 0.3}),
    (SAC, {"n_critics": 3, "hidden_sizes": (24, 16, 8)}),
    (SAC, {"log_std_min": -1.0, "log_std_max": -0.5}),  # a clamp that bites: its gradient mask matters
    (SAC, {"n_step": 3}),  # the per-row discount γ^m of n-step rows
    (SAC, {"per": True}),  # prioritized replay: weighted loss, sampling from the tree, new priorities
    (TD3, {"policy_delay": 2}),
    (TD3, {"n_critics": 3, "policy_delay": 1}),
    (SAC, {"network": "simba", "simba_width_actor": 8, "simba_width_critic": 8, "simba_blocks_critic": 2}),
    (TD3, {"network": "simba", "simba_width_actor": 8, "simba_width_critic": 8, "policy_delay": 2}),
    (SAC, {"critic_dist": "c51", "n_step": 3, **DIST_SMALL}),  # C51 with the entropy shift and per-row γ^m
    (TD3, {"critic_dist": "hl_gauss", "policy_delay": 2, **DIST_SMALL}),
    (SAC, {"critic_dist": "two_hot", "network": "simba", "simba_width_actor": 8, "simba_width_critic": 8,
           **DIST_SMALL}),
    (DDPG, {}),
    (DQN, DQN_SYNC_CLIP),
    (DQN, {"utd_ratio": 1.0, "target_update_interval": 2, "tau": 0.5, "double_q": True, "loss": "mse",
           "max_grad_norm": 0.0}),
    (DQN, {"utd_ratio": 1.0, "per": True}),
    (DiscreteSAC, {}),
    (DiscreteSAC, {"autotune_alpha": False, "alpha": 0.3, "n_critics": 3, "target_update_interval": 2}),
    # CrossQ: batch-renormalised networks with running statistics (state the losses return); a
    # warm-up of 2 updates so that both the batch-norm and the renormalising branch run here.
    (CrossQ, CROSSQ_SMALL),
    (CrossQ, {**CROSSQ_SMALL, "policy_delay": 1, "autotune_alpha": False}),
    (CrossQ, {**CROSSQ_SMALL, "norm": "batchnorm"}),  # plain BatchNorm: running statistics, no renormalisation
    (CrossQ, {**CROSSQ_SMALL, "network": "simba", "simba_width_actor": 8}),  # a SimBa actor, BRN critics
]
# The discrete-action algorithms train on CartPole (2 actions), the others on Pendulum.
DISCRETE = (DQN, DiscreteSAC)
CASE_IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in extra.items()) or 'default'}"
            for cls, extra in UPDATE_CASES]  # fmt: skip


def _table_ids(cases: list[tuple[type, dict[str, Any]]]) -> list[str]:
    """The algorithm's name, and the distributional target, normalisation and network where a row sets them."""
    keys = ("critic_dist", "norm", "network")
    return [cls.__name__ + "".join(f"-{extra[k]}" for k in keys if k in extra) for cls, extra in cases]


def _env(cls: type) -> str:
    return "CartPole-v1" if cls in DISCRETE else "Pendulum-v1"


def _agent(cls: type, env_id: str | None = None, **kw: Any) -> Any:
    agent = cls(env_id or _env(cls), **{**TINY, "seed": 4, **kw})
    fill_buffer(agent, 512)
    return agent


def _assert_states_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], rtol: float, atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol, msg=lambda m, key=key: f"{key}: {m}")


def _paired_updates(a: Any, b: Any, n: int, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """``n`` updates of two agents that hold the same state and streams: metrics and every learned
    tensor (parameters, targets, optimizer moments, log α) agree after each one."""
    for _ in range(n):
        ma, mb = a.update(), b.update()
        assert ma.keys() == mb.keys()
        for key in ma:
            torch.testing.assert_close(ma[key], mb[key], rtol=rtol, atol=atol, msg=key)
        _assert_states_close(state_tensors(a), state_tensors(b), rtol, atol)


# -- the fused layer stack -------------------------------------------------------------------------
@pytest.mark.parametrize(("groups", "sizes"), [(1, [5, 16, 1]), (3, [7, 32, 16, 4]), (4, [3, 8, 8, 8, 1])])
@pytest.mark.parametrize("detach_params", [False, True])
@pytest.mark.parametrize("input_grad", [False, True])
def test_fused_stack_equals_separate_ops_gradient_by_gradient(
    groups: int, sizes: list[int], detach_params: bool, input_grad: bool
) -> None:
    if detach_params and not input_grad:
        pytest.skip("nothing would need a gradient")
    net = BatchedMLP(groups, sizes[0], sizes[1:-1], sizes[-1])
    net.reset_parameters([torch.Generator().manual_seed(g) for g in range(groups)])
    x = torch.randn(groups, 29, sizes[0], requires_grad=input_grad)
    upstream = torch.randn(groups, 29, sizes[-1])
    outs, grads = [], []
    for fused in (True, False):
        net.fused = fused
        net.zero_grad(set_to_none=True)
        x.grad = None
        y = net(x, detach_params=detach_params)
        (y * upstream).sum().backward()
        outs.append(y.detach())
        grads.append([None if t.grad is None else t.grad.clone() for t in [x, *net.params()]])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    for g_fused, g_plain in zip(*grads, strict=True):
        assert (g_fused is None) == (g_plain is None)  # the same gradients exist, no more, no fewer
        if g_fused is not None:
            torch.testing.assert_close(g_fused, g_plain, rtol=1e-5, atol=1e-5)
    assert (grads[0][0] is not None) == input_grad
    assert all((g is None) == detach_params for g in grads[0][1:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_squashed_gaussian_equals_the_reference_sample(dtype: torch.dtype) -> None:
    """``nn.fused.squashed_gaussian_head`` against ``distributions.squashed_gaussian_rsample`` after
    the split and the clamp: the forward pass bit for bit (same ops in the same order), the
    gradient with respect to [μ | raw log σ] for upstream gradients on both outputs, with a third of
    the log-stds clamped at each end (their gradient must be 0) and some exactly at a bound (where
    torch's clamp passes it); in float64 also torch's numerical gradient check."""
    gen = torch.Generator().manual_seed(3)
    lo, hi = -2.0, 1.0
    mean = torch.randn(2, 40, 3, generator=gen, dtype=dtype) * 2
    raw = torch.empty(2, 40, 3, dtype=dtype).uniform_(-3.5, 2.5, generator=gen)
    raw[0, :4] = lo
    raw[1, :4] = hi
    out = torch.cat([mean, raw], dim=-1).requires_grad_()
    noise = torch.randn(2, 40, 3, generator=gen, dtype=dtype)
    up_action, up_log_prob = torch.randn(2, 40, 3, generator=gen, dtype=dtype), torch.randn(2, 40, generator=gen,
                                                                                            dtype=dtype)  # fmt: skip

    def reference(o: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m, r = o.split(3, dim=-1)
        return squashed_gaussian_rsample(m, r.clamp(lo, hi), noise)

    results = []
    for fn in (lambda o: fused_mod.squashed_gaussian_head(o, noise, lo, hi), reference):
        action, log_prob = fn(out)
        (grad,) = torch.autograd.grad((action * up_action).sum() + (log_prob * up_log_prob).sum(), out)
        results.append((action.detach(), log_prob.detach(), grad))
    (a_f, lp_f, g_f), (a_r, lp_r, g_r) = results
    assert torch.equal(a_f, a_r) and torch.equal(lp_f, lp_r)
    # float64: the reference's softplus turns linear past 20 (torch's threshold), so its derivative
    # there is off from the exact 2·tanh(u) by ≈ e⁻²⁰ ≈ 2e-9; that, not rounding, sets this tolerance.
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-8, "atol": 1e-8}
    torch.testing.assert_close(g_f, g_r, **tol)
    clamped = (raw < lo) | (raw > hi)
    assert clamped.any() and (g_f[..., 3:][clamped] == 0).all() and (g_f[..., 3:][~clamped] != 0).all()
    if dtype == torch.float64:
        # Rows away from the bounds placed above (finite differences straddling a clamp's kink disagree).
        small, xi = out.detach()[:, 10:15].clone().requires_grad_(), noise[:, 10:15]
        assert torch.autograd.gradcheck(lambda o: fused_mod.squashed_gaussian_head(o, xi, lo, hi), (small,))
    with torch.no_grad():  # no node without a gradient to compute: the plain forward, the same values
        action, log_prob = fused_mod.squashed_gaussian_head(out, noise, lo, hi)
    assert torch.equal(action, a_r) and torch.equal(log_prob, lp_r)


@pytest.mark.parametrize(("cls", "extra"), UPDATE_CASES, ids=CASE_IDS)
def test_fused_update_equals_plain_autograd_update(
    cls: type, extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fused = _agent(cls, fast_update=True, **extra)
    plain = _agent(cls, fast_update=False, **extra)
    _paired_updates(fused, plain, 4)
    # The comparison means something only if the two really ran different code: count the fused
    # node's calls in one more update of each (on the CPU; a CUDA-graphed update replays without
    # calling Python at all).
    calls: list[int] = []
    node = fused_mod._LinearReLUStack
    original = node.apply
    monkeypatch.setattr(node, "apply", lambda *args: calls.append(1) or original(*args))
    heads: list[int] = []
    head = fused_mod._SquashedGaussian
    original_head = head.apply
    monkeypatch.setattr(head, "apply", lambda *args: heads.append(1) or original_head(*args))
    fused.update()
    fused_calls, head_calls = len(calls), len(heads)
    plain.update()
    assert len(calls) == fused_calls and len(heads) == head_calls  # the plain update reached no fused node
    # SAC's actor loss samples through the squashed-Gaussian node once per update (its target's
    # sample needs no gradient: the node's plain forward); no other algorithm but CrossQ has one.
    if cls is SAC:
        assert head_calls == 1
    elif cls is not CrossQ:
        assert head_calls == 0
    if on_cpu():
        # The fused node covers plain Linear/ReLU stacks; normalised networks (CrossQ's batch
        # renormalisation) must fall back to the plain ops, never half-use it.
        # SimBa trunks have no fused node either (``plain_relu`` False).
        plain_nets = all(m.plain_relu for net in fused.modules().values() for m in net.modules()
                         if isinstance(m, (BatchedMLP, BatchedSimba)))  # fmt: skip
        assert (fused_calls > 0) == plain_nets


def _products(rows: int, sizes: list[int]) -> int:
    """Floating-point operations (2·rows·in·out per layer) of a forward pass through ``sizes``."""
    return sum(2 * rows * i * o for i, o in itertools.pairwise(sizes))


@pytest.mark.skipif(not on_cpu(), reason="counts the products of the CPU's fused stack")
@pytest.mark.parametrize("cls", [SAC, TD3])
def test_fused_update_does_only_the_products_the_equations_need(cls: type) -> None:
    """The matrix-product FLOPs of one update, counted by ``FlopCounterMode`` on the real update,
    equal the hand count: no critic weight gradients in the actor step (the critics' parameters
    are detached there), no input gradient into a network whose input is data, TD3's actor step
    through the first critic alone (its loss is −Q_φ1). ``benchmarks/floor.py``
    divides this count by the machine's product rate."""
    from torch.utils.flop_counter import FlopCounterMode

    agent = _agent(cls, "HalfCheetah-v5", hidden_sizes=(32, 16))
    agent.update()
    o, a, n, b = agent.spec.obs_dim, agent.spec.act_dim, agent.config.n_critics, agent.config.batch_size
    h1, h2 = agent.config.hidden_sizes
    critic = n * _products(b, [o + a, h1, h2, 1])  # one forward pass of the ensemble
    mid = 2 * b * h1 * h2  # the input gradient of the middle layer (the Q head's is a broadcast multiply)
    first_in = 2 * b * h1 * (o + a)  # the input gradient of a critic's first layer
    counts, actor_steps = [], []
    for _ in range(2):  # TD3: one update with the delayed actor step and one without
        actor_steps.append((agent.updates + 1) % getattr(agent.config, "policy_delay", 1) == 0)
        counter = FlopCounterMode(display=False)
        with counter:
            agent.update()
        counts.append(counter.get_total_flops())
    if cls is SAC:
        actor = [o, h1, h2, 2 * a]
        actor_backward = _products(b, actor) + 2 * b * h2 * 2 * a + 2 * b * h1 * h2  # weights + inner inputs
        expected = (
            2 * _products(b, actor)  # ã′ and ã
            + 3 * critic  # target, critic step, actor step forwards
            + critic + n * mid  # critic step backward: weight gradients, middle input gradient
            + n * (mid + first_in)  # actor step through the critics: input gradients only
            + actor_backward
        )
        assert counts == [expected, expected]
    else:
        actor = [o, h1, h2, a]
        critic_update = _products(b, actor) + 3 * critic + n * mid
        actor_update = (
            _products(b, actor) + critic // n + mid + first_in  # μ(s), Q_φ1, its input gradients
            + _products(b, actor) + 2 * b * h2 * a + 2 * b * h1 * h2  # actor backward
        )  # fmt: skip
        assert sorted(actor_steps) == [False, True]
        assert counts == [critic_update + actor_update * step for step in actor_steps]


# -- torch.compile ---------------------------------------------------------------------------------
COMPILE_CASES: list[tuple[type, dict[str, Any]]] = [
    (SAC, {}), (TD3, {"policy_delay": 2}), (DQN, DQN_SYNC_CLIP), (DiscreteSAC, {"target_update_interval": 2}),
    (CrossQ, {**CROSSQ_SMALL, "policy_delay": 2}),
    (SAC, {"critic_dist": "hl_gauss", **DIST_SMALL}), (TD3, {"critic_dist": "c51", "policy_delay": 2, **DIST_SMALL}),
]


@pytest.mark.parametrize(("cls", "extra"), COMPILE_CASES, ids=_table_ids(COMPILE_CASES))
def test_compiled_update_equals_eager_update(cls: type, extra: dict[str, Any]) -> None:
    """Both variants of an update with a host-decided phase are compiled and checked: TD3's with
    and without the delayed actor step, DQN's and discrete SAC's with and without the target
    update (DQN's with gradient clipping that bites)."""
    compiled = _agent(cls, compile_update=True, cuda_graph=False, **extra)
    eager = _agent(cls, compile_update=False, cuda_graph=False, **extra)
    _paired_updates(compiled, eager, 4, rtol=1e-4, atol=1e-5)
    assert isinstance(compiled._runner, runner_mod.Compiled) and not compiled._runner.failed


@pytest.mark.parametrize("cls", [SAC, PPO])
def test_long_cpu_runs_compile_by_default_and_the_flags_decide(cls: type) -> None:
    """Unset ``compile_update``: compiled on the CPU for runs that plan 50,000 gradient updates or
    more, eager below and on CUDA; set, it decides. The plan is the family's own schedule, so the
    budget at which a run starts compiling is found by search and checked against the formula.
    Nothing is compiled here: the runners are built, not called. (A run says so in one line before
    its progress bar: ``tests/test_signals.py``.)"""
    cfg = cls.config_cls()
    assert cfg.compile_update is None and COMPILE_AUTO_UPDATES == 50_000
    if cls is SAC:  # ⌊(T − learning_starts) · utd⌋
        assert cfg.replace(total_steps=100_000, learning_starts=5_000, utd_ratio=0.5).planned_updates() == 47_500
        assert cfg.replace(total_steps=1_000, learning_starts=5_000).planned_updates() == 0
    else:  # SB3's defaults: 2048-step rollouts, 10 epochs of 32 minibatches; the last rollout is whole
        assert cfg.replace(total_steps=100_000).planned_updates() == 49 * 10 * 32
    first = next(t for t in range(1, 10**7, 1_000) if cfg.replace(total_steps=t).compiles("cpu"))
    long, shorter = cfg.replace(total_steps=first), cfg.replace(total_steps=first - 1_000)
    assert long.planned_updates() >= COMPILE_AUTO_UPDATES > shorter.planned_updates()
    assert [long.compiles("cpu"), long.compiles("cuda"), shorter.compiles("cpu")] == [True, False, False]
    assert not long.replace(compile_update=False).compiles("cpu") and cfg.replace(compile_update=True).compiles("cuda")
    if not on_cpu():
        return
    small = {"hidden_sizes": (16, 16), "n_steps": 16, "minibatch_size": 8, "threads": 1} if cls is PPO else TINY
    for total, kind in ((10**6, runner_mod.Compiled), (20_000, runner_mod.Eager)):
        agent = cls("Pendulum-v1", **small, total_steps=total)
        inner = agent._runners()[0] if cls is not PPO else agent._runner()
        assert isinstance(inner, kind)


def test_compiled_update_of_stacked_learners_equals_eager() -> None:
    """Several seeds in one process compile as one update too (a million-step batched CPU run does
    by default): parameters, optimizer state and metrics agree with the eager update."""
    kw = {**TINY, "cuda_graph": False}
    compiled, eager = (SAC("Pendulum-v1", **kw, seeds=[4, 9], compile_update=flag) for flag in (True, False))
    for agent in (compiled, eager):
        fill_buffer(agent, 512)
    _paired_updates(compiled, eager, 3, rtol=1e-4, atol=1e-5)
    assert isinstance(compiled._runner, runner_mod.Compiled) and not compiled._runner.failed


def test_compile_failure_restores_the_state_and_continues_uncompiled(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A compiler that fails half-way through (after part of the update ran, as a graph break
    allows) must cost nothing: one warning line, the state put back, the update done eagerly."""

    def broken_compile(fn: Any, **kwargs: Any) -> Any:
        def half_then_fail(draws: Any, phase: Any) -> Any:
            agent = fn.__self__
            with torch.no_grad():
                next(agent.critic.parameters()).add_(1.0)  # the part that ran before the failure
            raise RuntimeError("InductorError: AssertionError: assert isinstance(snode, SchedulerNode)")

        return half_then_fail

    monkeypatch.setattr(runner_mod.torch, "compile", broken_compile)
    compiled = _agent(SAC, compile_update=True, cuda_graph=False)
    eager = _agent(SAC, compile_update=False, cuda_graph=False)
    _paired_updates(compiled, eager, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not compile" in err[0] and "continuing without it" in err[0]


def test_each_agent_compiles_its_own_code_object() -> None:
    """Dynamo caches at most 8 graphs per code object; every agent's update gets a private copy of
    the code so a sweep or a test session can build any number of compiled agents."""
    a, b = _agent(SAC), _agent(SAC)
    fa, fb = runner_mod._own_code(a._compute), runner_mod._own_code(b._compute)
    assert fa.__func__.__code__ is not fb.__func__.__code__
    assert fa.__func__.__code__ is not SAC._compute.__code__
    assert fa.__func__.__code__ == SAC._compute.__code__  # equal code: the same function


# -- CUDA graphs -----------------------------------------------------------------------------------
@pytest.mark.skipif(DEVICE == "cpu", reason="CUDA graphs need a CUDA device (run with --device cuda)")
@pytest.mark.parametrize(("cls", "extra"), UPDATE_CASES, ids=CASE_IDS)
def test_cuda_graph_update_equals_eager_update(cls: type, extra: dict[str, Any]) -> None:
    graphed = _agent(cls, cuda_graph=True, **extra)
    eager = _agent(cls, cuda_graph=False, **extra)
    _paired_updates(graphed, eager, 6, rtol=1e-4, atol=1e-5)
    assert isinstance(graphed._runner, runner_mod.CudaGraphed)


# -- the learner axis ------------------------------------------------------------------------------
STACK_CASES: list[tuple[type, dict[str, Any]]] = [
    (SAC, {}), (TD3, {}), (DiscreteSAC, {}), (CrossQ, CROSSQ_SMALL),
    (CrossQ, {**CROSSQ_SMALL, "norm": "batchnorm", "network": "simba", "simba_width_actor": 8}),
    # gradient clipping is per learner: a norm that bites, and target copies within the 200 updates
    (DQN, {"max_grad_norm": 0.5, "target_update_interval": 120, "exploration_final_eps": 0.5}),
    (SAC, {"critic_dist": "hl_gauss", **DIST_SMALL}), (TD3, {"critic_dist": "c51", **DIST_SMALL}),
]


@pytest.mark.parametrize(("cls", "extra"), STACK_CASES, ids=_table_ids(STACK_CASES))
def test_two_stacked_learners_equal_two_single_learners(cls: type, extra: dict[str, Any]) -> None:
    """One agent with seeds (3, 7) against SAC(seed=3) and SAC(seed=7) on the same replay data:
    initial weights, replay samples, noise, every update and the exploration actions agree."""
    stacked = cls(_env(cls), **TINY, **extra, seeds=[3, 7])
    singles = [cls(_env(cls), **{**TINY, **extra, "seed": s}) for s in (3, 7)]
    fill_buffer(stacked, 512)
    for k, single in enumerate(singles):
        single.buffer.add_all(seed_rows(stacked, k, 512)[None])

    assert_learners_equal_singles(stacked, singles, 0, 0)  # the same initial networks, exactly
    for _ in range(200):
        metrics = stacked.update()
        single_metrics = [s.update() for s in singles]
    assert_learners_equal_singles(stacked, singles, 1e-4, 1e-5)
    for key, value in metrics.items():
        assert value.shape == (2,)
        for k in range(2):
            torch.testing.assert_close(value[k], single_metrics[k][key][0], rtol=1e-4, atol=1e-5)
    # the random streams are the same ones: exploration draws next from the same state
    stacked.env_steps = singles[0].env_steps = singles[1].env_steps = 10**6  # past learning_starts
    obs = np.random.default_rng(0).normal(size=(2, 1, stacked.spec.obs_dim)).astype(np.float32)
    actions = stacked.explore(obs)
    for k, single in enumerate(singles):
        np.testing.assert_allclose(actions[k], single.explore(obs[k : k + 1])[0], rtol=1e-4, atol=1e-5)


# -- the numpy acting path -------------------------------------------------------------------------
EXPLORE_CASES: list[tuple[type, str, dict[str, Any]]] = [
    (SAC, "HalfCheetah-v5", {"log_std_min": -5.0, "log_std_max": 0.5}),
    (TD3, "HalfCheetah-v5", {}),
    (DDPG, "Pendulum-v1", {"exploration_noise": 0.0}),
    (DQN, "CartPole-v1", {"exploration_initial_eps": 0.5}),  # greedy and random actions both occur
    (DiscreteSAC, "Acrobot-v1", {}),  # 3 actions
]


@pytest.mark.skipif(not on_cpu(), reason="the numpy acting path serves the CPU only")
@pytest.mark.parametrize(("cls", "env_id", "extra"), EXPLORE_CASES, ids=[c.__name__ for c, _, _ in EXPLORE_CASES])
@pytest.mark.parametrize("learners", [1, 3])
def test_numpy_acting_equals_the_torch_policy(cls: type, env_id: str, extra: dict[str, Any], learners: int) -> None:
    """Same actions to float32 rounding, and the same numbers drawn from the learners' streams (so
    runs and resumes do not depend on which path acted)."""
    seeds = list(range(learners))
    numpy_agent = cls(env_id, **{**TINY, "learning_starts": 0, **extra}, seeds=seeds)
    torch_agent = cls(env_id, **{**TINY, "learning_starts": 0, "fast_update": False, **extra}, seeds=seeds)
    # The perturbation from a generator of its own: drawn from torch's global one, it depended on the
    # tests the worker ran before, and one draw made discrete SAC's policy on Acrobot choose action 2
    # in all 20 steps (a whole-suite run failed the "more than one action" check below).
    gen = torch.Generator().manual_seed(1234 + learners)
    with torch.no_grad():  # away from the initialisation: saturated tanh and clamped log σ occur
        for p, q in zip(numpy_agent.policy.parameters(), torch_agent.policy.parameters(), strict=True):
            q.copy_(p.add_(torch.randn(p.shape, generator=gen) * 0.3))
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(20):
        obs = (rng.normal(size=(learners, 1, numpy_agent.spec.obs_dim)) * 3.0).astype(np.float32)
        fast, ref = numpy_agent.explore(obs), torch_agent.explore(obs)
        assert fast.dtype == np.float32 and fast.shape == ref.shape == (learners, 1, numpy_agent.spec.act_dim)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-5)  # sums of products, in another order
        seen.append(fast)
    for k in range(learners):
        assert torch.equal(numpy_agent.rng.state(k)["host"], torch_agent.rng.state(k)["host"])
    acted = np.concatenate(seen).ravel()
    if numpy_agent.spec.action_kind == "Box":
        assert np.abs(acted).max() <= 1.0
    else:  # valid indices, and more than one of them (the check above compared real choices)
        n = numpy_agent.spec.n_actions
        assert set(acted.tolist()) <= set(range(n)) and len(set(acted.tolist())) > 1


# -- one environment step's device work as one graph -----------------------------------------------
# DQN's ε falls from 1 to 0.05 over the test's steps, so the step graph must read each step's ε.
DQN_EPS: dict[str, Any] = {"learning_starts": 0, "total_steps": 8, "exploration_fraction": 1.0,
                           "target_update_interval": 3, "utd_ratio": 1.0}  # fmt: skip


@pytest.mark.parametrize(("cls", "extra", "updates_per_step"), [
    (SAC, {}, 1), (TD3, {"policy_delay": 2}, 1), (SAC, {"n_critics": 3}, 2), (TD3, {"policy_delay": 3}, 0),
    (DQN, DQN_EPS, 1), (DiscreteSAC, {"learning_starts": 0}, 1),
], ids=["SAC", "TD3", "SAC-utd2", "TD3-no-update", "DQN", "DiscreteSAC"])  # fmt: skip
@pytest.mark.parametrize("learners", [1, 2])
def test_step_graph_body_equals_the_plain_loop(
    cls: type, extra: dict[str, Any], updates_per_step: int, learners: int
) -> None:
    """What ``softac.accel.step_graph`` captures, run eagerly, against the plain path on a twin:
    append the step's rows → the updates → the next behaviour action. Same actions, same learned
    state, same replay buffer, step after step (the CUDA test below checks the captured graph)."""
    from softac.accel.step_graph import StepGraph

    seeds = list(range(5, 5 + learners))
    graph_agent, plain = (cls(_env(cls), **TINY, seeds=seeds, **extra) for _ in range(2))
    for agent in (graph_agent, plain):
        fill_buffer(agent, 300)
        agent.env_steps = agent.config.learning_starts  # acting from the policy from now on
    step_graph = StepGraph(graph_agent, rows_per_learner=1, capture=not on_cpu())
    for t in range(7):
        graph_agent.env_steps += 1  # as the trainer counts the step before its device work
        plain.env_steps += 1
        rows = seed_rows(graph_agent, 0, 1, seed=100 + t)[None].repeat(learners, axis=0)
        phases = tuple(graph_agent.update_phase(graph_agent.updates + i) for i in range(updates_per_step))
        action, metrics = step_graph(rows, phases)
        plain.buffer.add_all(rows)
        for _ in range(updates_per_step):
            plain_metrics = plain.update()
        next_obs = rows[..., -plain.spec.obs_dim :]
        expected = plain.explore(next_obs)
        np.testing.assert_allclose(action, expected, rtol=1e-5, atol=1e-6, err_msg=f"step {t}")
        assert graph_agent.updates == plain.updates
        _assert_states_close(state_tensors(graph_agent), state_tensors(plain), 1e-5, 1e-6)
        if updates_per_step:
            for key in metrics:
                torch.testing.assert_close(metrics[key], plain_metrics[key], rtol=1e-5, atol=1e-6)
    for a, b in ((graph_agent.buffer, plain.buffer),):
        assert (a.size == b.size).all() and (a.cursor == b.cursor).all()
        filled = int(a.size.max())
        assert torch.equal(a.storage[:, :filled], b.storage[:, :filled]) and torch.equal(a.size_t, b.size_t)
        assert int(a.cursor_t) == int(b.cursor_t) == int(a.cursor[0])


@pytest.mark.skipif(DEVICE == "cpu", reason="CUDA graphs need a CUDA device (run with --device cuda)")
@pytest.mark.parametrize("cls", [SAC, TD3, DQN, DiscreteSAC])
def test_training_with_step_graphs_equals_training_without(cls: type) -> None:
    """A whole CUDA training run (episode ends, evaluation, the plain path on reset steps) with and
    without graphs: the same parameters to float tolerance after 300 updates (DQN: its ε decays
    over the whole run and its target is copied every 50 steps)."""
    runs = []
    extra: dict[str, Any] = {}
    if cls is DQN:
        extra = {"utd_ratio": 1.0, "target_update_interval": 50, "exploration_fraction": 1.0}
    for graphs in (True, False):
        agent = cls(_env(cls), **{**TINY, "cuda_graph": graphs}, learning_starts=100, total_steps=400,
                    eval_freq=400, **extra)  # fmt: skip
        agent.learn(progress=False)
        assert agent.updates == 300
        runs.append(state_tensors(agent))
    _assert_states_close(runs[0], runs[1], rtol=1e-3, atol=1e-4)
