"""Benchmark graphrl's layers and graph building against their references, side by side.

Every comparison runs ``ours`` and ``reference`` in this one process, interleaved (A B A B ...,
alternating which goes first) so that the VM's drift hits both alike, after a warm-up; each
figure is the median over the repeats of the mean time of a block of calls. Layers are timed
forward + backward with the input requiring grad; graph building is forward only, with the
edge list materialised (except the ``lazy`` line, which leaves it unbuilt as the dense
attention path does).

Output: one JSON line per comparison, ``{"name", "ours_s", "reference_s", "ratio"}`` with
``ratio = ours_s / reference_s``, lower is better for graphrl whatever the name's word order
(``pyg_transformerconv_n49_vs_ours``: ours = graphrl's dense path, reference = PyG), then a
markdown table.

On a shared machine, use ``--threads 1``: with more threads than free cores, OpenMP's waiting
threads make single calls 10-100x slower at random, and ratios meaningless.

Usage::

    python scripts/bench_layers.py            # B=64, d=64, the full set
    python scripts/bench_layers.py --quick    # a smoke run (tiny batch, one repeat)
    python scripts/bench_layers.py --threads 1 --only rgcn,build
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import RGCNConv, TransformerConv

from graphrl.graphs import EntityGraph, build_topology, grid_positions
from graphrl.nn import AttentionLayer, RelationalMemoryCore, RGCNLayer

ATTENTION_SIZES = (16, 49, 100, 196)
HEADS = 4


@dataclass
class Comparison:
    """One benchmark line: graphrl's callable against a reference callable."""

    name: str
    ours: Callable[[], object]
    reference: Callable[[], object]
    target: float | None = None  # the ratio to stay at or under, if any

    def measure(self, repeats: int, block_s: float) -> dict[str, float | str]:
        fns = {"ours": self.ours, "reference": self.reference}
        calls = {key: _calls_per_block(fn, block_s) for key, fn in fns.items()}
        times: dict[str, list[float]] = {key: [] for key in fns}
        for r in range(repeats):
            order = list(fns) if r % 2 == 0 else list(reversed(fns))
            for key in order:
                _sync()
                start = time.perf_counter()
                for _ in range(calls[key]):
                    fns[key]()
                _sync()
                times[key].append((time.perf_counter() - start) / calls[key])
        ours, ref = statistics.median(times["ours"]), statistics.median(times["reference"])
        return {"name": self.name, "ours_s": ours, "reference_s": ref, "ratio": ours / ref}


def _sync() -> None:
    """Wait for queued CUDA kernels, so that a timed block holds its own work (no-op on CPU)."""
    if torch.cuda.is_available() and torch.get_default_device().type == "cuda":
        torch.cuda.synchronize()


def _calls_per_block(fn: Callable[[], object], block_s: float) -> int:
    """Warm up ``fn`` and return how many calls fill about ``block_s`` seconds."""
    for _ in range(2):
        fn()
    _sync()
    start = time.perf_counter()
    fn()
    _sync()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, round(block_s / once))


def _fwd_bwd(fn: Callable[[], Tensor]) -> Callable[[], None]:
    """Forward then backward through a scalar (``sum``) of the output."""

    def step() -> None:
        fn().sum().backward()

    return step


def _mha_weights(layer: AttentionLayer, mha: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        mha.in_proj_weight.copy_(layer.in_proj.weight)
        mha.in_proj_bias.copy_(layer.in_proj.bias)
        mha.out_proj.weight.copy_(layer.out_proj.weight)
        mha.out_proj.bias.copy_(layer.out_proj.bias)


def _set_graph(batch: int, n: int, dim: int, topology: str, **kwargs) -> EntityGraph:
    graph = EntityGraph(
        x=torch.randn(batch * n, dim),
        pos=torch.rand(batch * n, 2),
        mask=torch.ones(batch, n, dtype=torch.bool),
        num_graphs=batch,
    )
    return build_topology(topology, **kwargs)(graph)


def _grid_graph(batch: int, h: int, w: int, dim: int, topology: str, **kwargs) -> EntityGraph:
    graph = EntityGraph(
        x=torch.randn(batch * h * w, dim),
        pos=grid_positions(h, w).repeat(batch, 1),
        mask=torch.ones(batch, h * w, dtype=torch.bool),
        num_graphs=batch,
        grid_shape=(h, w),
    )
    return build_topology(topology, **kwargs)(graph)


def attention_comparisons(batch: int, dim: int, sizes: Sequence[int]) -> list[Comparison]:
    """The attention block and the full layer on complete graphs vs ``torch.nn`` modules."""
    out = []
    for n in sizes:
        layer = AttentionLayer(dim, heads=HEADS)
        mha = nn.MultiheadAttention(dim, HEADS, batch_first=True)
        _mha_weights(layer, mha)
        x = torch.randn(batch, n, dim, requires_grad=True)
        out.append(
            Comparison(
                f"attention_complete_n{n}_vs_mha",
                _fwd_bwd(lambda layer=layer, x=x: layer.attend_dense(x)),
                _fwd_bwd(lambda mha=mha, x=x: mha(x, x, x, need_weights=False)[0]),
                target=1.0,
            )
        )
        # The whole relational block, LN(h + g(h)) with h = LN(x + MHA(x)), is exactly a
        # post-norm TransformerEncoderLayer with a D-wide ReLU feed-forward.
        graph = _set_graph(batch, n, dim, "complete")
        x_flat = torch.randn(batch * n, dim, requires_grad=True)
        encoder_layer = nn.TransformerEncoderLayer(
            dim, HEADS, dim_feedforward=dim, dropout=0.0, batch_first=True
        )
        out.append(
            Comparison(
                f"attention_layer_complete_n{n}_vs_transformer_encoder_layer",
                _fwd_bwd(lambda layer=layer, g=graph, x=x_flat: layer.forward_graph(g, x)),
                _fwd_bwd(lambda enc=encoder_layer, x=x: enc(x)),
                target=1.0,
            )
        )
    return out


def attention_context(batch: int, dim: int) -> list[Comparison]:
    """Sparse (edge-list) vs dense path, and PyG's TransformerConv, on complete graphs, N=49."""
    n = 49
    layer = AttentionLayer(dim, heads=HEADS)
    graph = _set_graph(batch, n, dim, "complete")
    edge_index = graph.edge_index
    x_flat = torch.randn(batch * n, dim, requires_grad=True)
    x = x_flat.detach().view(batch, n, dim).requires_grad_()
    pyg = TransformerConv(dim, dim // HEADS, heads=HEADS, root_weight=False)
    return [
        Comparison(
            f"attention_complete_n{n}_sparse_vs_dense",
            _fwd_bwd(lambda: layer.attend_sparse(x_flat, edge_index)),
            _fwd_bwd(lambda: layer.attend_dense(x)),
        ),
        Comparison(  # ours = graphrl's dense path, reference = PyG
            f"pyg_transformerconv_n{n}_vs_ours",
            _fwd_bwd(lambda: layer.attend_dense(x)),
            _fwd_bwd(lambda: pyg(x_flat, edge_index)),
        ),
    ]


def rgcn_comparisons(batch: int, dim: int) -> list[Comparison]:
    """R-GCN on the ``relative`` 3x3 topology of a 7x7 grid vs ``Conv2d`` (and PyG)."""
    h = w = 7
    graph = _grid_graph(batch, h, w, dim, "relative", kernel_size=3)
    graph.edge_types()  # edges built once, as a model's K layers share them
    layer = RGCNLayer(dim, dim, num_relations=9, root_weight=False)
    conv = nn.Conv2d(dim, dim, 3, padding=1)
    x = torch.randn(batch * h * w, dim, requires_grad=True)
    fmap = torch.randn(batch, dim, h, w, requires_grad=True)
    ours = _fwd_bwd(lambda: layer.forward_graph(graph, x))
    pyg = RGCNConv(dim, dim, 9, aggr="add", root_weight=False)
    edge_index, edge_type = graph.edge_index, graph.edge_type
    return [
        Comparison("rgcn_relative3_vs_conv2d", ours, _fwd_bwd(lambda: conv(fmap)), target=1.5),
        Comparison(
            "rgcn_relative3_vs_pyg_rgcnconv",
            ours,
            _fwd_bwd(lambda: pyg(x, edge_index, edge_type)),
        ),
    ]


def rmc_comparisons(batch: int, dim: int, steps: int = 32) -> list[Comparison]:
    """The RMC unrolled over ``steps`` steps vs ``nn.LSTM`` with the same state size.

    RMC: 4 slots of width ``d`` (4 heads), so its state ``S * d`` is the LSTM's hidden size;
    both read ``d``-wide inputs and are timed forward + backward through every output. The
    RMC unrolls as it does in training, one autograd step per time step: eager (the default)
    and with ``compile_steps=True`` (the step through ``torch.compile``; the compiling falls in
    the warm-up calls, not in the timing).

    On CPU ``nn.LSTM`` runs as one fused oneDNN primitive per direction (``mkldnn_rnn_layer``
    and its backward: two kernels for the whole sequence). The ``unfused`` line, for context
    and with no target, times it with oneDNN switched off: torch's per-step composite LSTM,
    built from the same kind of small kernels as the RMC.
    """
    slots = 4
    rmc = RelationalMemoryCore(dim, mem_slots=slots, head_size=dim // HEADS, heads=HEADS)
    compiled = RelationalMemoryCore(
        dim, mem_slots=slots, head_size=dim // HEADS, heads=HEADS, compile_steps=True
    )
    compiled.load_state_dict(rmc.state_dict())
    lstm = nn.LSTM(dim, slots * dim)
    xs = torch.randn(steps, batch, dim, requires_grad=True)
    state = rmc.initial_state(batch)
    ours, reference = _fwd_bwd(lambda: rmc.unroll(xs, state)[0]), _fwd_bwd(lambda: lstm(xs)[0])
    ours_compiled = _fwd_bwd(lambda: compiled.unroll(xs, state)[0])
    return [
        Comparison(f"rmc_vs_lstm_t{steps}", ours, reference, target=2.0),
        Comparison(f"rmc_compiled_vs_lstm_t{steps}", ours_compiled, reference, target=2.0),
        Comparison(f"rmc_vs_lstm_unfused_t{steps}", ours, _without_onednn(reference)),
    ]


def _without_onednn(fn: Callable[[], None]) -> Callable[[], None]:
    """``fn`` run with oneDNN (mkldnn) off: ``nn.LSTM`` then takes torch's composite path."""

    def call() -> None:
        with torch.backends.mkldnn.flags(enabled=False):
            fn()

    return call


def build_comparisons(batch: int, dim: int) -> list[Comparison]:
    """Building a batch's edges: cached template + offsets vs per-sample ``Data`` + ``Batch``.

    The reference gets the best case of the per-sample way: each sample's edges come from a
    precomputed template, so only ``Data`` construction and ``Batch.from_data_list`` remain.
    Ours keeps the batch's edge list per ``(B, N)`` (every rollout step and minibatch has the
    same shapes); the ``new_shape`` line empties that cache before every call (the one
    broadcast ``[2, B * E0]`` expression), and the ``lazy`` line leaves the edge list unbuilt,
    as the dense attention path does.
    """
    n, grid = 49, (7, 7)
    x = torch.randn(batch * n, dim)
    pos = grid_positions(*grid).repeat(batch, 1)
    mask = torch.ones(batch, n, dtype=torch.bool)
    xs, ps = x.view(batch, n, dim), pos.view(batch, n, 2)
    out = []
    for name, topology, materialise, new_shape in (
        ("build_complete_n49_vs_per_sample", build_topology("complete"), True, False),
        ("build_complete_n49_new_shape_vs_per_sample", build_topology("complete"), True, True),
        (
            "build_relative3_7x7_vs_per_sample",
            build_topology("relative", kernel_size=3),
            True,
            False,
        ),
        ("build_complete_n49_lazy_vs_per_sample", build_topology("complete"), False, False),
    ):

        def ours(topology=topology, materialise=materialise, new_shape=new_shape) -> object:
            if new_shape:
                topology._batch_cache.clear()
            graph = topology(
                EntityGraph(x=x, pos=pos, mask=mask, num_graphs=batch, grid_shape=grid)
            )
            return (graph.edge_index, graph.edge_types()) if materialise else graph

        single = topology(
            EntityGraph(x=x[:n], pos=pos[:n], mask=mask[:1], num_graphs=1, grid_shape=grid)
        )
        extra = {} if single.edge_types() is None else {"edge_type": single.edge_type}

        def reference(template=single.edge_index, extra=extra) -> object:
            data = [Data(x=xs[b], edge_index=template, pos=ps[b], **extra) for b in range(batch)]
            return Batch.from_data_list(data)

        target = 0.05 if materialise and not new_shape else None
        out.append(Comparison(name, ours, reference, target=target))
    return out


def markdown_table(results: list[dict], targets: dict[str, float | None], header: str) -> str:
    lines = [
        header,
        "",
        "| comparison | ours (ms) | reference (ms) | ratio | target |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        target = targets[r["name"]]
        verdict = (
            "" if target is None else f"<= {target:g} {'ok' if r['ratio'] <= target else 'MISSED'}"
        )
        lines.append(
            f"| {r['name']} | {r['ours_s'] * 1e3:.3f} | {r['reference_s'] * 1e3:.3f} "
            f"| {r['ratio']:.3f} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (for tests)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--batch", type=int, default=64, help="graphs per batch B")
    parser.add_argument("--dim", type=int, default=64, help="node width d")
    parser.add_argument("--repeats", type=int, default=15, help="timed blocks per side")
    parser.add_argument("--block", type=float, default=0.05, help="seconds per timed block")
    parser.add_argument(
        "--only", default="", help="comma-separated substrings: run the comparisons that match"
    )
    parser.add_argument(
        "--device", default="cpu", help="where tensors and modules are made (cpu, cuda)"
    )
    args = parser.parse_args(argv)
    torch.set_default_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.batch, args.repeats, args.block = 2, 1, 0.0
    torch.manual_seed(0)

    comparisons = [
        *attention_comparisons(args.batch, args.dim, ATTENTION_SIZES),
        *attention_context(args.batch, args.dim),
        *rgcn_comparisons(args.batch, args.dim),
        *rmc_comparisons(args.batch, args.dim),
        *build_comparisons(args.batch, args.dim),
    ]
    if args.only:
        keys = args.only.split(",")
        comparisons = [c for c in comparisons if any(key in c.name for key in keys)]
    results = []
    for comparison in comparisons:
        result = comparison.measure(args.repeats, args.block)
        print(json.dumps(result), flush=True)
        results.append(result)
    header = (
        f"B={args.batch}, d={args.dim}, heads={HEADS}, torch {torch.__version__}, {args.device}, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeats} interleaved blocks; "
        "layers fwd+bwd, builds forward with edges materialised; ratio = ours / reference"
    )
    print()
    print(markdown_table(results, {c.name: c.target for c in comparisons}, header))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
