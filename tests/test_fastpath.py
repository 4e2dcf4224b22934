"""The hand-written update (softac.fastpath) against the autograd reference, gradient by gradient.

Two agents with the same seed start identical; each update gets the same batch and the same
torch seed, one agent runs ``fast_update=True``, the other the autograd ``_update_reference``.
The gradients each optimizer is about to apply must agree to float32 rounding — comparing only
parameters after Adam would hide a wrong gradient scale, since Adam's first steps are close to
lr · sign(g) — and so must the parameters, targets, α and the logged metrics.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY, fill_buffer

from softac import DDPG, SAC, TD3
from softac.errors import SoftacError
from softac.fastpath import _Compiled
from softac.nn import adam, adam_step, adam_step_traceable, init_adam_state

CASES: list[tuple[type, str, dict[str, Any]]] = [
    (SAC, "Pendulum-v1", {}),
    (SAC, "Pendulum-v1", {"autotune_alpha": False, "alpha": 0.1}),
    (SAC, "Pendulum-v1", {"n_critics": 3, "hidden_sizes": (32, 16, 8)}),
    (SAC, "Pendulum-v1", {"log_std_min": 0.0, "log_std_max": 0.1}),  # the clamp's mask is in play
    (SAC, "HalfCheetah-v5", {"hidden_sizes": (64, 64)}),  # 6-dimensional actions
    (TD3, "Pendulum-v1", {}),
    (TD3, "HalfCheetah-v5", {"n_critics": 3, "hidden_sizes": (64, 64)}),
    (DDPG, "Pendulum-v1", {}),
]


def _agent(cls: type, env_id: str, fast: bool, extra: dict[str, Any]) -> Any:
    settings = {**TINY, "seed": 3, "learning_starts": 0, "fast_update": fast, **extra}
    agent = cls(env_id, **settings)
    fill_buffer(agent, 500, seed=0)
    return agent


def _grads(agent: Any, names: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for name in names:
        opt = agent.optimizers()[name]
        for g, group in enumerate(opt.param_groups):
            for i, p in enumerate(group["params"]):
                assert p.grad is not None, f"{name} group {g} param {i} has no gradient"
                out[f"{name}.{g}.{i}"] = p.grad.clone()
    return out


def _state(agent: Any) -> dict[str, torch.Tensor]:
    out = {f"{m}.{k}": v.clone() for m, mod in agent.modules().items() for k, v in mod.state_dict().items()}
    out.update({k: v.detach().clone() for k, v in agent.extra_tensors().items()})
    return out


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=2e-4, atol=2e-6, msg=lambda m, k=k: f"{what} {k}: {m}")


def _paired_updates(a: Any, b: Any, n: int = 4) -> Iterator[tuple[int, dict[str, Any], dict[str, Any]]]:
    """``n`` updates of two agents on the same batches with the same torch seed before each:
    yields (update number, a's metrics, b's metrics) after checking both counted it."""
    gen = torch.Generator().manual_seed(7)
    for step in range(1, n + 1):
        idx = torch.randint(0, len(a.buffer), (a.config.batch_size,), generator=gen)
        torch.manual_seed(100 + step)
        m_a = a.update(a.buffer.view(a.buffer.storage[idx]))
        torch.manual_seed(100 + step)
        m_b = b.update(b.buffer.view(b.buffer.storage[idx]))
        assert a.updates == b.updates == step
        yield step, m_a, m_b


@pytest.mark.parametrize(("cls", "env_id", "extra"), CASES, ids=[f"{c.__name__}-{e}-{x}" for c, e, x in CASES])
def test_fast_update_equals_autograd_reference(cls: type, env_id: str, extra: dict[str, Any]) -> None:
    fast, ref = _agent(cls, env_id, True, extra), _agent(cls, env_id, False, extra)
    _close(_state(fast), _state(ref), "initial state")
    delay = getattr(fast.config, "policy_delay", 1)
    for step, m_fast, m_ref in _paired_updates(fast, ref):
        # TD3 without an actor step this time: the critic's gradients only
        stepped = ["critic", "actor"] if step % delay == 0 else ["critic"]
        g_fast, g_ref = _grads(fast, stepped), _grads(ref, stepped)
        # the comparison has teeth: every compared gradient is a real, non-zero tensor
        assert all(v.abs().sum() > 0 for v in g_ref.values())
        _close(g_fast, g_ref, f"update {step} gradient")
        _close(_state(fast), _state(ref), f"after update {step}")
        _close({k: v.detach() for k, v in m_fast.items()}, {k: v.detach() for k, v in m_ref.items()}, "metric")
        assert set(m_fast) == set(m_ref)


def test_clamp_case_really_clamps() -> None:
    """The clamped-log-σ case above is only a test of the clamp's gradient mask if the raw log σ
    falls on both sides of the bounds for that batch."""
    agent = _agent(SAC, "Pendulum-v1", True, {"log_std_min": 0.0, "log_std_max": 0.1})
    raw = agent.actor.trunk(agent.buffer.storage[:64, :3])[:, 1]
    inside = (raw >= 0.0) & (raw <= 0.1)
    assert inside.any() and not inside.all()


def test_metrics_survive_later_updates() -> None:
    """Metrics are returned as tensors (no host sync) and logged later: they must not be views of
    the reused workspace buffers that the next update overwrites."""
    agent = _agent(SAC, "Pendulum-v1", True, {})
    first = agent.update(agent.buffer.sample(64))
    kept = {k: v.clone() for k, v in first.items()}
    for _ in range(3):
        agent.update(agent.buffer.sample(64))
    for k in kept:
        assert torch.equal(first[k], kept[k]), k


Tensors = list[torch.Tensor]


def _two_equal_adams() -> tuple[Tensors, Tensors, Tensors, torch.optim.Adam, torch.optim.Adam]:
    """Three initial values, two trainable copies of them, each with a fused Adam over two groups."""
    torch.manual_seed(0)
    base = [torch.randn(5, 3), torch.randn(3), torch.randn(())]
    ps_a = [p.clone().requires_grad_() for p in base]
    ps_b = [p.clone().requires_grad_() for p in base]
    opt_a = adam([{"params": ps_a[:2], "lr": 1e-2}, {"params": ps_a[2:], "lr": 3e-3}], 1e-2)
    opt_b = adam([{"params": ps_b[:2], "lr": 1e-2}, {"params": ps_b[2:], "lr": 3e-3}], 1e-2)
    return base, ps_a, ps_b, opt_a, opt_b


def test_adam_step_is_optimizer_step() -> None:
    """``adam_step`` calls the same fused kernel as ``Adam.step``: bit-identical results."""
    base, ps_a, ps_b, opt_a, opt_b = _two_equal_adams()
    for _ in range(4):
        for pa, pb in zip(ps_a, ps_b, strict=True):
            g = torch.randn_like(pa)
            pa.grad, pb.grad = g.clone(), g.clone()
        opt_a.step()
        adam_step(opt_b)
        for pa, pb in zip(ps_a, ps_b, strict=True):
            assert torch.equal(pa, pb)
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(opt_a.state[pa][key], opt_b.state[pb][key])
    assert not torch.equal(ps_a[0], base[0])  # the parameters did move


def _opt_state(agent: Any) -> dict[str, torch.Tensor]:
    out = {}
    for name, opt in agent.optimizers().items():
        for i, (p, st) in enumerate(opt.state.items()):
            out.update({f"{name}.{i}.{k}": v.clone() for k, v in st.items()})
            assert p.shape == st["exp_avg"].shape
    return out


COMPILED_CASES: list[tuple[type, dict[str, Any]]] = [(SAC, {}), (TD3, {"policy_delay": 2})]


@pytest.mark.parametrize(("cls", "extra"), COMPILED_CASES, ids=[c.__name__ for c, _ in COMPILED_CASES])
def test_compiled_update_equals_eager_fast_update(cls: type, extra: dict[str, Any]) -> None:
    """``compile_update``: the same inputs and random draws give the eager fast path's parameters,
    optimizer state and metrics, up to the rounding of fused kernels (Inductor reorders float ops),
    update after update — TD3's both graphs (critic every update, actor every second) included."""
    eager = _agent(cls, "Pendulum-v1", True, extra)
    comp = _agent(cls, "Pendulum-v1", True, {**extra, "compile_update": True})
    for step, m_eager, m_comp in _paired_updates(eager, comp):
        _close(_state(comp), _state(eager), f"after update {step}")
        # compiled: every optimizer's state exists from the start (zero moments, step 0), eager: from
        # its first step (TD3's actor at update 2); the states that exist on both sides must agree
        s_comp, s_eager = _opt_state(comp), _opt_state(eager)
        assert s_eager.keys() <= s_comp.keys()
        _close({k: s_comp[k] for k in s_eager}, s_eager, f"optimizer state after update {step}")
        _close({k: v.detach() for k, v in m_comp.items()}, {k: v.detach() for k, v in m_eager.items()}, "metric")
    # it really ran compiled, and the parameters really moved
    assert isinstance(comp._fast._critic if cls is TD3 else comp._fast._step, _Compiled)
    initial = _agent(cls, "Pendulum-v1", True, extra)
    assert not torch.equal(_state(comp)["actor.trunk.0.weight"], _state(initial)["actor.trunk.0.weight"])


def test_adam_step_traceable_matches_fused_adam() -> None:
    """The compile-friendly Adam is the fused kernel's formula: equal up to float32 rounding of the
    bias corrections (the fused kernel takes them in double), over steps and parameter groups."""
    base, ps_a, ps_b, opt_a, opt_b = _two_equal_adams()
    init_adam_state(opt_b)
    for _ in range(6):
        for pa, pb in zip(ps_a, ps_b, strict=True):
            g = torch.randn_like(pa)
            pa.grad, pb.grad = g.clone(), g.clone()
        opt_a.step()
        with torch.no_grad():
            adam_step_traceable(opt_b)
        for pa, pb in zip(ps_a, ps_b, strict=True):
            torch.testing.assert_close(pb, pa, rtol=1e-6, atol=1e-7)
            for key in ("step", "exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(opt_b.state[pb][key], opt_a.state[pa][key], rtol=1e-6, atol=1e-9)
    assert opt_b.state_dict()["state"].keys() == opt_a.state_dict()["state"].keys()
    assert not torch.equal(ps_b[0], base[0])


def test_compile_failure_is_one_clear_error_and_changes_nothing() -> None:
    """A graph that cannot be compiled (here: a forced graph break under fullgraph) is reported as
    a SoftacError naming the way out, raised before any of the function's in-place ops ran."""
    x = torch.zeros(3)

    def update(t: torch.Tensor) -> torch.Tensor:
        t.add_(1.0)
        torch._dynamo.graph_break()
        return t.mul_(2.0)

    with pytest.raises(SoftacError, match="run without --compile-update"):
        _Compiled(update)(x)
    assert torch.equal(x, torch.zeros(3))


def test_compile_update_needs_the_fast_update() -> None:
    with pytest.raises(SoftacError, match="compile_update"):
        SAC("Pendulum-v1", fast_update=False, compile_update=True)


def test_each_compiled_update_has_its_own_graph_cache() -> None:
    """Dynamo allows 8 compiled graphs per code object and guards each on the owner's objects: the
    compiled updates of more agents than that in one process (a sweep, this test session) must
    each get their own cache, not exceed the limit."""

    class Owner:
        def __init__(self) -> None:
            self.w = torch.ones(4)
            self.w.grad = torch.ones(4)
            self.opt = adam([self.w], 0.5)
            init_adam_state(self.opt)

        def step(self, x: torch.Tensor) -> torch.Tensor:
            adam_step_traceable(self.opt)  # guarded on this owner's optimizer object, as an update is
            return x * self.w

    for _ in range(10):
        owner = Owner()
        out = _Compiled(owner.step)(torch.full((4,), 2.0))
        assert torch.allclose(owner.w, torch.full((4,), 0.5)) and torch.allclose(out, torch.ones(4))


EXPLORE_CASES: list[tuple[type, str, dict[str, Any]]] = [
    (SAC, "HalfCheetah-v5", {"hidden_sizes": (64, 64)}),
    (SAC, "Pendulum-v1", {"log_std_min": -1.0, "log_std_max": 0.1}),  # both clamp bounds in play
    (TD3, "HalfCheetah-v5", {"hidden_sizes": (64, 64)}),
    (DDPG, "Pendulum-v1", {"exploration_noise": 0.0}),
]


@pytest.mark.parametrize(("cls", "env_id", "extra"), EXPLORE_CASES, ids=[c.__name__ for c, _, _ in EXPLORE_CASES])
def test_single_observation_explore_equals_the_torch_policy(cls: type, env_id: str, extra: dict[str, Any]) -> None:
    """The numpy acting path for one observation against ``_policy_action``: same actions to float32
    rounding, and the same numbers drawn from torch's generator (so runs and resumes are unchanged)."""
    agent = cls(env_id, **{**TINY, "seed": 1, "learning_starts": 0, **extra})
    with torch.no_grad():  # away from the initialisation: saturated tanh and clamped log σ occur
        for p in agent.actor.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    torch_policy = type(agent)._policy_action
    agent._policy_action = None  # explore must not fall back on the torch path
    rng = np.random.default_rng(0)
    for i in range(20):
        obs = (rng.normal(size=(1, agent.spec.obs_dim)) * 3.0).astype(np.float32)
        torch.manual_seed(i)
        fast = agent.explore(obs)
        fast_next = torch.randn(4)
        torch.manual_seed(i)
        with torch.no_grad():
            ref = torch_policy(agent, torch.from_numpy(obs), False).numpy()
        assert fast.dtype == np.float32 and fast.shape == ref.shape == (1, agent.spec.act_dim)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-5)  # sums of 64 products, other order
        assert torch.equal(fast_next, torch.randn(4)), "the two paths consumed different random numbers"
    assert np.abs(fast).max() <= 1.0


def _products(rows: int, sizes: list[int]) -> int:
    """Floating-point operations (2·rows·in·out per layer) of a forward pass through ``sizes``."""
    return sum(2 * rows * i * o for i, o in itertools.pairwise(sizes))


@pytest.mark.parametrize("cls", [SAC, TD3])
def test_fast_update_does_only_the_products_the_equations_need(cls: type) -> None:
    """The matrix-product FLOPs of one fast update, counted by ``FlopCounterMode`` on the real update,
    equal the hand count: no critic weight gradients in the actor step, no input gradient into
    the first layers, TD3's actor step through the first critic only, SAC's actor run once on
    [s′; s] (the same count as twice). ``benchmarks/floor.py`` divides this count by the
    machine's product rate."""
    from torch.utils.flop_counter import FlopCounterMode

    agent = _agent(cls, "HalfCheetah-v5", True, {"hidden_sizes": (32, 16)})
    agent.update(agent.buffer.sample(agent.config.batch_size))  # first update: optimizer state
    o, a, n, b = agent.spec.obs_dim, agent.spec.act_dim, agent.config.n_critics, agent.config.batch_size
    h1, h2 = agent.config.hidden_sizes
    critic = n * _products(b, [o + a, h1, h2, 1])  # one forward pass of the ensemble
    mid = 2 * b * h1 * h2  # the input gradient of the middle layer (the Q head's is a broadcast multiply)
    counts, actor_steps = [], []
    for _ in range(2):  # TD3: one update with the delayed actor step and one without
        actor_steps.append((agent.updates + 1) % getattr(agent.config, "policy_delay", 1) == 0)
        counter = FlopCounterMode(display=False)
        with counter:
            agent.update(agent.buffer.sample(b))
        counts.append(counter.get_total_flops())
    if cls is SAC:
        actor = [o, h1, h2, 2 * a]
        expected = (
            _products(2 * b, actor)  # ã′ and ã in one pass
            + 3 * critic  # target, critic step, actor step forwards
            + critic + n * mid  # critic step backward: weight gradients, middle input gradient
            + n * mid + n * 2 * b * h1 * a  # actor step through the critics: input gradients only
            + _products(b, actor) + 2 * b * h2 * 2 * a + 2 * b * h1 * h2  # actor backward
        )
        assert counts == [expected, expected]
    else:
        actor = [o, h1, h2, a]
        critic_update = _products(b, actor) + 3 * critic + n * mid
        first = critic // n
        actor_update = (
            _products(b, actor) + first + mid + 2 * b * h1 * a  # μ(s), Q_φ1 and its input gradient
            + _products(b, actor) + 2 * b * h2 * a + 2 * b * h1 * h2  # actor backward
        )  # fmt: skip
        assert sorted(actor_steps) == [False, True]
        assert counts == [critic_update + actor_update * step for step in actor_steps]
