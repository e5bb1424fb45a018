"""Supervised relational reasoning as a LightningModule: encoder -> topology -> processor ->
readout -> head, every part chosen in config."""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from graphrl.checks import check_positive
from graphrl.models.backbones import BackboneOutput, GraphBackbone, LSTMBackbone, MLPBackbone
from graphrl.models.heads import LabelHead, PointerHead
from graphrl.nn import ProcessorConfig, QuestionInput
from graphrl.nn.hypernetwork import QUESTION_INPUTS

BACKBONES = ("graph", "mlp", "lstm")
ANSWERS = ("label", "pointer")


def default_optimizer(params) -> torch.optim.Optimizer:
    """AdamW, lr 3e-4 (the set-transformer calibration in issue 3)."""
    return torch.optim.AdamW(params, lr=3e-4)


class WarmupCosineLR(LambdaLR):
    """Linear warm-up from 0 to the optimiser's lr, then a cosine decay to ``min_ratio * lr``.

    Counts optimizer steps (the classifier steps schedulers every step by default); after
    ``total_steps`` the rate stays at ``min_ratio * lr``, so a run may go on past it.

    Args:
        optimizer: The wrapped optimiser.
        warmup_steps: Steps of linear warm-up.
        total_steps: Step at which the cosine reaches ``min_ratio``; ``> warmup_steps``.
        min_ratio: Final fraction of the peak learning rate.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int = 200,
        total_steps: int = 10_000,
        min_ratio: float = 0.05,
    ) -> None:
        if warmup_steps < 0 or total_steps <= warmup_steps:
            raise ValueError(
                f"WarmupCosineLR needs 0 <= warmup_steps < total_steps, got {warmup_steps=}, "
                f"{total_steps=}"
            )
        if not 0.0 <= min_ratio <= 1.0:
            raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio
        super().__init__(optimizer, self.factor)

    def factor(self, step: int) -> float:
        """Multiplier of the peak lr at optimizer step ``step``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class RelationalClassifier(L.LightningModule):
    """Answers questions about entity sets (Nth-farthest, Sort-of-CLEVR).

    Sizes the data decides (``num_features``, ``num_classes``, ``max_entities``, ``pos_dim``,
    ``answer``, ``question_types``) are linked from the DataModule by the CLI, never written in
    YAML. Everything else is a swap from the command line, e.g. ``--model.topology=knn
    --model.topology_kwargs='{k: 3}' --model.processor.layer=gcn`` (from a config whose
    processor uses attention-only knobs, also ``--model.processor.edge_features=none
    --model.processor.layer_kwargs='{}'``).

    Args:
        num_features: Entity feature width ``F`` (linked from the data).
        num_classes: Answer vocabulary size for label answers (linked).
        max_entities: Largest entity count the data produces (linked; sizes the MLP baseline).
        pos_dim: Coordinate width of entities (linked).
        answer: ``label`` (class over a fixed vocabulary) or ``pointer`` (an entity; linked).
        question_types: Names of question types, for per-type accuracy (linked).
        backbone: ``graph`` (the relational pipeline), ``mlp`` or ``lstm`` (baselines).
        channels: Entity width ``D``.
        encoder: Encoder name for the graph backbone (``vectors`` for sets).
        encoder_kwargs: Extra encoder arguments (e.g. ``{hidden_channels: 128}``).
        topology: Topology name (``complete``, ``self`` = DeepSets, ``knn``, ``radius``, ...).
        topology_kwargs: Topology arguments (``{k: 3}`` for knn, ``{r: 0.5}`` for radius).
        processor: Layer type, depth, edge features (``--model.processor.layer=gcn``);
            ``layer_kwargs: {edge_values: true}`` lets attention messages carry edge features.
        readout: ``max``, ``mean``, ``sum`` or ``attention``.
        head_hidden: Hidden width of the answer head.
        optimizer: Optimiser factory (``--optimizer`` style ``class_path``/``init_args``).
        scheduler: Optional LR scheduler factory, e.g. ``WarmupCosineLR``.
        scheduler_interval: Step the scheduler every optimizer ``step`` (the data are endless
            streams, so steps are the natural clock) or every ``epoch``.
        attention_maps: Log first/last-layer attention maps of a fixed validation batch to
            TensorBoard at each validation (attention processors only).
        question_dim: Width of the batch's separate question view ``question: [B, Q]``
            (linked; 0: the question is inside the entity features).
        question_input: How a separate question enters: ``concat`` (to every entity) or
            ``hyper`` (it generates the weights of the first entity layer, a hypernetwork).
    """

    def __init__(
        self,
        num_features: int = 16,
        num_classes: int = 16,
        max_entities: int = 16,
        pos_dim: int = 16,
        answer: str = "label",
        question_types: list[str] | None = None,
        backbone: str = "graph",
        channels: int = 64,
        encoder: str = "vectors",
        encoder_kwargs: dict[str, Any] | None = None,
        topology: str = "complete",
        topology_kwargs: dict[str, Any] | None = None,
        processor: ProcessorConfig = ProcessorConfig(),  # noqa: B008 (a dataclass, not a module)
        readout: str = "max",
        head_hidden: int = 128,
        optimizer: OptimizerCallable = default_optimizer,
        scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
        attention_maps: bool = True,
        question_dim: int = 0,
        question_input: str = "concat",
    ) -> None:
        super().__init__()
        check_positive(channels=channels, head_hidden=head_hidden)
        if backbone not in BACKBONES:
            raise ValueError(
                f"unknown backbone {backbone!r}; choose one of: {', '.join(BACKBONES)}"
            )
        if answer not in ANSWERS:
            raise ValueError(f"unknown answer {answer!r}; choose one of: {', '.join(ANSWERS)}")
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(
                f"unknown scheduler_interval {scheduler_interval!r}; choose one of: step, epoch"
            )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.question_types = list(question_types or ["all"])
        if question_input not in QUESTION_INPUTS:
            raise ValueError(
                f"unknown question_input {question_input!r}; choose one of: "
                f"{', '.join(QUESTION_INPUTS)}"
            )
        if question_input == "hyper" and not question_dim:
            raise ValueError(
                "question_input='hyper' needs the question as a view of its own, but the data "
                "gives none (question_dim=0): set --data.init_args.question_view=true"
            )
        self.question_in = (
            QuestionInput(num_features, question_dim, question_input, channels)
            if question_dim
            else None
        )
        if self.question_in is not None:
            num_features = self.question_in.out_features
        if backbone == "graph":
            kwargs = {"in_channels": num_features, **(encoder_kwargs or {})}
            self.backbone: nn.Module = GraphBackbone(
                encoder, kwargs, topology, topology_kwargs, processor, readout, channels, pos_dim
            )
        elif backbone == "mlp":
            self.backbone = MLPBackbone(num_features, max_entities, channels)
        else:
            self.backbone = LSTMBackbone(num_features, channels)
        self.head: nn.Module = (
            PointerHead(channels, head_hidden)
            if answer == "pointer"
            else LabelHead(channels, num_classes, head_hidden)
        )
        self.loss_fn = nn.CrossEntropyLoss()
        self.metrics = nn.ModuleDict()  # "{stage}/{name}" -> MeanMetric, built in setup()
        self.samples_seen = 0
        self._fixed_batch: dict[str, Tensor] | None = None

    def on_fit_start(self) -> None:
        """Say where the TensorBoard logs go (``metrics.json`` is printed at the end)."""
        log_dir = getattr(self.logger, "log_dir", None)
        if log_dir is not None:
            rank_zero_info(f"TensorBoard logs: {log_dir}  (tensorboard --logdir {log_dir})")

    # ------------------------------------------------------------------ model
    def forward(
        self, batch: dict[str, Tensor], return_attention_weights: bool = False
    ) -> tuple[Tensor, BackboneOutput]:
        """``batch -> (logits [B, num_classes or N], backbone output)``."""
        for key in ("x", "y"):
            if key not in batch:
                raise ValueError(f"batch has no {key!r}: batches are dicts with x, mask, pos, y")
        kwargs = {"return_attention_weights": True} if return_attention_weights else {}
        x = batch["x"]
        if self.question_in is not None:
            if "question" not in batch:
                raise ValueError(
                    f"the model reads a question view (question_dim={self.hparams.question_dim})"
                    " but the batch has no 'question'"
                )
            x = self.question_in(x, batch["question"])
        out = self.backbone(x, mask=batch.get("mask"), pos=batch.get("pos"), **kwargs)
        return self.head(out), out

    # ------------------------------------------------------------------ metrics
    def _eval_names(self, stage: str) -> list[str]:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        names = getattr(dm, "eval_dataloader_names", None)
        return list(names) if names and stage != "train" else [""]

    def _eval_subsets(self) -> list[str]:
        """The DataModule's ``eval_subsets``: bool batch keys of subsets scored on their own."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        return list(getattr(dm, "eval_subsets", None) or [])

    def setup(self, stage: str) -> None:
        keys = ["train/acc", "train/loss"]
        for split in ("val", "test"):
            for suffix in self._eval_names(split):
                tag = f"_{suffix}" if suffix else ""
                keys += [f"{split}/acc{tag}", f"{split}/loss{tag}"]
                keys += [f"{split}/acc{tag}_{name}" for name in self._eval_subsets()]
                keys += [f"{split}/acc_{q}{tag}" for q in self.question_types if q != "all"]
        for key in keys:
            if key.replace("/", ":") not in self.metrics:
                self.metrics[key.replace("/", ":")] = MeanMetric()

    def _metric(self, key: str) -> MeanMetric:
        return self.metrics[key.replace("/", ":")]

    def _step(self, batch: dict[str, Tensor], stage: str, dataloader_idx: int = 0) -> Tensor:
        logits, _ = self(batch)
        y = batch["y"]
        loss = self.loss_fn(logits, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{stage} loss is {loss.item()} at step {self.global_step}: lower the learning "
                "rate (--model.init_args.optimizer.init_args.lr) or clip gradients "
                "(--trainer.gradient_clip_val)"
            )
        correct = (logits.argmax(-1) == y).float()
        b = y.shape[0]
        suffix = "" if stage == "train" else self._eval_names(stage)[dataloader_idx]
        tag = f"_{suffix}" if suffix else ""
        on_step = stage == "train"
        for name, value in (("acc", correct), ("loss", loss.detach().expand(b))):
            metric = self._metric(f"{stage}/{name}{tag}")
            metric(value)
            self.log(
                f"{stage}/{name}{tag}",
                metric,
                on_step=on_step,
                on_epoch=True,
                batch_size=b,
                prog_bar=name == "acc",
                add_dataloader_idx=False,
            )
        if stage != "train":
            for name in self._eval_subsets():
                sel = batch[name]
                if bool(sel.any()):
                    metric = self._metric(f"{stage}/acc{tag}_{name}")
                    metric(correct[sel])
                    self.log(
                        f"{stage}/acc{tag}_{name}",
                        metric,
                        on_step=False,
                        on_epoch=True,
                        batch_size=int(sel.sum()),
                        add_dataloader_idx=False,
                    )
        if stage != "train" and len(self.question_types) > 1 and "question_type" in batch:
            for q_idx, q in enumerate(self.question_types):
                sel = batch["question_type"] == q_idx
                if bool(sel.any()):
                    metric = self._metric(f"{stage}/acc_{q}{tag}")
                    metric(correct[sel])
                    self.log(
                        f"{stage}/acc_{q}{tag}",
                        metric,
                        on_step=False,
                        on_epoch=True,
                        batch_size=int(sel.sum()),
                        add_dataloader_idx=False,
                    )
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.samples_seen += batch["y"].shape[0] * self.trainer.world_size
        self.log(
            "train/samples",
            float(self.samples_seen),
            on_step=True,
            on_epoch=False,
            batch_size=batch["y"].shape[0],
        )
        return self._step(batch, "train")

    def validation_step(
        self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._fixed_batch is None and dataloader_idx == 0:
            self._fixed_batch = {k: v[:8] for k, v in batch.items()}
        self._step(batch, "val", dataloader_idx)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test", dataloader_idx)

    def predict_step(
        self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> Tensor:
        logits, _ = self(batch)
        return logits.argmax(-1)

    def on_validation_epoch_end(self) -> None:
        if not self.hparams.attention_maps or self._fixed_batch is None:
            return
        if self._trainer is not None and self.trainer.sanity_checking:
            return
        processor = getattr(self.backbone, "processor", None)
        if processor is None or not processor.returns_attention or not len(processor.layers):
            return
        experiment = getattr(self.logger, "experiment", None)
        if (
            experiment is None
            or not hasattr(experiment, "add_figure")
            or not self.trainer.is_global_zero
        ):
            return
        from graphrl.viz import attention_figure

        with torch.no_grad():
            _, out = self(self._fixed_batch, return_attention_weights=True)
        mask = out.mask[0]
        for name, idx in (("first", 0), ("last", len(out.attention) - 1)):
            fig = attention_figure(out.attention[idx][0], f"{name} layer, sample 0", mask)
            experiment.add_figure(f"attention/{name}_layer", fig, global_step=self.global_step)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["samples_seen"] = self.samples_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.samples_seen = int(checkpoint.get("samples_seen", 0))

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        interval = self.hparams.scheduler_interval
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }
