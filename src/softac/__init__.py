"""softac: Soft Actor-Critic and its family on PyTorch and Gymnasium."""

from softac.algos import (
    DDPG,
    DQN,
    PPO,
    SAC,
    TD3,
    Agent,
    CrossQ,
    CrossQConfig,
    DDPGConfig,
    DiscreteSAC,
    DiscreteSACConfig,
    DQNConfig,
    OffPolicyAgent,
    OnPolicyAgent,
    PPOConfig,
    SACConfig,
    TD3Config,
)
from softac.config import BaseConfig, OffPolicyConfig, OnPolicyConfig
from softac.errors import DivergenceError, SoftacError
from softac.train.callbacks import (
    Callback,
    CallbackInfo,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)

__version__ = "0.4.0"

__all__ = [
    "DDPG", "DQN", "PPO", "SAC", "TD3", "Agent", "BaseConfig", "Callback", "CallbackInfo", "CrossQ", "CrossQConfig",
    "DDPGConfig", "DQNConfig", "DiscreteSAC",
    "DiscreteSACConfig", "DivergenceError", "OffPolicyAgent", "OffPolicyConfig", "OnPolicyAgent", "OnPolicyConfig",
    "PPOConfig", "SACConfig", "SoftacError", "StopTrainingOnNoModelImprovement", "StopTrainingOnRewardThreshold",
    "TD3Config", "__version__",
]  # fmt: skip
