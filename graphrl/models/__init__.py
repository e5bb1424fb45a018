"""Models: the agent and its parts (backbones, heads, action distributions), and the supervised
LightningModule."""

from graphrl.models.action_heads import (
    CategoricalHead,
    GaussianHead,
    MultiCategoricalHead,
    PointerActionHead,
    build_action_head,
)
from graphrl.models.agent import ActorCritic
from graphrl.models.backbones import BackboneOutput, GraphBackbone
from graphrl.models.distributions import ActionSpec
from graphrl.models.heads import LabelHead, PointerHead
from graphrl.models.legacy import GraphActorCritic, MottAttentionAgent, RecurrentActorCritic
from graphrl.models.policy_backbones import (
    CNNBackbone,
    FlatBackbone,
    ObservationLayout,
    RelationalBackbone,
)
from graphrl.models.recurrent_backbone import RecurrentBackbone
from graphrl.models.relational_classifier import RelationalClassifier
from graphrl.models.set_backbones import (
    SET_BACKBONES,
    LSTMBackbone,
    MLPBackbone,
    SetBackbone,
    SetSpec,
)

__all__ = [
    "SET_BACKBONES",
    "ActionSpec",
    "ActorCritic",
    "BackboneOutput",
    "CNNBackbone",
    "CategoricalHead",
    "FlatBackbone",
    "GaussianHead",
    "GraphActorCritic",
    "GraphBackbone",
    "LSTMBackbone",
    "LabelHead",
    "MLPBackbone",
    "MottAttentionAgent",
    "MultiCategoricalHead",
    "ObservationLayout",
    "PointerActionHead",
    "PointerHead",
    "RecurrentActorCritic",
    "RecurrentBackbone",
    "RelationalBackbone",
    "RelationalClassifier",
    "SetBackbone",
    "SetSpec",
    "build_action_head",
]
