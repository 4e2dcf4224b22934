"""Data the agents learn from: replay and rollout storage, and the observation normaliser."""
