"""Models: backbones, heads, and the LightningModules that train them."""

from graphrl.models.backbones import BackboneOutput, GraphBackbone, LSTMBackbone, MLPBackbone
from graphrl.models.heads import LabelHead, PointerHead
from graphrl.models.relational_classifier import RelationalClassifier

__all__ = [
    "BackboneOutput",
    "GraphBackbone",
    "LSTMBackbone",
    "LabelHead",
    "MLPBackbone",
    "PointerHead",
    "RelationalClassifier",
]
