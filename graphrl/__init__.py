"""graphrl: relational deep learning and reinforcement learning on entity graphs.

Subpackages: :mod:`graphrl.graphs` (observations to entity graphs), :mod:`graphrl.nn`
(message-passing layers, processor, readouts, recurrent cores), :mod:`graphrl.models`
(backbones, heads, agents, the supervised classifier), :mod:`graphrl.rl` (PPO, A2C, rollouts,
evaluation) and :mod:`graphrl.envs` (Box-World, MiniGrid, making any env by id).
"""

__version__ = "0.1.0"
