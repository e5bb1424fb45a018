"""RelationalClassifier: shapes per injected backbone and answer, the data sizes the backbone is
built from, pointer masking, per-question-type metrics,
attention maps in TensorBoard, the NaN-loss error, learning, and the pieces it relies on
(``WarmupCosineLR``, attention with edge features in the messages)."""

from __future__ import annotations

import functools
import math

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from datamodules import NthFarthestDataModule, SortOfClevrDataModule
from datamodules.nth_farthest import NthFarthestTask
from graphrl.graphs import build_encoder, build_topology
from graphrl.models import (
    SET_BACKBONES,
    BackboneOutput,
    LSTMBackbone,
    MLPBackbone,
    RecurrentBackbone,
    RelationalBackbone,
    RelationalClassifier,
    SetBackbone,
    SetSpec,
)
from graphrl.models.relational_classifier import WarmupCosineLR
from graphrl.nn import (
    AttentionLayer,
    LSTMCore,
    MottQueryCore,
    Processor,
    ProcessorConfig,
    RelationalMemoryCore,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: the CPUs are shared, and two spinning threads crawl under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


NTH = {"num_features": 65, "num_classes": 16, "max_entities": 16, "pos_dim": 16}


def _batch(b: int = 4, n: int = 8, f: int = 65, p: int = 16, pad_from: int | None = None) -> dict:
    mask = torch.ones(b, n, dtype=torch.bool)
    if pad_from is not None:
        mask[:, pad_from:] = False
    return {
        "x": torch.randn(b, n, f),
        "mask": mask,
        "pos": torch.randn(b, n, p),
        "y": torch.zeros(b, dtype=torch.long),
        "question_type": torch.zeros(b, dtype=torch.long),
    }


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    defaults = {
        "default_root_dir": tmp_path,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**defaults, **kwargs})


# ---------------------------------------------------------------------------- construction
SMALL_RMC = functools.partial(RelationalMemoryCore, mem_slots=2, head_size=8, heads=2)
BACKBONES = {
    "graph": functools.partial(SetBackbone, channels=32),
    "mlp": functools.partial(MLPBackbone, channels=32),
    "lstm": functools.partial(LSTMBackbone, channels=32),
    "rmc": functools.partial(RecurrentBackbone, core=SMALL_RMC, channels=32),
    "lstm_core": functools.partial(
        RecurrentBackbone, core=functools.partial(LSTMCore, hidden_size=16), channels=32
    ),
}
"""One factory per registered backbone kind (and the sequence backbone with each core)."""


def test_every_registered_backbone_kind_has_a_factory_here() -> None:
    kinds = {getattr(f.func, "__name__", "") for f in BACKBONES.values()}
    assert {SET_BACKBONES.get(name).__name__ for name in SET_BACKBONES.names()} <= kinds


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("answer", ["label", "pointer"])
def test_logits_have_one_column_per_class_or_per_entity(backbone: str, answer: str) -> None:
    model = RelationalClassifier(**NTH, answer=answer, backbone=BACKBONES[backbone])
    logits, out = model(_batch(b=4, n=8))
    assert logits.shape == ((4, 16) if answer == "label" else (4, 8))
    assert out.nodes.shape == (4, 8, 32) and out.pooled.shape == (4, 32)
    assert model.backbone.out_channels == model.backbone.entity_channels == 32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_pointer_never_points_at_padding(backbone: str) -> None:
    model = RelationalClassifier(**NTH, answer="pointer", backbone=BACKBONES[backbone])
    logits, _ = model(_batch(b=5, n=10, pad_from=6))
    assert torch.isneginf(logits[:, 6:]).all()
    assert torch.isfinite(logits[:, :6]).all()
    assert (logits.argmax(-1) < 6).all()


@pytest.mark.parametrize(
    ("question_dim", "question_input", "in_channels"),
    [(0, "concat", 65), (24, "concat", 65 + 24), (24, "hyper", 48)],
)
def test_the_backbone_is_built_from_the_data_sizes(question_dim, question_input, in_channels):
    seen: list[SetSpec] = []

    def backbone(spec: SetSpec) -> MLPBackbone:
        seen.append(spec)
        return MLPBackbone(spec, channels=8)

    RelationalClassifier(
        **NTH,
        backbone=backbone,
        question_dim=question_dim,
        question_input=question_input,
        question_hidden=48,
    )
    assert seen == [SetSpec(in_channels=in_channels, pos_dim=16, max_entities=16)]


@pytest.mark.parametrize(("name", "core"), [("rmc", RelationalMemoryCore), ("lstm_core", LSTMCore)])
def test_the_sequence_backbone_reads_entities_in_order_with_either_core(name, core) -> None:
    model = RelationalClassifier(**NTH, answer="pointer", backbone=BACKBONES[name])
    assert type(model.backbone.core) is core and model.backbone.core.input_size == 65
    batch = _batch(b=2, n=6, pad_from=4)
    _, out = model(batch)
    later = {**batch, "x": batch["x"].clone()}
    later["x"][:, 3:] += 1.0
    _, moved = model(later)
    # each step's output depends on the entities read so far only
    assert torch.allclose(out.nodes[:, :3], moved.nodes[:, :3])
    assert not torch.allclose(out.nodes[:, 3], moved.nodes[:, 3])
    assert torch.equal(out.pooled, out.nodes[:, 3])  # the output after the last real entity


def test_a_core_that_reads_only_sets_fails_in_one_line() -> None:
    backbone = functools.partial(RecurrentBackbone, core=MottQueryCore)
    with pytest.raises(ValueError, match="core MottQueryCore reads only entity sets: use") as exc:
        RelationalClassifier(**NTH, backbone=backbone)
    assert "\n" not in str(exc.value)


def test_graph_pointer_generalises_to_more_entities_mlp_fails_clearly() -> None:
    graph = RelationalClassifier(**NTH, answer="pointer", backbone=BACKBONES["graph"])
    assert graph(_batch(n=16))[0].shape == (4, 16)
    mlp = RelationalClassifier(**{**NTH, "max_entities": 8}, answer="pointer", backbone=MLPBackbone)
    with pytest.raises(ValueError, match="built for 8 entities, got 12: raise max_entities"):
        mlp(_batch(n=12))


class _PooledOnly(torch.nn.Module):
    """A user's backbone that gives a pooled vector and no entities."""

    out_channels = 8
    entity_channels = None

    def __init__(self, spec: SetSpec) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(spec.in_channels, 8)

    def forward(self, x, mask=None, pos=None, **_):
        return BackboneOutput(None, self.linear(x.float()).mean(1), None)


def test_a_users_backbone_without_entities_answers_labels_and_refuses_pointers() -> None:
    model = RelationalClassifier(**NTH, backbone=_PooledOnly)
    assert model(_batch())[0].shape == (4, 16)
    with pytest.raises(ValueError, match="answer=pointer names an entity, but backbone _Pooled"):
        RelationalClassifier(**NTH, answer="pointer", backbone=_PooledOnly)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"backbone": functools.partial(SetBackbone, topology="nope")},
            "unknown topology 'nope'; choose one of: complete, criss_cross",
        ),
        (
            {"backbone": functools.partial(SetBackbone, readout="median")},
            "unknown readout 'median'; choose one of: attention, max",
        ),
        (
            {"backbone": functools.partial(SetBackbone, processor=ProcessorConfig(layer="nope"))},
            "unknown layer 'nope'; choose one of: attention",
        ),
        ({"answer": "span"}, "unknown answer 'span'; choose one of: label, pointer"),
        ({"scheduler_interval": "batch"}, "choose one of: step, epoch"),
    ],
)
def test_unknown_names_fail_at_construction_listing_the_choices(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        RelationalClassifier(**NTH, **kwargs)


def test_a_misspelt_backbone_argument_or_a_backbone_name_fails_in_one_line() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'chanels'") as exc:
        RelationalClassifier(**NTH, backbone=functools.partial(SetBackbone, chanels=32))
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match=r"give a class with its arguments, backbone: \{class_"):
        RelationalClassifier(**NTH, backbone="graph")
    with pytest.raises(ValueError, match="RelationalBackbone is an agent's backbone, built from"):
        RelationalClassifier(**NTH, backbone=functools.partial(RelationalBackbone, channels=8))


def test_knn_topology_and_gcn_layer_swap_in() -> None:
    backbone = functools.partial(
        SetBackbone,
        channels=32,
        topology="knn",
        topology_kwargs={"k": 3},
        processor=ProcessorConfig(layer="gcn"),
    )
    model = RelationalClassifier(**NTH, answer="pointer", backbone=backbone)
    assert type(model.backbone.topology).__name__ == "KNN"
    assert type(model.backbone.processor.layers[0]).__name__ == "GCNLayer"
    assert model(_batch())[0].shape == (4, 8)


# ---------------------------------------------------------------------------- training loop
def test_nan_loss_stops_training_with_a_clear_error(tmp_path, monkeypatch) -> None:
    real_sample = NthFarthestTask.sample

    def nan_sample(self, batch_size, num_entities, generator):
        batch = real_sample(self, batch_size, num_entities, generator)
        batch["x"] = torch.full_like(batch["x"], float("nan"))
        return batch

    monkeypatch.setattr(NthFarthestTask, "sample", nan_sample)
    data = NthFarthestDataModule(num_entities=4, max_entities=4, batch_size=8)
    model = RelationalClassifier(
        num_features=data.num_features,
        num_classes=data.num_classes,
        max_entities=data.max_entities,
        pos_dim=data.pos_dim,
        answer="pointer",
        backbone=functools.partial(SetBackbone, channels=16),
    )
    with pytest.raises(FloatingPointError, match=r"train loss is nan at step 0: lower the learn"):
        _trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(model, datamodule=data)


def test_per_question_type_accuracy_and_attention_maps_are_logged(tmp_path) -> None:
    data = SortOfClevrDataModule(
        batch_size=128, train_samples_per_epoch=256, val_samples=256, test_samples=256
    )
    model = RelationalClassifier(
        num_features=data.num_features,
        num_classes=data.num_classes,
        max_entities=data.max_entities,
        pos_dim=data.pos_dim,
        answer=data.answer,
        question_types=data.question_types,
        backbone=functools.partial(
            SetBackbone,
            channels=16,
            processor=ProcessorConfig(layer="attention", num_layers=2, heads=2),
        ),
    )
    logger = TensorBoardLogger(tmp_path, name="", version=0)
    trainer = _trainer(tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1)
    trainer.fit(model, datamodule=data)
    fit_metrics = dict(trainer.callback_metrics)
    trainer.test(model, datamodule=data, verbose=False)
    for stage, metrics in (("val", fit_metrics), ("test", trainer.callback_metrics)):
        per_type = [float(metrics[f"{stage}/acc_{q}_n6"]) for q in data.question_types]
        assert all(0.0 <= v <= 1.0 for v in per_type)
        # every type is drawn with p = 1/6, so the overall accuracy sits inside their range
        overall = float(metrics[f"{stage}/acc_n6"])
        assert min(per_type) - 1e-6 <= overall <= max(per_type) + 1e-6
    assert model.samples_seen == 256 and float(fit_metrics["train/samples"]) == 256.0

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "version_0"))
    events.Reload()
    assert {"attention/first_layer", "attention/last_layer"} <= set(events.Tags()["images"])
    assert "val/acc_shape_n6" in events.Tags()["scalars"]


def test_nth_farthest_k3_learns_the_distances_not_only_the_self_answer(tmp_path) -> None:
    torch.manual_seed(0)
    data = NthFarthestDataModule(
        num_entities=3,
        max_entities=3,
        dim=4,
        batch_size=64,
        train_samples_per_epoch=64 * 150,
        val_samples=512,
        seed=1,
    )
    model = RelationalClassifier(
        num_features=data.num_features,
        num_classes=data.num_classes,
        max_entities=data.max_entities,
        pos_dim=data.pos_dim,
        answer="pointer",
        backbone=functools.partial(
            SetBackbone,
            channels=32,
            processor=ProcessorConfig(
                layer="attention",
                num_layers=2,
                heads=2,
                edge_features="distance",
                layer_kwargs={"edge_values": True},
            ),
        ),
        head_hidden=32,
        optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3),
        attention_maps=False,
    )
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(model, datamodule=data)
    accuracy = float(trainer.callback_metrics["val/acc_k3"])
    # Chance is 1/3. One of the three ranks asks for m itself (n = K - 1), which needs no
    # distances: a model that answers it and guesses between the other two scores
    # 1/3 + 2/3 * 1/2 = 0.667. Well above that, the model compares distances.
    assert accuracy > 0.95, f"got {accuracy:.3f}; without distances a model scores 0.667"


# ---------------------------------------------------------------------------- parts
def test_warmup_cosine_warms_up_linearly_decays_and_then_holds() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = WarmupCosineLR(opt, warmup_steps=4, total_steps=14, min_ratio=0.1)
    assert [sched.factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert math.isclose(sched.factor(9), 0.1 + 0.9 * 0.5)  # halfway down the cosine
    assert math.isclose(sched.factor(14), 0.1) and math.isclose(sched.factor(10**6), 0.1)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0] and lrs[5] < lrs[4] <= 1.0
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        WarmupCosineLR(opt, warmup_steps=10, total_steps=10)


def test_scheduler_steps_every_optimizer_step_by_default(tmp_path) -> None:
    data = NthFarthestDataModule(num_entities=4, max_entities=4, batch_size=8)
    model = RelationalClassifier(
        num_features=data.num_features,
        num_classes=data.num_classes,
        max_entities=4,
        pos_dim=data.pos_dim,
        answer="pointer",
        backbone=functools.partial(SetBackbone, channels=16),
        scheduler=lambda opt: WarmupCosineLR(opt, warmup_steps=10, total_steps=20),
    )
    trainer = _trainer(tmp_path, max_steps=3, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    assert trainer.lr_scheduler_configs[0].interval == "step"
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == 3


@pytest.mark.parametrize("edge_features", ["distance", "offset_distance"])
def test_edge_values_dense_and_sparse_paths_agree(edge_features: str) -> None:
    x = torch.randn(3, 5, 7)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1, 3:] = False
    encoder = build_encoder("vectors", in_channels=7, out_channels=16)
    outputs = []
    for path in ("dense", "sparse"):
        torch.manual_seed(1)
        config = ProcessorConfig(
            layer="attention",
            num_layers=2,
            edge_features=edge_features,
            layer_kwargs={"edge_values": True, "path": path},
        )
        processor = Processor(config, 16, pos_dim=7)
        with torch.no_grad():  # make the edge bias non-zero too (it starts at zero)
            for layer in processor.layers:
                layer.edge_bias.weight.normal_()
        graph = build_topology("complete")(encoder(x, mask=mask))
        outputs.append(processor(graph, return_attention_weights=True))
    (dense, dense_maps), (sparse, sparse_maps) = outputs
    real = mask.reshape(-1)
    assert torch.allclose(dense[real], sparse[real], atol=1e-5)
    pairs = (mask[:, :, None] & mask[:, None, :]).unsqueeze(1)
    assert torch.allclose(dense_maps[-1] * pairs, sparse_maps[-1] * pairs, atol=1e-6)


def test_edge_values_carry_the_distance_to_the_attended_node() -> None:
    torch.manual_seed(0)
    layer = AttentionLayer(4, heads=1, mlp_channels=0, edge_dim=1, edge_values=True)
    plain = AttentionLayer(4, heads=1, mlp_channels=0, edge_dim=1)
    plain.load_state_dict(layer.state_dict(), strict=False)
    x = torch.randn(2, 4)
    edge_index = torch.tensor([[0], [1]])  # 0 -> 1
    near, far = torch.tensor([[1.0]]), torch.tensor([[5.0]])
    # Node 1 receives one message; only with edge_values does it depend on the edge feature.
    assert not torch.allclose(layer(x, edge_index, near)[1], layer(x, edge_index, far)[1])
    assert torch.allclose(plain(x, edge_index, near)[1], plain(x, edge_index, far)[1])
    assert "edge_values=True" in repr(layer)


def test_edge_values_without_edge_features_fail_clearly() -> None:
    with pytest.raises(ValueError, match="edge_values=True\\) needs edge features"):
        AttentionLayer(16, edge_values=True)


def test_samples_seen_survives_a_checkpoint() -> None:
    model = RelationalClassifier(**NTH, backbone=BACKBONES["mlp"])
    model.samples_seen = 12_800
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    restored = RelationalClassifier(**NTH, backbone=BACKBONES["mlp"])
    restored.on_load_checkpoint(checkpoint)
    assert restored.samples_seen == 12_800
