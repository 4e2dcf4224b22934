"""Networks: batched MLPs (a group axis for members and learners), the fused CPU layer stack, and
the policies and critics built on them."""

from softac.nn.actor_critic import ActorCritic
from softac.nn.batched import BatchedMLP
from softac.nn.discrete import CategoricalActor, DiscreteCriticEnsemble, QNetwork
from softac.nn.policies import CriticEnsemble, DeterministicActor, GaussianActor, Policy, make_trunk, numpy_forward
from softac.nn.simba import BatchedSimba

__all__ = [
    "ActorCritic", "BatchedMLP", "BatchedSimba", "CategoricalActor", "CriticEnsemble", "DeterministicActor",
    "DiscreteCriticEnsemble", "GaussianActor", "Policy", "QNetwork", "make_trunk", "numpy_forward",
]  # fmt: skip
