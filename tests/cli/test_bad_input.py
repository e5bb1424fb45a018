"""One line for every bad input: each case runs ``graphrl.cli.main`` in-process and must exit
non-zero with exactly one line on stderr, no traceback, naming the flag to change.

The table covers issue 7's "Bad input", "graphrl evaluate / render" and "Runtime failures"
lists; ``test_case_table_covers_the_issue`` counts it.
"""

from __future__ import annotations

import os

import pytest

from graphrl.cli import main

# (id, command line with {NAME} placeholders from the ``files`` fixture, substrings of the line)
CASES: list[tuple[str, str, tuple[str, ...]]] = [
    # --- misspelt keys: a "did you mean" from the valid keys, not the usage
    (
        "typo-model-key",
        "fit --config {SUP} --model.init_args.head_hiden=8",
        ("--model.init_args.head_hiden", "did you mean --model.init_args.head_hidden?"),
    ),
    (
        "typo-set-backbone-key",
        "fit --config {SUP} --model.init_args.backbone.init_args.topolgy=knn",
        ("did you mean --model.init_args.backbone.init_args.topology?",),
    ),
    (
        "typo-set-backbone-key-short",
        "fit --config {SUP} --model.backbone.topolgy=knn",
        ("did you mean --model.backbone.topology?",),
    ),
    (
        "typo-nested-key",
        "fit --config {SUP} --model.backbone.processor.hedas=2",
        ("did you mean --model.backbone.processor.heads?",),
    ),
    # --- arguments of earlier releases: one line naming the new form
    (
        "earlier-argument",
        "fit --config {SUP} --model.topology=knn",
        ("takes no argument 'topology'", "--model.backbone.topology", "graphrl.models.SetBackbone"),
    ),
    (
        "earlier-backbone-name",
        "fit --config {SUP} --model.backbone=graph",
        ("--model.backbone", "'graph'", "backbone: {class_path: graphrl.models.SetBackbone"),
    ),
    (
        "typo-policy-key",
        "fit --config {RL} --model.init_args.policy.init_args.hiden=8",
        ("did you mean --model.init_args.policy.init_args.hidden?",),
    ),
    (
        "typo-backbone-key",
        "fit --config {AGENT_YAML} --model.policy.backbone.topolgy=knn",
        (
            "RelationalBackbone takes no argument 'topolgy'",
            "did you mean --model.policy.backbone.topology?",
        ),
    ),
    (
        "unknown-backbone-key",
        "fit --config {AGENT_YAML} --model.policy.backbone.xyzzy=1",
        ("RelationalBackbone takes no argument 'xyzzy'; it takes: channels, encoder",),
    ),
    (
        "typo-trainer-key",
        "fit --config {SUP} --trainer.max_stesp=5",
        ("did you mean --trainer.max_steps?",),
    ),
    (
        "prefix-of-a-key",
        "fit --config {SUP} --trainer.max_step=5",  # no silent abbreviation
        ("unknown option --trainer.max_step", "did you mean --trainer.max_steps?"),
    ),
    (
        "typo-data-key",
        "fit --config {SUP} --data.init_args.batch_sise=4",
        ("did you mean --data.init_args.batch_size?",),
    ),
    (
        "typo-top-level-key",
        "fit --config {SUP} --seed_everythin=1",
        ("did you mean --seed_everything?",),
    ),
    (
        "typo-key-in-yaml",
        "fit --config {TYPO_YAML}",
        ("topolgy", "--config", "did you mean --model.init_args.backbone.init_args.topology?"),
    ),
    ("typo-command", "fitt --config {SUP}", ("unknown command 'fitt'", "did you mean fit?")),
    ("no-command", "", ("no command given",)),
    # --- wrong types
    (
        "type-model-int",
        "fit --config {SUP} --model.init_args.backbone.init_args.channels=abc",
        ("--model.init_args.backbone.init_args.channels", "expects int", "'abc'"),
    ),
    (
        "type-trainer-int",
        "fit --config {SUP} --trainer.max_steps=abc",
        ("--trainer.max_steps", "expects int"),
    ),
    (
        "type-rl-float",
        "fit --config {RL} --model.init_args.gamma=high",
        ("--model.init_args.gamma", "expects float"),
    ),
    (
        "type-choice",
        "fit --config {SUP} --model.init_args.scheduler_interval=hour",
        ("--model.init_args.scheduler_interval expects one of 'step', 'epoch', got 'hour'",),
    ),
    (
        "type-bool",
        "fit --config {SUP} --trainer.enable_checkpointing=maybe",
        ("--trainer.enable_checkpointing expects bool, got 'maybe'",),
    ),
    (
        "type-dict",
        "fit --config {SUP} --model.backbone.topology_kwargs={{k:",
        ("--model.backbone.topology_kwargs expects dict",),
    ),
    # --- config files
    ("yaml-missing", "fit --config {TMP}/nope.yaml", ("does not exist", "--config")),
    ("yaml-broken", "fit --config {BROKEN_YAML}", ("not valid YAML", "line", "--config")),
    ("yaml-not-mapping", "fit --config {LIST_YAML}", ("not a YAML mapping", "--config")),
    # --- sizes <= 0 name the argument
    (
        "channels-0",
        "fit --config {SUP} --model.backbone.channels=0",
        ("channels must be >= 1", "--model.init_args.backbone.init_args.channels"),
    ),
    (
        "channels-negative",
        "fit --config {SUP} --model.init_args.backbone.init_args.channels=-1",
        ("got -1", "--model.init_args.backbone.init_args.channels"),
    ),
    (
        "heads-0",
        "fit --config {SUP} --model.backbone.processor.heads=0",
        ("processor.heads must be >= 1", "--model.init_args.backbone.init_args.processor.heads"),
    ),
    (
        "num-layers-negative",
        "fit --config {SUP} --model.backbone.processor.num_layers=-1",
        ("num_layers must be >= 0", "--model.init_args.backbone.init_args.processor.num_layers"),
    ),
    (
        "head-hidden-0",
        "fit --config {SUP} --model.init_args.head_hidden=0",
        ("--model.init_args.head_hidden",),
    ),
    (
        "batch-size-0",
        "fit --config {SUP} --data.init_args.batch_size=0",
        ("batch_size must be >= 1", "--data.init_args.batch_size"),
    ),
    (
        "rl-num-envs-0",
        "fit --config {RL} --model.init_args.num_envs=0",
        ("num_envs must be >= 1", "--model.init_args.num_envs"),
    ),
    (
        "rl-policy-hidden-0",
        "fit --config {RL} --model.init_args.policy.init_args.hidden=0",
        ("--model.init_args.policy.init_args.hidden",),
    ),
    (
        "rl-gamma-out-of-range",
        "fit --config {RL} --model.init_args.gamma=2",
        ("gamma must be in [0, 1]", "--model.init_args.gamma"),
    ),
    # --- unknown part names (good before; kept)
    (
        "unknown-topology",
        "fit --config {SUP} --model.backbone.topology=nope",
        ("unknown topology 'nope'",),
    ),
    (
        "unknown-layer",
        "fit --config {SUP} --model.backbone.processor.layer=nope",
        ("unknown layer 'nope'",),
    ),
    # --- envs, alike in fit, evaluate, render
    (
        "fit-unknown-env",
        "fit --config {RL} --model.init_args.env_id=graphrl/BoxWorld-Smal-v0",
        ("unknown environment id", "--model.init_args.env_id"),
    ),
    (
        "fit-unknown-gym-env",
        "fit --config {RL} --model.init_args.env_id=CartPol-v1",
        ("unknown environment id", "did you mean 'CartPole-v1'?", "--model.init_args.env_id"),
    ),
    (
        "fit-unknown-env-kwarg",
        'fit --config {RL} --model.init_args.env_kwargs={{"nope":1}}',
        ("takes no keyword 'nope'", "--model.init_args.env_kwargs"),
    ),
    # --- checkpoints in fit / validate / test (checked before Lightning loads them)
    (
        "fit-missing-ckpt",
        "fit --config {SUP} --ckpt_path {TMP}/missing.ckpt",
        ("does not exist", "--ckpt_path"),
    ),
    (
        "fit-random-ckpt",
        "fit --config {SUP} --ckpt_path {RANDOM_CKPT}",
        ("corrupt or not a torch file", "--ckpt_path"),
    ),
    (
        "validate-truncated-ckpt",
        "validate --config {SUP} --ckpt_path {TRUNCATED_CKPT}",
        ("corrupt or not a torch file", "--ckpt_path"),
    ),
    (
        "test-foreign-ckpt",
        "test --config {SUP} --ckpt_path {FOREIGN_CKPT}",
        ("not a Lightning checkpoint", "--ckpt_path"),
    ),
    # --- run environment checked before any work
    (
        "log-dir-unwritable",
        "fit --config {SUP} --trainer.default_root_dir=/proc/graphrl/x",
        ("cannot write", "--trainer.default_root_dir"),
    ),
    (
        "gpu-without-gpu",
        "fit --config {SUP} --trainer.accelerator=gpu",
        ("no CUDA GPU", "--trainer.accelerator=cpu"),
    ),
    # --- command of the wrong kind for the model
    (
        "test-on-rl",
        "test --config {RL}",
        ("graphrl test needs a model with test_step", "graphrl evaluate"),
    ),
    ("validate-on-rl", "validate --config {RL}", ("validate_step", "graphrl evaluate")),
    ("predict-on-rl", "predict --config {RL}", ("predict_step", "graphrl evaluate")),
    # --- graphrl evaluate / render
    (
        "evaluate-episodes-0",
        "evaluate --ckpt {RL_CKPT} --episodes 0",
        ("episodes must be >= 1", "--episodes"),
    ),
    ("evaluate-num-envs-0", "evaluate --ckpt {RL_CKPT} --num_envs 0", ("--num_envs",)),
    (
        "evaluate-episodes-not-int",
        "evaluate --ckpt {RL_CKPT} --episodes many",
        ("--episodes", "invalid int value"),
    ),
    ("evaluate-typo-flag", "evaluate --ckpt {RL_CKPT} --episods 3", ("did you mean --episodes?",)),
    ("evaluate-no-ckpt", "evaluate --episodes 3", ("--ckpt",)),
    (
        "evaluate-unknown-env",
        "evaluate --ckpt {RL_CKPT} --env_id graphrl/BoxWorld-Smal-v0",
        ("unknown environment id", "--env_id"),
    ),
    (
        "evaluate-unknown-env-kwarg",
        'evaluate --ckpt {RL_CKPT} --env_kwargs {{"nope":1}}',
        ("takes no keyword 'nope'", "--env_kwargs"),
    ),
    (
        "evaluate-env-kwargs-not-json",
        "evaluate --ckpt {RL_CKPT} --env_kwargs {{nope",
        ("--env_kwargs", "not JSON"),
    ),
    (
        "evaluate-obs-mismatch",
        "evaluate --ckpt {RL_CKPT} --env_id graphrl/BoxWorld-Medium-v0",
        ("cannot read the observations", "(8, 8, 2)", "(10, 10, 2)", "--env_id"),
    ),
    (
        "evaluate-actions-mismatch",
        "evaluate --ckpt {RL_CKPT} --env_id MiniGrid-Empty-5x5-v0",
        ("acts in Discrete(4), not in Discrete(7)", "--env_id"),
    ),
    (
        "evaluate-supervised-ckpt",
        "evaluate --ckpt {SUP_CKPT}",
        ("RelationalClassifier, not an RL agent", "--ckpt"),
    ),
    ("evaluate-missing-ckpt", "evaluate --ckpt {TMP}/missing.ckpt", ("does not exist", "--ckpt")),
    ("evaluate-random-ckpt", "evaluate --ckpt {RANDOM_CKPT}", ("corrupt", "--ckpt")),
    (
        "render-unknown-env",
        "render --ckpt {RL_CKPT} --env_id Nope-v0 --out {TMP}/a.gif",
        ("unknown environment id", "--env_id"),
    ),
    (
        "render-unknown-env-kwarg",
        'render --ckpt {RL_CKPT} --env_kwargs {{"nope":1}} --out {TMP}/b.gif',
        ("takes no keyword 'nope'", "--env_kwargs"),
    ),
    (
        "render-obs-mismatch",
        "render --ckpt {RL_CKPT} --env_id graphrl/BoxWorld-Medium-v0 --out {TMP}/c.gif",
        ("cannot read the observations", "--env_id"),
    ),
    (
        "render-supervised-ckpt",
        "render --ckpt {SUP_CKPT} --out {TMP}/d.gif",
        ("not an RL agent", "--ckpt"),
    ),
    (
        "render-out-dir-missing",
        "render --ckpt {RL_CKPT} --out {TMP}/no/such/dir/e.gif",
        ("does not exist", "--out"),
    ),
    (
        "render-out-unwritable",
        "render --ckpt {RL_CKPT} --out /proc/e.gif",
        ("cannot write", "--out"),
    ),
    (
        "render-out-exists",
        "render --ckpt {RL_CKPT} --out {EXISTING_GIF}",
        ("exists", "--out", "--force"),
    ),
    (
        "render-max-steps-0",
        "render --ckpt {RL_CKPT} --max_steps 0 --out {TMP}/f.gif",
        ("--max_steps",),
    ),
    # --- runtime failures in fit
    (
        "fit-nan-supervised",
        "fit --config {SUP} --model.init_args.optimizer.init_args.lr=1e30 "
        "--trainer.default_root_dir={TMP}/nan_sup",
        ("loss is nan at step", "--model.init_args.optimizer.init_args.lr"),
    ),
    (
        "fit-nan-rl",
        "fit --config {RL} --model.init_args.learning_rate=1e30 "
        "--trainer.default_root_dir={TMP}/nan_rl",
        ("non-finite loss at iteration", "--model.init_args.learning_rate"),
    ),
]


def _argv(command: str, files: dict[str, str]) -> list[str]:
    return [arg.format(**files) for arg in command.split()]


@pytest.mark.parametrize(("command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_ends_in_one_line_naming_the_flag(
    command, expected, files, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(files["TMP"])  # a case accepted by mistake trains into the tmp dir
    with pytest.raises(SystemExit) as exc:
        main(_argv(command, files))
    assert exc.value.code not in (0, None)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("error: ")
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"


def test_nothing_is_written_by_a_refused_render(files, capsys) -> None:
    before = os.path.getsize(files["EXISTING_GIF"])
    with pytest.raises(SystemExit):
        main(_argv("render --ckpt {RL_CKPT} --out {EXISTING_GIF}", files))
    assert os.path.getsize(files["EXISTING_GIF"]) == before
    assert not os.path.exists(os.path.join(files["TMP"], "no"))


def test_case_table_covers_the_issue() -> None:
    """Issue 7 lists these; every one has at least one case (ids are the names below)."""
    ids = {c[0] for c in CASES}
    asked = {
        "typo-model-key",
        "type-model-int",
        "yaml-missing",
        "yaml-broken",
        "channels-0",
        "channels-negative",
        "heads-0",
        "fit-unknown-env",
        "evaluate-unknown-env",
        "render-unknown-env",
        "evaluate-episodes-0",
        "evaluate-unknown-env-kwarg",
        "evaluate-obs-mismatch",
        "render-obs-mismatch",
        "evaluate-supervised-ckpt",
        "render-supervised-ckpt",
        "render-out-unwritable",
        "fit-random-ckpt",
        "validate-truncated-ckpt",
        "log-dir-unwritable",
        "gpu-without-gpu",
        "test-on-rl",
        "fit-nan-supervised",
        "fit-nan-rl",
    }
    assert asked <= ids
    assert len(ids) == len(CASES)  # ids are unique
