"""Hand-written forward and backward passes of the SAC and TD3/DDPG updates (the fast path).

The autograd updates in ``agents/sac.py`` and ``agents/td3.py`` are the readable reference. On a
2-core CPU they spend more time on everything else than on their matrix products (≈7 of ≈11.5 ms
for SAC on HalfCheetah): autograd bookkeeping, a fresh allocation for every activation and
gradient, and elementwise kernels on tensors that have just left the cache. The networks here
are always ReLU MLPs, whose backward pass is three lines per layer, so this module computes the
same gradients directly:

* every activation, gradient and weight-gradient lives in a buffer allocated once (``_Workspace``)
  and is written with ``out=``; the parameter ``.grad`` tensors are persistent and the existing
  fused Adam optimizers step on them (checkpoints and optimizer state are unchanged);
* SAC's actor runs once on the 2B rows [s' ; s] — the critic step needs ã' ~ π_θ(·|s') and the
  actor step ã ~ π_θ(·|s), both under the same θ (the actor is updated last) — so its forward
  pass is one product per layer instead of two;
* only the gradients the losses need are formed: no critic weight gradients in the actor step,
  and TD3's actor step runs the first critic only (its loss is −Q_φ1).

Equations (ReLU layer z = x W + b, h = relu(z), upstream gradient δ = ∂L/∂h):
    ∂L/∂W = xᵀ (δ ⊙ 1[h > 0]),   ∂L/∂b = Σ_rows δ ⊙ 1[h > 0],   ∂L/∂x = (δ ⊙ 1[h > 0]) Wᵀ.
SAC's squashed Gaussian, u = μ + σ ⊙ ξ, ã = tanh(u), log π = Σ[−ξ²/2 − log σ − log(2π)/2 − log(1 − ã²)]:
    ∂ã/∂u = 1 − ã²,   ∂ log π/∂u = 2 ã   (the derivative of −log(1 − tanh²u)),
    ∂u/∂μ = 1,   ∂u/∂log σ = σ ⊙ ξ,   ∂ log π/∂log σ |_u = −1 (with ξ fixed),
and the clamp of log σ passes gradient only inside [log_std_min, log_std_max].
The random draws happen in the same order as in the reference, so with the same seed the two
paths produce the same parameters up to floating-point rounding (``tests/test_fastpath.py``).

``compile_update=True`` runs the same code under ``torch.compile`` (see ``_Compiled``): the draws
stay eager, the workspace becomes graph-local and Adam is written in traceable foreach ops. On the
2-core CPU it removes ≈1 ms of the ≈1.7 ms per-update overhead of SAC's eager fast path (the
8×8-network rows of ``benchmarks/update_time.py``) but not the matrix products, which dominate.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from softac.distributions import squashed_gaussian_rsample
from softac.errors import SoftacError
from softac.losses import sac as LS
from softac.losses import td3 as LT
from softac.losses.common import critic_loss
from softac.nn import adam_step, adam_step_traceable, init_adam_state, polyak_update

if TYPE_CHECKING:
    from softac.agents.sac import SAC
    from softac.agents.td3 import TD3
    from softac.buffer import Batch


class _Workspace:
    """Named buffers allocated on first use and reused by every later update of the same shape.

    Not persistent under ``torch.compile``: there every ``get`` is a fresh ``torch.empty`` inside
    the graph, whose memory Inductor plans itself; writing into tensors kept between calls would
    make them graph inputs that are mutated, i.e. extra copies at the end of every call."""

    def __init__(self, device: torch.device, persistent: bool = True) -> None:
        self.device = device
        self.persistent = persistent
        self._buffers: dict[str, Tensor] = {}

    def get(self, name: str, *shape: int) -> Tensor:
        if not self.persistent:
            return torch.empty(shape, dtype=torch.float32, device=self.device)
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = torch.empty(shape, dtype=torch.float32, device=self.device)
            self._buffers[name] = buf
        return buf


def _relu_backward_(grad: Tensor, output: Tensor) -> Tensor:
    """δ ← δ ⊙ 1[h > 0] in place (one kernel; ``output`` is the ReLU's output h)."""
    return torch.ops.aten.threshold_backward.grad_input(grad, output, 0.0, grad_input=grad)


def _persistent_grads(params: list[Tensor]) -> list[Tensor]:
    """One zero gradient tensor per parameter, attached as ``.grad`` (the optimizer reads it)."""
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    return grads


def _attach(params: list[Tensor], grads: list[Tensor]) -> None:
    # The autograd path's zero_grad(set_to_none=True) drops .grad; re-attach ours if it did.
    for p, g in zip(params, grads, strict=True):
        if p.grad is not g:
            p.grad = g


class _Ensemble:
    """Forward/backward of ``CriticEnsemble`` layers: weights (n, in, out), biases (n, 1, out),
    the last layer being the Q head (out = 1)."""

    def __init__(self, ws: _Workspace, name: str) -> None:
        self.ws, self.name = ws, name

    def forward(self, weights: list[Tensor], biases: list[Tensor], x_in: Tensor) -> list[Tensor]:
        """[x₀, h₁, …, q] with x₀ the (n, B, in) broadcast input and q the (n, 1, B) values."""
        n, rows = weights[0].shape[0], x_in.shape[0]
        x = x_in.expand(n, *x_in.shape)
        acts = [x]
        last = len(weights) - 1
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            if i == last:
                # The Q head (in → 1) as qᵀ = wᵀ xᵀ, shape (n, 1, B): BLAS runs the (B, in) × (in, 1)
                # product as a slow thin matmul (≈100 µs here), the transposed one in ≈40 µs.
                if self.ws.persistent:
                    out = self.ws.get(f"{self.name}.q", n, 1, rows)
                    torch.baddbmm(b, w.transpose(1, 2), x.transpose(1, 2), out=out)
                else:
                    out = torch.bmm(w.transpose(1, 2), x.transpose(1, 2)) + b
            elif self.ws.persistent:
                out = self.ws.get(f"{self.name}.h{i}", n, rows, w.shape[2])
                torch.baddbmm(b, x, w, out=out)
                out.relu_()
            else:
                # Compiled: the product alone, the bias in the ReLU's loop. ``baddbmm`` would first
                # copy the broadcast bias into its output (a full pass over it) for BLAS to add to.
                out = torch.relu(torch.bmm(x, w) + b)
            acts.append(out)
            x = out
        return acts

    def backward(
        self,
        weights: list[Tensor],
        acts: list[Tensor],
        d_out: Tensor,
        grad_w: list[Tensor] | None,
        grad_b: list[Tensor] | None,
        input_cols: slice | None = None,
    ) -> Tensor | None:
        """Backward from ``d_out`` = ∂L/∂q of shape (n, B): weight gradients into ``grad_w``/``grad_b``
        (unless None) and, with ``input_cols``, the gradient of those input columns, summed over
        the members (the input was broadcast to all of them)."""
        last = len(weights) - 1
        n, rows = d_out.shape
        d = d_out.view(n, 1, rows)  # ∂L/∂qᵀ
        for i in range(last, -1, -1):
            x = acts[i]
            thin = i == last  # the Q head: d is (n, 1, B) here, (n, B, out) below
            if grad_w is not None and grad_b is not None:
                if thin:  # ∂L/∂w = xᵀ δ, written as its transpose δᵀ x (n, 1, in): same memory
                    torch.bmm(d, x, out=grad_w[i].view(n, 1, -1))
                    torch.sum(d, dim=2, keepdim=True, out=grad_b[i])
                else:
                    torch.bmm(x.transpose(1, 2), d, out=grad_w[i])
                    torch.sum(d, dim=1, keepdim=True, out=grad_b[i])
            if i > 0:
                d_prev = self.ws.get(f"{self.name}.d{i}", *x.shape)
                if thin:  # δ wᵀ with one output: an outer product, i.e. a broadcast multiply
                    torch.mul(d.transpose(1, 2), weights[i].transpose(1, 2), out=d_prev)
                else:
                    torch.bmm(d, weights[i].transpose(1, 2), out=d_prev)
                d = _relu_backward_(d_prev, x)
        if input_cols is None:
            return None
        w_in = weights[0][:, input_cols, :]
        d_in = self.ws.get(f"{self.name}.din", d.shape[0], d.shape[1], w_in.shape[1])
        torch.bmm(d, w_in.transpose(1, 2), out=d_in)
        return d_in.sum(0)


class _MLP:
    """Forward/backward of an ``nn.Sequential`` of Linear/ReLU (weights (out, in))."""

    def __init__(self, ws: _Workspace, name: str, module: nn.Module) -> None:
        self.ws, self.name = ws, name
        self.layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
        self.weights = [lin.weight for lin in self.layers]
        self.biases = [lin.bias for lin in self.layers]

    def forward(self, x: Tensor) -> list[Tensor]:
        """[x, h₁, …, output] (every tensor but x a workspace buffer)."""
        acts = [x]
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if self.ws.persistent:
                out = self.ws.get(f"{self.name}.h{i}", x.shape[0], w.shape[0])
                torch.addmm(b, acts[-1], w.t(), out=out)
                if i < last:
                    out.relu_()
            else:  # compiled: bias and ReLU in one loop after the product (see ``_Ensemble.forward``)
                out = torch.mm(acts[-1], w.t()) + b
                if i < last:
                    out = torch.relu(out)
            acts.append(out)
        return acts

    def backward(self, acts: list[Tensor], d_out: Tensor, grad_w: list[Tensor], grad_b: list[Tensor]) -> None:
        """Weight gradients for the rows of ``acts`` (views may select a subset of rows)."""
        d = d_out
        for i in range(len(self.weights) - 1, -1, -1):
            x = acts[i]
            torch.mm(d.t(), x, out=grad_w[i])
            torch.sum(d, dim=0, out=grad_b[i])
            if i > 0:
                d_prev = self.ws.get(f"{self.name}.d{i}", *x.shape)
                torch.mm(d, self.weights[i], out=d_prev)
                d = _relu_backward_(d_prev, x)


def _own_code(method: Callable[..., Any]) -> Callable[..., Any]:
    """The (bound) function over a private copy of its code object. Dynamo keeps compiled graphs per
    code object, at most 8 (``recompile_limit``), and every agent's graph is guarded on that agent's
    own tensors and optimizers: with one shared code object the ninth agent made in a process — a
    sweep, a test session — would exceed the limit, even after the first eight were freed."""
    func = method.__func__ if isinstance(method, types.MethodType) else method
    assert isinstance(func, types.FunctionType)
    code = func.__code__.replace()  # a new, equal code object: its own cache
    copy = types.FunctionType(code, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
    return types.MethodType(copy, method.__self__) if isinstance(method, types.MethodType) else copy


class _Compiled:
    """``fn`` under ``torch.compile`` (Inductor, one graph, static shapes). A failure to compile — no
    C++ compiler on a CPU machine, an op Inductor rejects — becomes one clear error; it happens
    while tracing, before the graph has run, so no parameter has changed."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = torch.compile(_own_code(fn), fullgraph=True, dynamic=False)
        self.ready = False

    def __call__(self, *args: Any) -> Any:
        if self.ready:
            return self.fn(*args)
        try:
            out = self.fn(*args)
        except Exception as exc:  # whatever the compiler raised: report it in one line, keep the chain
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise SoftacError(
                f"torch.compile could not compile the update ({first}); run without --compile-update"
            ) from exc
        self.ready = True
        return out


class _FastUpdate:
    """What both fast updates hold: the workspace, the actor and critic parameter lists with their
    persistent gradients, and the critic step (the same in SAC and TD3 once the target y is known).

    With ``compiled`` the tensor work of an update (everything but the random draws, which stay
    eager so that the random stream is the eager path's, and the Python counters) runs as one
    ``torch.compile`` graph: Inductor fuses the elementwise ops and Adam into a few C++ loops
    and calls the matrix products directly, which removes most of the per-op dispatch cost."""

    def __init__(self, agent: SAC | TD3, compiled: bool = False) -> None:
        self.agent = agent
        self.compiled = compiled
        self.ws = _Workspace(agent.device, persistent=not compiled)
        self.draws = _Workspace(agent.device)  # the eager random draws, kept between updates
        self._adam = adam_step_traceable if compiled else adam_step
        self.actor = _MLP(self.ws, "actor", agent.actor.trunk)
        self.critic = _Ensemble(self.ws, "critic")
        self.target = _Ensemble(self.ws, "target")
        self.cw = list(agent.critic.weights)
        self.cb = list(agent.critic.biases)
        self.tw = list(agent.critic_target.weights)
        self.tb = list(agent.critic_target.biases)
        self.critic_params = [*self.cw, *self.cb]
        self.critic_grads = _persistent_grads(self.critic_params)
        self.actor_params = [*self.actor.weights, *self.actor.biases]
        self.actor_grads = _persistent_grads(self.actor_params)

    def _maybe_compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not self.compiled:
            return fn
        for opt in self.agent.optimizers().values():
            init_adam_state(opt)  # the compiled graph updates the state, it cannot create it
        return _Compiled(fn)

    def _critic_step(self, batch: Batch, y: Tensor) -> tuple[Tensor, Tensor]:
        """Σ_j E[(Q_φj(s, a) − y)²]: forward, backward, Adam. Returns (loss, mean Q) for the logs."""
        c_acts = self.critic.forward(self.cw, self.cb, batch.obs_act)
        rows = batch.obs_act.shape[0]
        q = c_acts[-1].view(-1, rows)
        loss = critic_loss(q, y)
        q_mean = q.mean()  # now: the actor step reuses q's buffer
        d_q = (q - y).mul_(2.0 / rows)  # ∂/∂q_j of Σ_j mean_i (q_ji − y_i)²
        n_layers = len(self.cw)
        self.critic.backward(self.cw, c_acts, d_q, self.critic_grads[:n_layers], self.critic_grads[n_layers:])
        self._adam(self.agent.critic_opt)
        return loss, q_mean


class SACFastUpdate(_FastUpdate):
    """``SAC.update`` without autograd; same equations as ``SAC._update_reference``."""

    def __init__(self, agent: SAC, compiled: bool = False) -> None:
        super().__init__(agent, compiled)
        self.agent: SAC = agent
        self.alpha_params = [agent.log_alpha] if agent.config.autotune_alpha else []
        self.alpha_grads = _persistent_grads(self.alpha_params)
        self._step = self._maybe_compile(self._update)

    @torch.no_grad()
    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        _attach(self.critic_params + self.actor_params + self.alpha_params,
                self.critic_grads + self.actor_grads + self.alpha_grads)  # fmt: skip
        rows, a = batch.obs.shape[0], self.agent.spec.act_dim
        xi = self.draws.get("xi", 2 * rows, a)
        torch.randn(rows, a, out=xi[:rows])  # ξ' for ã' first, then ξ for ã: the reference's order
        torch.randn(rows, a, out=xi[rows:])
        metrics: dict[str, Tensor] = self._step(batch, xi)
        self.agent.updates += 1
        return metrics

    def _update(self, batch: Batch, xi: Tensor) -> dict[str, Tensor]:
        ag, cfg, ws = self.agent, self.agent.config, self.ws
        rows, o, a = batch.obs.shape[0], ag.spec.obs_dim, ag.spec.act_dim
        alpha = ag.log_alpha.detach().exp()

        # One actor pass over [s' ; s] (both under the current θ).
        obs2 = ws.get("obs2", 2 * rows, o)
        obs2[:rows].copy_(batch.next_obs)
        obs2[rows:].copy_(batch.obs)
        a_acts = self.actor.forward(obs2)
        head = a_acts[-1]
        mean, raw_log_std = head[:, :a], head[:, a:]
        log_std = raw_log_std.clamp(cfg.log_std_min, cfg.log_std_max)
        action, log_prob = squashed_gaussian_rsample(mean, log_std, noise=xi)

        # Critic: y = r + γ(1 − d)(min_j Q_targ,j(s', ã') − α log π(ã'|s')).
        t_in = ws.get("t_in", rows, o + a)
        t_in[:, :o].copy_(batch.next_obs)
        t_in[:, o:].copy_(action[:rows])
        next_q = self.target.forward(self.tw, self.tb, t_in)[-1].view(-1, rows)
        y = LS.soft_target(batch.reward, batch.terminated, cfg.gamma, next_q, log_prob[:rows], alpha)
        critic_loss, q_mean = self._critic_step(batch, y)

        # Actor: E[α log π(ã|s) − min_j Q_j(s, ã)] with the updated critics, weights held fixed.
        act_pi, log_prob_pi = action[rows:], log_prob[rows:]
        p_in = ws.get("p_in", rows, o + a)
        p_in[:, :o].copy_(batch.obs)
        p_in[:, o:].copy_(act_pi)
        p_acts = self.critic.forward(self.cw, self.cb, p_in)
        q_pi = p_acts[-1].view(-1, rows)
        q_min, which = q_pi.min(dim=0)
        actor_loss = (alpha * log_prob_pi - q_min).mean()
        d_qpi = torch.zeros_like(q_pi).scatter_(0, which.unsqueeze(0), -1.0 / rows)  # min routes to one member
        d_act = self.critic.backward(self.cw, p_acts, d_qpi, None, None, input_cols=slice(o, None))
        assert d_act is not None
        # Through ã = tanh(u) and log π: ∂L/∂u = ∂L/∂ã (1 − ã²) + (α/B) 2ã.
        d_u = d_act.mul_(1.0 - act_pi.square()).add_(act_pi * (2.0 / rows) * alpha)
        d_head = ws.get("d_head", rows, 2 * a)
        d_head[:, :a].copy_(d_u)
        std_xi = log_std[rows:].exp().mul_(xi[rows:])
        d_log_std = (d_u * std_xi).sub_(alpha / rows)  # ∂L/∂log σ = ∂L/∂u σξ − α/B
        raw = raw_log_std[rows:]
        inside = (raw >= cfg.log_std_min) & (raw <= cfg.log_std_max)
        d_head[:, a:].copy_(d_log_std.mul_(inside))
        n_lin = len(self.actor.weights)
        self.actor.backward([x[rows:] for x in a_acts], d_head, self.actor_grads[:n_lin], self.actor_grads[n_lin:])
        metrics = {
            "loss/critic": critic_loss,
            "loss/actor": actor_loss,
            "q/mean": q_mean,
            "policy/entropy": -log_prob_pi.mean(),
            "alpha": alpha,
        }
        if cfg.autotune_alpha:
            # J(α) = E[−log α (log π + H̄)]:  ∂J/∂log α = −E[log π + H̄].
            shifted = log_prob_pi + ag.target_entropy
            torch.mean(shifted, dim=0, out=self.alpha_grads[0]).neg_()
            metrics["loss/alpha"] = -(ag.log_alpha.detach() * shifted).mean()
        self._adam(ag.actor_opt)

        polyak_update(self.tw + self.tb, self.cw + self.cb, cfg.tau)
        return metrics


class TD3FastUpdate(_FastUpdate):
    """``TD3.update`` (and DDPG's) without autograd; same equations as ``TD3._update_reference``."""

    def __init__(self, agent: TD3, compiled: bool = False) -> None:
        super().__init__(agent, compiled)
        self.agent: TD3 = agent
        self.actor_target = _MLP(self.ws, "actor_target", agent.actor_target.trunk)
        self.critic_first = _Ensemble(self.ws, "critic1")
        self.actor_target_params = [*self.actor_target.weights, *self.actor_target.biases]
        # Two graphs: the critic step runs every update, the actor step every policy_delay-th.
        self._critic = self._maybe_compile(self._critic_update)
        self._actor = self._maybe_compile(self._actor_update)

    @torch.no_grad()
    def __call__(self, batch: Batch) -> dict[str, Tensor]:
        ag, cfg = self.agent, self.agent.config
        _attach(self.critic_params + self.actor_params, self.critic_grads + self.actor_grads)
        noise = None
        if cfg.target_noise > 0.0:  # ε ~ N(0, I), scaled in the update (the reference's randn_like)
            noise = self.draws.get("eps", batch.obs.shape[0], ag.spec.act_dim)
            torch.randn(noise.shape, out=noise)
        critic_loss, q_mean = self._critic(batch, noise)
        ag.updates += 1
        if ag.updates % cfg.policy_delay == 0:
            ag._last_actor_loss = self._actor(batch)
        return {"loss/critic": critic_loss, "loss/actor": ag._last_actor_loss, "q/mean": q_mean}

    def _critic_update(self, batch: Batch, noise: Tensor | None) -> tuple[Tensor, Tensor]:
        """y = r + γ(1 − d) min_j Q_targ,j(s', clip(μ_targ(s') + clip(σε, −c, c), −1, 1)), then the critic step."""
        ag, cfg, ws = self.agent, self.agent.config, self.ws
        rows, o = batch.obs.shape[0], ag.spec.obs_dim
        next_action = torch.tanh(self.actor_target.forward(batch.next_obs)[-1])
        if noise is not None:
            next_action = LT.smoothed_target_action(next_action, noise * cfg.target_noise, cfg.target_noise_clip)
        t_in = ws.get("t_in", rows, o + next_action.shape[1])
        t_in[:, :o].copy_(batch.next_obs)
        t_in[:, o:].copy_(next_action)
        next_q = self.target.forward(self.tw, self.tb, t_in)[-1].view(-1, rows)
        y = LT.target(batch.reward, batch.terminated, cfg.gamma, next_q)
        return self._critic_step(batch, y)

    def _actor_update(self, batch: Batch) -> Tensor:
        """−E[Q_φ1(s, μ_θ(s))] — only the first critic enters the loss, so only it runs — then the
        actor step and both Polyak updates. Returns the actor loss."""
        ag, cfg, ws = self.agent, self.agent.config, self.ws
        rows, o = batch.obs.shape[0], ag.spec.obs_dim
        a_acts = self.actor.forward(batch.obs)
        mu = torch.tanh(a_acts[-1])
        p_in = ws.get("p_in", rows, o + mu.shape[1])
        p_in[:, :o].copy_(batch.obs)
        p_in[:, o:].copy_(mu)
        w1 = [w[:1] for w in self.cw]
        p_acts = self.critic_first.forward(w1, [b[:1] for b in self.cb], p_in)
        q1 = p_acts[-1].view(rows)
        actor_loss = -q1.mean()
        d_q1 = ws.get("d_q1", 1, rows).fill_(-1.0 / rows)
        d_mu = self.critic_first.backward(w1, p_acts, d_q1, None, None, input_cols=slice(o, None))
        assert d_mu is not None
        d_pre = d_mu.mul_(1.0 - mu.square())  # through μ = tanh(pre)
        n_lin = len(self.actor.weights)
        self.actor.backward(a_acts, d_pre, self.actor_grads[:n_lin], self.actor_grads[n_lin:])
        self._adam(ag.actor_opt)
        polyak_update(self.tw + self.tb, self.cw + self.cb, cfg.tau)
        polyak_update(self.actor_target_params, self.actor_params, cfg.tau)
        return actor_loss
