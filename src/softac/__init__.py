"""softac: Soft Actor-Critic, TD3 and DDPG on PyTorch and Gymnasium."""

from softac.agents import DDPG, SAC, TD3, OffPolicyAgent
from softac.config import DDPGConfig, OffPolicyConfig, SACConfig, TD3Config
from softac.errors import DivergenceError, SoftacError

__version__ = "0.1.0"

__all__ = [
    "DDPG", "SAC", "TD3", "DDPGConfig", "DivergenceError", "OffPolicyAgent", "OffPolicyConfig",
    "SACConfig", "SoftacError", "TD3Config", "__version__",
]  # fmt: skip
