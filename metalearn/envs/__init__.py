"""Environments: batched task families for reinforcement learning."""

from metalearn.envs.navigation import Navigation2D, Step

__all__ = ["Navigation2D", "Step"]
