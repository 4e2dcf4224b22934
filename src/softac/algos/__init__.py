"""The algorithms. Importing this package registers each of them in ``softac.registry``."""

from softac.algos.base import Agent
from softac.algos.crossq import CrossQ, CrossQConfig
from softac.algos.discrete_sac import DiscreteSAC, DiscreteSACConfig
from softac.algos.dqn import DQN, DQNConfig
from softac.algos.offpolicy import OffPolicyAgent
from softac.algos.onpolicy import OnPolicyAgent
from softac.algos.ppo import PPO, PPOConfig
from softac.algos.sac import SAC, SACConfig
from softac.algos.td3 import DDPG, TD3, DDPGConfig, TD3Config

__all__ = [
    "DDPG",
    "DQN",
    "PPO",
    "SAC",
    "TD3",
    "Agent",
    "CrossQ",
    "CrossQConfig",
    "DDPGConfig",
    "DQNConfig",
    "DiscreteSAC",
    "DiscreteSACConfig",
    "OffPolicyAgent",
    "OnPolicyAgent",
    "PPOConfig",
    "SACConfig",
    "TD3Config",
]  # fmt: skip
