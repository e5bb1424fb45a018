"""Observations to entity graphs: the batch type, encoders, positional features, topologies."""

from graphrl.graphs.batch import EntityGraph, grid_positions
from graphrl.graphs.edge_features import EDGE_FEATURES, edge_feature_dim, pairwise_edge_features
from graphrl.graphs.encoders import (
    ENCODERS,
    EntitySet,
    GridEncoder,
    ObjectEncoder,
    PixelEncoder,
    SymbolEmbedding,
    VectorEncoder,
    build_encoder,
)
from graphrl.graphs.positional import GridPositional, sinusoidal_features
from graphrl.graphs.topologies import (
    KNN,
    TOPOLOGIES,
    Complete,
    CrissCross,
    Given,
    Grid4,
    Grid8,
    Memory,
    Radius,
    Relations,
    Relative,
    SelfOnly,
    Topology,
    build_topology,
)

__all__ = [
    "EDGE_FEATURES",
    "ENCODERS",
    "KNN",
    "TOPOLOGIES",
    "Complete",
    "CrissCross",
    "EntityGraph",
    "EntitySet",
    "Given",
    "Grid4",
    "Grid8",
    "GridEncoder",
    "GridPositional",
    "Memory",
    "ObjectEncoder",
    "PixelEncoder",
    "Radius",
    "Relations",
    "Relative",
    "SelfOnly",
    "SymbolEmbedding",
    "Topology",
    "VectorEncoder",
    "build_encoder",
    "build_topology",
    "edge_feature_dim",
    "grid_positions",
    "pairwise_edge_features",
    "sinusoidal_features",
]
