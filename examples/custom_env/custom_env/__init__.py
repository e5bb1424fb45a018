"""A user's package: an entity-set env and a topology, plugged into graphrl without editing it.

Importing the package registers the env id ``Nearest-v0`` with gymnasium (so graphrl takes
``custom_env:Nearest-v0``, which makes gymnasium import this package first) and the topology
``nearest_in_plane`` with graphrl's topology registry.
"""

import gymnasium as gym

from custom_env.envs import NearestEnv
from custom_env.topology import NearestInPlane

gym.register("Nearest-v0", entry_point=NearestEnv)

__all__ = ["NearestEnv", "NearestInPlane"]
