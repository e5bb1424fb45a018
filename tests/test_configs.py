"""Every supervised YAML under ``configs/`` parses and instantiates through the ``graphrl`` CLI,
each task trains for a ``fast_dev_run``, swaps and mistakes on the command line behave, and the
comparison script drives the configs end to end.

The parametrisation walks ``configs/**/*.yaml``; files whose model is not a
``RelationalClassifier`` are skipped here (their owners test them), so new configs join
automatically.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from graphrl.cli import cli_main
from graphrl.models import RelationalClassifier

ROOT = Path(__file__).resolve().parents[1]
ALL_CONFIGS = sorted(ROOT.glob("configs/**/*.yaml"))
NTH_ATTENTION = ROOT / "configs/nth_farthest/attention.yaml"
NTH_GCN = ROOT / "configs/nth_farthest/gcn.yaml"
SOC_ATTENTION = ROOT / "configs/sort_of_clevr/attention.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _is_classifier(path: Path) -> bool:
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    model = cfg.get("model") or {}
    return isinstance(model, dict) and str(model.get("class_path", "")).endswith(
        "RelationalClassifier"
    )


# RL configs (PPO/A2C) are exercised by tests/test_rl_configs.py.
CONFIGS = [p for p in ALL_CONFIGS if _is_classifier(p)]


def _instantiate(path: Path, tmp_path: Path, *extra: str):
    return cli_main(
        args=["--config", str(path), f"--trainer.default_root_dir={tmp_path}", *extra], run=False
    )


def _first_val_batch(cli) -> dict[str, torch.Tensor]:
    dm = cli.datamodule
    return dm.eval_dataset("val", dm.eval_sizes[0])[0]


def test_the_supervised_configs_are_all_there() -> None:
    names = {str(p.relative_to(ROOT / "configs")) for p in CONFIGS if _is_classifier(p)}
    expected = {f"nth_farthest/{m}.yaml" for m in ("attention", "gnn", "gcn", "rgcn")}
    expected |= {f"nth_farthest/{m}.yaml" for m in ("deepsets", "mlp", "lstm")}
    expected |= {f"sort_of_clevr/{m}.yaml" for m in ("attention", "gcn", "deepsets", "mlp")}
    assert expected <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_config_parses_instantiates_and_links_the_data_sizes(path: Path, tmp_path) -> None:
    cli = _instantiate(path, tmp_path)
    model, dm = cli.model, cli.datamodule
    assert isinstance(model, RelationalClassifier)
    for name in ("num_features", "num_classes", "max_entities", "pos_dim", "answer"):
        assert model.hparams[name] == getattr(dm, name), name
    assert model.question_types == dm.question_types
    backbone = yaml.safe_load(path.read_text())["model"]["init_args"]["backbone"]
    assert type(model.backbone).__name__ == backbone["class_path"].rsplit(".", 1)[-1]
    batch = _first_val_batch(cli)
    logits, _ = model(batch)
    width = batch["x"].shape[1] if dm.answer == "pointer" else dm.num_classes
    assert logits.shape == (batch["y"].shape[0], width)


@pytest.mark.parametrize("path", [NTH_ATTENTION, SOC_ATTENTION], ids=["nth_farthest", "soc"])
def test_fast_dev_run_of_each_task_writes_metrics_json(path: Path, tmp_path, capsys) -> None:
    args = ["fit", "--config", str(path), "--trainer.fast_dev_run=1"]
    cli_main(
        args=[
            *args,
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    out = capsys.readouterr().out
    metrics_path = tmp_path / "metrics.json"
    assert f"metrics written to {metrics_path}" in out
    fit = json.loads(metrics_path.read_text())["fit"]
    assert fit["global_step"] == 1 and fit["samples_seen"] == 128
    assert any(k.startswith("val/acc_") for k in fit["metrics"])


def test_a_fit_prints_where_the_tensorboard_logs_are(tmp_path, caplog) -> None:
    args = ["fit", "--config", str(NTH_GCN), f"--trainer.default_root_dir={tmp_path}"]
    args += ["--trainer.max_steps=1", "--trainer.limit_val_batches=0"]
    cli_main(args=[*args, "--trainer.enable_progress_bar=false"])
    log_dir = tmp_path / "lightning_logs" / "version_0"
    assert f"TensorBoard logs: {log_dir}" in caplog.text
    assert (log_dir / "metrics.json").is_file() and list(log_dir.glob("events.out.tfevents*"))


def test_topology_and_layer_swap_from_the_command_line(tmp_path) -> None:
    cli = _instantiate(
        NTH_ATTENTION,
        tmp_path,
        "--model.backbone.topology=knn",
        "--model.backbone.topology_kwargs={k: 3}",
    )
    assert type(cli.model.backbone.topology).__name__ == "KNN"
    assert cli.model.backbone.topology.k == 3
    cli.model(_first_val_batch(cli))
    for layer, cls in (("gnn", "GNNLayer"), ("rgcn", "RGCNLayer"), ("attention", "AttentionLayer")):
        cli = _instantiate(NTH_GCN, tmp_path, f"--model.backbone.processor.layer={layer}")
        assert type(cli.model.backbone.processor.layers[0]).__name__ == cls
        cli.model(_first_val_batch(cli))
    # one flag swaps the attention config's layer too: edge features go to layers taking them
    for layer, cls in (("gcn", "GCNLayer"), ("gnn", "GNNLayer"), ("rgcn", "RGCNLayer")):
        cli = _instantiate(NTH_ATTENTION, tmp_path, f"--model.backbone.processor.layer={layer}")
        assert type(cli.model.backbone.processor.layers[0]).__name__ == cls
        cli.model(_first_val_batch(cli))


def test_the_sequence_backbone_swaps_its_core_from_the_command_line(tmp_path) -> None:
    path = ROOT / "configs/nth_farthest/rmc_sequential.yaml"
    cli = _instantiate(path, tmp_path)
    assert type(cli.model.backbone.core).__name__ == "RelationalMemoryCore"
    args = ("--model.backbone.core=graphrl.nn.LSTMCore", "--model.backbone.core.hidden_size=32")
    cli = _instantiate(path, tmp_path, *args)
    core = cli.model.backbone.core
    assert type(core).__name__ == "LSTMCore" and core.hidden_size == 32
    assert core.input_size == cli.datamodule.num_features  # linked from the data
    logits, _ = cli.model(_first_val_batch(cli))
    assert torch.isfinite(logits).any()
    with pytest.raises((SystemExit, ValueError), match="core MottQueryCore reads only entity"):
        _instantiate(path, tmp_path, "--model.backbone.core=graphrl.nn.MottQueryCore")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.backbone.topolgy=knn"], "did you mean --model.backbone.topology?"),
        (["--model.backbone.chanels=8"], "did you mean --model.backbone.channels?"),
        (["--model.backbone.topology=nope"], "unknown topology 'nope'; choose one of: complete"),
        (
            ["--model.backbone.processor.layer=nope"],
            "unknown layer 'nope'; choose one of: attention, gcn",
        ),
        (
            ["--model.backbone.processor.layer_kwargs={heads: 3}"],
            "do not fit layer 'attention'",
        ),
        (["--model.topology=knn"], "it is an argument of the backbone: --model.backbone.topology"),
        (
            ["--model.backbone=graphrl.models.RelationalBackbone"],
            "backbone RelationalBackbone is an agent's backbone, built from an observation space",
        ),
    ],
)
def test_wrong_keys_and_names_fail_naming_the_problem(args, message, tmp_path, capsys) -> None:
    # jsonargparse rejects unknown keys while parsing (exit 2, message on stderr); names are
    # checked when the model is built (a ValueError whose message lists the valid choices).
    with pytest.raises((SystemExit, ValueError)) as exc:
        _instantiate(NTH_ATTENTION, tmp_path, *args)
    if exc.type is SystemExit:
        assert exc.value.code != 0
    assert message in capsys.readouterr().err + str(exc.value)


def test_compare_script_trains_tests_and_writes_table_and_plots(tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import compare_supervised
    finally:
        sys.path.pop(0)
    small = [
        "--data.init_args.train_samples_per_epoch=256",
        "--data.init_args.val_samples=128",
        "--data.init_args.test_samples=128",
        "--data.init_args.batch_size=64",
        "--trainer.log_every_n_steps=1",
    ]
    results = compare_supervised.main(
        ["--task", "nth_farthest", "--max-samples", "512", "--out", str(tmp_path / "out")]
        + ["--runs", str(tmp_path / "runs"), "--configs", str(NTH_GCN), str(NTH_ATTENTION)]
        + [f"--extra={a}" for a in small]
    )
    assert [r.name for r in results] == ["gcn", "attention"]
    for r in results:
        assert r.samples == 512 and r.params > 0
        assert set(r.eval_names) == {"k8", "k12", "k16"}
        assert all(0.0 <= r.test[f"test/acc_{n}"] <= 1.0 for n in r.eval_names)
        # one validation per 256-sample epoch, timed from the start of fit
        assert [s for s, _, _ in r.curve] == [256, 512]
        assert 0 < r.curve[0][1] <= r.curve[1][1] <= r.wall_time_s + 1
    table = (tmp_path / "out" / "nth_farthest.md").read_text()
    assert "| model | params | samples | wall time | val k8 >= 95% | test acc k8 |" in table
    assert "| gcn |" in table and "| attention |" in table
    assert (tmp_path / "out" / "nth_farthest_acc_vs_samples.png").stat().st_size > 0
    assert (tmp_path / "out" / "nth_farthest_acc_vs_entities.png").stat().st_size > 0
    saved = json.loads((tmp_path / "out" / "nth_farthest.json").read_text())
    assert [r["name"] for r in saved["results"]] == ["gcn", "attention"]
    # merging saved results trains nothing and keeps the chosen models in the chosen order
    merge = ["--task", "nth_farthest", "--from-json", str(tmp_path / "out" / "nth_farthest.json")]
    merged = compare_supervised.main(
        [*merge, "--models", "attention", "--tag", "_merged", "--out", str(tmp_path / "out")]
    )
    assert merged == [results[1]]
    merged_table = (tmp_path / "out" / "nth_farthest_merged.md").read_text()
    assert "| attention |" in merged_table and "| gcn |" not in merged_table


def test_table_reports_time_to_target_and_groups_relational_question_types() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from compare_supervised import RunResult, markdown_table
    finally:
        sys.path.pop(0)
    result = RunResult(
        name="attention",
        config="configs/sort_of_clevr/attention.yaml",
        log_dir="runs/x",
        params=1000,
        samples=5000,
        wall_time_s=120.0,
        test={"test/acc_n6": 0.9, "test/acc_shape_n6": 1.0, "test/acc_count_n6": 0.8},
        curve=[(1000, 6.0, 0.5), (2000, 30.0, 0.96), (3000, 42.0, 0.97)],
        eval_names=["n6"],
        question_types=["shape", "count"],
        relational_types=["count"],
    )
    table = markdown_table([result], "1 min", target=0.95)
    assert "| non-relational | relational | shape | count |" in table
    row = "| attention | 1,000 | 5,000 | 2.0 min | 2,000 samples, 0.5 min | 90.0 | 100.0 | 80.0 |"
    assert row in table
    assert "not reached" in markdown_table([result], "1 min", target=0.99)


def test_eval_sizes_below_max_entities_fit_with_a_logger(tmp_path) -> None:
    """The DataModule's ``max_entities`` argument and the size it links into the model agree,
    so Lightning's hparams check passes when no split reaches ``max_entities``."""
    args = ["fit", "--config", str(NTH_GCN), f"--trainer.default_root_dir={tmp_path}"]
    args += ["--trainer.max_steps=1", "--trainer.limit_val_batches=0"]
    args += ["--data.init_args.eval_num_entities=[8]", "--trainer.enable_progress_bar=false"]
    cli = cli_main(args=args)
    assert cli.model.hparams.max_entities == cli.datamodule.hparams.max_entities == 16
