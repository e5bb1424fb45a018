"""On-policy reinforcement learning: RL math, rollout collection, PPO / A2C LightningModules."""

from graphrl.rl.a2c import A2C
from graphrl.rl.evaluation import evaluate_policy
from graphrl.rl.functional import (
    a2c_policy_loss,
    compute_gae,
    explained_variance,
    normalize_advantages,
    ppo_policy_loss,
    value_loss,
)
from graphrl.rl.on_policy import OnPolicyModule
from graphrl.rl.policies import ActorCriticPolicy, CNNPolicy, MLPPolicy, PolicyFactory
from graphrl.rl.ppo import PPO
from graphrl.rl.rollout import (
    EpisodeStats,
    EpisodeTracker,
    RolloutBuffer,
    RolloutCollector,
    Transitions,
)

__all__ = [
    "A2C",
    "PPO",
    "ActorCriticPolicy",
    "CNNPolicy",
    "EpisodeStats",
    "EpisodeTracker",
    "MLPPolicy",
    "OnPolicyModule",
    "PolicyFactory",
    "RolloutBuffer",
    "RolloutCollector",
    "Transitions",
    "a2c_policy_loss",
    "compute_gae",
    "evaluate_policy",
    "explained_variance",
    "normalize_advantages",
    "ppo_policy_loss",
    "value_loss",
]
