"""Networks: batched MLPs (a group axis for members and learners), the fused CPU layer stack, and
the policies and critics built on them."""

from softac.nn.actor_critic import ActorCritic
from softac.nn.batched import BatchedMLP
from softac.nn.policies import CriticEnsemble, DeterministicActor, GaussianActor, Policy, numpy_forward

__all__ = [
    "ActorCritic", "BatchedMLP", "CriticEnsemble", "DeterministicActor", "GaussianActor", "Policy", "numpy_forward",
]  # fmt: skip
