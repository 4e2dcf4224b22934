from softac.agents.base import OffPolicyAgent
from softac.agents.sac import SAC
from softac.agents.td3 import DDPG, TD3

AGENTS: dict[str, type[OffPolicyAgent]] = {"sac": SAC, "td3": TD3, "ddpg": DDPG}

__all__ = ["AGENTS", "DDPG", "SAC", "TD3", "OffPolicyAgent"]
