"""Models: backbones, heads, and the LightningModules that train them."""

from graphrl.models.actor_critic import GraphActorCritic
from graphrl.models.backbones import BackboneOutput, GraphBackbone, LSTMBackbone, MLPBackbone
from graphrl.models.heads import LabelHead, PointerHead
from graphrl.models.mott import MottAttentionAgent
from graphrl.models.recurrent_actor_critic import RecurrentActorCritic
from graphrl.models.relational_classifier import RelationalClassifier

__all__ = [
    "BackboneOutput",
    "GraphActorCritic",
    "GraphBackbone",
    "LSTMBackbone",
    "LabelHead",
    "MLPBackbone",
    "MottAttentionAgent",
    "PointerHead",
    "RecurrentActorCritic",
    "RelationalClassifier",
]
