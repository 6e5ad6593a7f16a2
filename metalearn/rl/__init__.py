"""Reinforcement learning: rollouts, policy-gradient losses, MAML-RL's task sources and the
Meta-LSTM controller. The environment is :mod:`metalearn.envs`; the policy network
:mod:`metalearn.models.policy`."""

from metalearn.rl.controller import MetaLSTMController, run_controller, train_controller
from metalearn.rl.maml_rl import (
    MAMLRollouts,
    PolicyRollouts,
    adapt_by_policy_gradient,
    task_policy,
)
from metalearn.rl.policy_gradient import lvc_loss, reinforce_loss
from metalearn.rl.rollouts import Trajectories, rollout, rollout_transitions

__all__ = [
    "MAMLRollouts",
    "MetaLSTMController",
    "PolicyRollouts",
    "Trajectories",
    "adapt_by_policy_gradient",
    "lvc_loss",
    "reinforce_loss",
    "rollout",
    "rollout_transitions",
    "run_controller",
    "task_policy",
    "train_controller",
]
