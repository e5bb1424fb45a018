"""Message-passing layers, the processor that stacks them, and readouts."""

from graphrl.nn.attention import AttentionLayer
from graphrl.nn.gcn import GCNLayer
from graphrl.nn.gnn import GNNLayer
from graphrl.nn.hypernetwork import HyperLinear, QuestionInput
from graphrl.nn.processor import LAYERS, Processor, ProcessorConfig
from graphrl.nn.readout import (
    READOUTS,
    AttentionReadout,
    MaxReadout,
    MeanReadout,
    Readout,
    SumReadout,
    build_readout,
)
from graphrl.nn.rgcn import RGCNLayer
from graphrl.nn.rmc import RelationalMemoryCore

__all__ = [
    "LAYERS",
    "READOUTS",
    "AttentionLayer",
    "AttentionReadout",
    "GCNLayer",
    "GNNLayer",
    "HyperLinear",
    "MaxReadout",
    "MeanReadout",
    "Processor",
    "ProcessorConfig",
    "QuestionInput",
    "RGCNLayer",
    "Readout",
    "RelationalMemoryCore",
    "SumReadout",
    "build_readout",
]
