"""Message-passing layers, the processor that stacks them, and readouts."""

from graphrl.nn.attention import AttentionLayer
from graphrl.nn.gcn import GCNLayer
from graphrl.nn.gnn import GNNLayer
from graphrl.nn.hypernetwork import HyperLinear, QuestionInput
from graphrl.nn.mott import MottQueryCore, spatial_basis
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
from graphrl.nn.recurrent import CORES, LSTMCore, RecurrentCore, build_core, select_state
from graphrl.nn.rgcn import RGCNLayer
from graphrl.nn.rmc import RelationalMemoryCore

__all__ = [
    "CORES",
    "LAYERS",
    "READOUTS",
    "AttentionLayer",
    "AttentionReadout",
    "GCNLayer",
    "GNNLayer",
    "HyperLinear",
    "LSTMCore",
    "MaxReadout",
    "MeanReadout",
    "MottQueryCore",
    "Processor",
    "ProcessorConfig",
    "QuestionInput",
    "RGCNLayer",
    "Readout",
    "RecurrentCore",
    "RelationalMemoryCore",
    "SumReadout",
    "build_core",
    "build_readout",
    "select_state",
    "spatial_basis",
]
