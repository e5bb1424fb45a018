"""What `graphrl --help`, the commands' help and `graphrl list` tell a user: every command, the
registered choices of each part, graphrl's models and policies, every option's default."""

from __future__ import annotations

import inspect
import re

import pytest

from graphrl.catalog import part_kinds, part_names
from graphrl.cli import COMMANDS, main
from graphrl.commands import evaluate_parser, render_parser
from graphrl.registry import Registry
from graphrl.render import render_episode
from graphrl.rl.evaluation import evaluate_policy, evaluate_presets
from graphrl.rl.on_policy import OnPolicyModule

EVERY_COMMAND = ("fit", "validate", "test", "predict", "evaluate", "render", "list")


def _flat(text: str) -> str:
    """Help text with its line wrapping undone."""
    return " ".join(text.split())


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The help ``graphrl argv`` prints (jsonargparse exits 0 after printing it)."""
    try:
        main(list(argv))
    except SystemExit as exc:
        assert exc.code in (0, None)
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_with_one_line(capsys) -> None:
    text = _help(capsys, "--help")
    assert set(COMMANDS) == set(EVERY_COMMAND)
    for command in EVERY_COMMAND:
        assert re.search(rf"^\s+{command}\s+\S", text, re.MULTILINE), command


def test_fit_help_names_graphrl_models_not_the_base_class(capsys) -> None:
    text = _flat(_help(capsys, "fit", "--help"))
    for model in ("graphrl.rl.PPO", "graphrl.rl.A2C", "graphrl.models.RelationalClassifier"):
        assert model in text
    assert "known subclasses: lightning.LightningModule" not in text
    assert "<class 'lightning" not in text  # the group is titled by what it takes


def test_policy_help_names_graphrl_policies_not_torch_modules(capsys) -> None:
    text = _flat(_help(capsys, "fit", "--model.help", "graphrl.rl.PPO"))
    policy = text[text.rindex("--model.policy POLICY") :]  # its help, after the usage
    policy = policy[: policy.index("--model.", 10)]
    assert "graphrl.models.ActorCritic" in policy  # the one agent
    for name in ("graphrl.models.GraphActorCritic", "MLPPolicy", "CNNPolicy"):  # older ones
        assert name in policy
    assert "torch.nn." not in policy


def test_part_arguments_name_their_registered_choices(capsys) -> None:
    text = _flat(
        _help(
            capsys,
            *("fit", "--model", "graphrl.rl.PPO"),
            *("--model.policy.help", "graphrl.models.GraphActorCritic"),
        )
    )
    for kind in ("encoder", "topology", "layer", "readout"):
        names = part_names(kind)
        assert names, kind
        assert f"registered: {', '.join(names)} (graphrl list {kind})" in text, kind


@pytest.mark.parametrize("make_parser", [evaluate_parser, render_parser])
def test_every_evaluate_and_render_option_has_help_and_its_default(make_parser) -> None:
    parser = make_parser()
    text = _flat(parser.format_help())
    for action in parser._actions:
        if "-h" in action.option_strings:
            continue
        assert action.help, action.dest
        if not action.required and action.default is not None:
            assert f"(default: {action.default})" in text, action.dest


def _default(function, name: str = "greedy"):
    return inspect.signature(function).parameters[name].default


def test_sampled_evaluation_is_the_one_default_of_the_cli_and_python() -> None:
    cli = evaluate_parser().parse_args(["--ckpt", "agent.ckpt"]).greedy
    rendered = render_parser().parse_args(["--ckpt", "agent.ckpt"]).greedy
    python = {
        _default(OnPolicyModule.evaluate),
        _default(evaluate_policy),
        _default(evaluate_presets),
        _default(render_episode),
    }
    assert cli is False and rendered is False and python == {False}
    assert "sampl" in evaluate_parser().format_help()
    assert "sampled" in OnPolicyModule.evaluate.__doc__


def test_list_prints_every_registry_and_the_models(capsys) -> None:
    main(["list"])
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    for kind in part_kinds():
        assert lines[kind].split(", ") == part_names(kind)
    assert {"core", "encoder", "layer", "readout", "topology"} <= set(lines)
    assert "graphrl.rl.PPO" in lines["model"].split(", ")
    assert "graphrl.models.GraphActorCritic" in lines["policy"].split(", ")
    assert "graphrl/BoxWorld-Small-v0" in lines["env"].split(", ")


def test_list_reads_a_new_registry_and_one_kind_prints_one_name_per_line(
    capsys, monkeypatch
) -> None:
    monkeypatch.setattr(Registry, "_all", dict(Registry._all))  # the new registry goes after
    probes: Registry[object] = Registry("probe")
    probes.register("beta")(object)
    probes.register("alpha")(object)
    main(["list", "probes"])
    assert capsys.readouterr().out.splitlines() == ["alpha", "beta"]


def test_list_of_an_unknown_kind_is_one_line_naming_the_closest(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["list", "topolgy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean topology?" in err[0]


def test_the_agents_part_arguments_name_their_registered_classes(capsys) -> None:
    text = _flat(_help(capsys, "fit", "--model", "graphrl.rl.PPO", "--model.init_args.policy.help",
                       "graphrl.models.ActorCritic"))  # fmt: skip
    backbone = text[text.rindex("--policy.backbone BACKBONE") :]
    backbone = backbone[: backbone.index("--policy.", 10)]
    for name in ("graphrl.models.RelationalBackbone", "graphrl.models.FlatBackbone"):
        assert name in backbone
    assert "SetBackbone" not in backbone and "torch.nn" not in backbone
    core = text[text.rindex("--policy.core CORE") :]
    core = core[: core.index("--policy.", 10)]
    assert "graphrl.nn.LSTMCore" in core and "graphrl.nn.MottQueryCore" in core
