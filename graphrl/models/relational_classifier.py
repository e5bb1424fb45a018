"""Supervised relational reasoning as a LightningModule: an injected backbone (the relational
pipeline or a baseline) -> an answer head, every part chosen in config."""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MeanMetric

from graphrl.checks import check_positive
from graphrl.models.backbones import BackboneOutput
from graphrl.models.heads import LabelHead, PointerHead
from graphrl.models.set_backbones import SetBackbone, SetBackboneFactory, SetSpec
from graphrl.nn import QuestionInput
from graphrl.nn.hypernetwork import QUESTION_INPUTS
from graphrl.registry import factory_class

ANSWERS = ("label", "pointer")
BACKBONE_FORM = (
    "backbone: {class_path: graphrl.models.SetBackbone, init_args: {channels: 64, topology: "
    "complete, ...}} (baselines: graphrl.models.MLPBackbone, LSTMBackbone, RecurrentBackbone)"
)


def default_optimizer(params) -> torch.optim.Optimizer:
    """AdamW, lr 3e-4 (the set-transformer calibration in issue 3)."""
    return torch.optim.AdamW(params, lr=3e-4)


def _check_set_backbone(backbone: Any) -> None:
    """Fail in one line unless ``backbone`` is a factory of set backbones (``backbone(spec)``):
    not a name, not an agent's backbone (built from an observation space)."""
    if isinstance(backbone, str) or not callable(backbone):
        raise ValueError(
            f"backbone {backbone!r} is not a backbone factory: give a class with its "
            f"arguments, {BACKBONE_FORM}; in Python functools.partial(SetBackbone, ...)"
        )
    cls = factory_class(backbone)
    try:
        first = next(iter(inspect.signature(cls).parameters), None)
    except (TypeError, ValueError):
        return
    if first == "observation_space":
        raise ValueError(
            f"backbone {getattr(cls, '__name__', cls)} is an agent's backbone, built from an "
            f"observation space; the classifier builds one from the data's sizes: {BACKBONE_FORM}"
        )


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
    """Answers questions about entity sets (Nth-farthest, Sort-of-CLEVR) with an injected backbone.

    ``[question input] -> backbone -> answer head`` (a label or a pointer over entities). Sizes
    the data decides (``num_features``, ``num_classes``, ``max_entities``, ``pos_dim``,
    ``answer``, ``question_types``, ``question_dim``) are linked from the DataModule by the CLI,
    never written in YAML; the backbone is built from them (``backbone(SetSpec)``). The backbone
    is injected with its own arguments, e.g. in YAML::

        backbone:
          class_path: graphrl.models.SetBackbone
          init_args: {channels: 64, topology: complete, processor: {layer: attention}}

    and every part of it is a swap from the command line, e.g. ``--model.backbone.topology=knn
    --model.backbone.topology_kwargs='{k: 3}' --model.backbone.processor.layer=gcn``, or the
    backbone itself (``--model.backbone=graphrl.models.MLPBackbone``).

    Args:
        num_features: Entity feature width ``F`` (linked from the data).
        num_classes: Answer vocabulary size for label answers (linked).
        max_entities: Largest entity count the data produces (linked; sizes the MLP baseline).
        pos_dim: Coordinate width of entities (linked).
        answer: ``label`` (class over a fixed vocabulary) or ``pointer`` (an entity; linked).
        question_types: Names of question types, for per-type accuracy (linked).
        backbone: ``backbone(spec)``, ``spec`` a :class:`~graphrl.models.SetSpec` of the sizes
            above: :class:`~graphrl.models.SetBackbone` (the relational pipeline, default),
            :class:`~graphrl.models.MLPBackbone` or :class:`~graphrl.models.LSTMBackbone`
            (baselines), :class:`~graphrl.models.RecurrentBackbone` (a recurrent core reading
            the entities one per step), or a class path of your own.
        head_hidden: Hidden width of the answer head.
        optimizer: Optimiser factory (``--optimizer`` style ``class_path``/``init_args``).
        scheduler: Optional LR scheduler factory, e.g. ``WarmupCosineLR``.
        scheduler_interval: Step the scheduler every optimizer ``step`` (the data are endless
            streams, so steps are the natural clock) or every ``epoch``.
        attention_maps: Log first/last-layer attention maps of a fixed validation batch to
            TensorBoard at each validation (backbones that return attention only).
        question_dim: Width of the batch's separate question view ``question: [B, Q]``
            (linked; 0: the question is inside the entity features).
        question_input: How a separate question enters: ``concat`` (to every entity) or
            ``hyper`` (it generates the weights of a first entity layer, a hypernetwork); the
            backbone reads the result.
        question_hidden: Output width of the ``hyper`` question layer (the backbone's input
            width ``F`` then).
    """

    earlier_arguments: ClassVar[dict[str, str]] = {
        name: "it is an argument of the backbone: --model.backbone.{option}, in YAML "
        + BACKBONE_FORM
        for name in (
            "channels",
            "encoder",
            "encoder_kwargs",
            "topology",
            "topology_kwargs",
            "processor",
            "readout",
            "readout_kwargs",
        )
    } | {
        "backbone": f"the backbone is a class with its own arguments: {BACKBONE_FORM}",
        "core_kwargs": "the core is an argument of the sequence backbone: backbone: {class_path: "
        "graphrl.models.RecurrentBackbone, init_args: {core: {class_path: "
        "graphrl.nn.RelationalMemoryCore, init_args: {mem_slots: 4, ...}}}}",
    }
    """Arguments of earlier releases and what to write instead (the CLI's error line for them)."""

    def __init__(
        self,
        num_features: int = 16,
        num_classes: int = 16,
        max_entities: int = 16,
        pos_dim: int = 16,
        answer: str = "label",
        question_types: list[str] | None = None,
        backbone: SetBackboneFactory = SetBackbone,
        head_hidden: int = 128,
        optimizer: OptimizerCallable = default_optimizer,
        scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["step", "epoch"] = "step",
        attention_maps: bool = True,
        question_dim: int = 0,
        question_input: str = "concat",
        question_hidden: int = 64,
    ) -> None:
        super().__init__()
        check_positive(head_hidden=head_hidden, question_hidden=question_hidden)
        _check_set_backbone(backbone)
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
        self.question_in = self._question_input(
            num_features, question_dim, question_input, question_hidden
        )
        in_channels = num_features if self.question_in is None else self.question_in.out_features
        self.backbone: nn.Module = backbone(SetSpec(in_channels, pos_dim, max_entities))
        self.head: nn.Module = self._answer_head(answer, num_classes, head_hidden)
        self.loss_fn = nn.CrossEntropyLoss()
        self.metrics = nn.ModuleDict()  # "{stage}/{name}" -> MeanMetric, built in setup()
        self.samples_seen = 0
        self._fixed_batch: dict[str, Tensor] | None = None

    @staticmethod
    def _question_input(
        num_features: int, question_dim: int, mode: str, hidden: int
    ) -> QuestionInput | None:
        """What feeds a separate question view to the backbone (None: there is none)."""
        if mode not in QUESTION_INPUTS:
            raise ValueError(
                f"unknown question_input {mode!r}; choose one of: {', '.join(QUESTION_INPUTS)}"
            )
        if mode == "hyper" and not question_dim:
            raise ValueError(
                "question_input='hyper' needs the question as a view of its own, but the data "
                "gives none (question_dim=0): set --data.init_args.question_view=true"
            )
        return QuestionInput(num_features, question_dim, mode, hidden) if question_dim else None

    def _answer_head(self, answer: str, num_classes: int, hidden: int) -> nn.Module:
        """The head the answer kind asks for, sized by what the backbone declares it gives."""
        name = type(self.backbone).__name__
        width = getattr(self.backbone, "out_channels", None)
        if not isinstance(width, int):
            raise ValueError(
                f"backbone {name} declares no out_channels (the width of its pooled vector)"
            )
        if answer == "label":
            return LabelHead(width, num_classes, hidden)
        entities = getattr(self.backbone, "entity_channels", None)
        if entities is None:
            raise ValueError(
                f"answer=pointer names an entity, but backbone {name} gives no entities "
                "(entity_channels is None): use a backbone that does, e.g. SetBackbone"
            )
        return PointerHead(entities, hidden, context_channels=width)

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
        if not getattr(self.backbone, "returns_attention", False):
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
