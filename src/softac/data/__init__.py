"""Training data: the replay buffer (off-policy), rollouts and observation statistics (on-policy)."""
