"""Project commands beside Lightning's: ``graphrl evaluate``, ``graphrl render`` and
``graphrl list``.

    graphrl evaluate --ckpt runs/boxworld/.../checkpoints/last.ckpt --episodes 200 \\
        [--env_id graphrl/BoxWorld-Small-v0] [--env_kwargs '{"goal_length": 3}'] [--greedy]
    graphrl evaluate --ckpt .../last.ckpt --env_id graphrl/BoxWorld-Small-v0 \\
        graphrl/BoxWorld-Medium-v0,graphrl/BoxWorld-12x12-v0 --out results/zero_shot  # a table
    graphrl evaluate --ckpt .../last.ckpt --env_kwargs '{"goal_length": 4}' '{"goal_length": 5}'
    graphrl render --ckpt .../last.ckpt --out episode.gif [--seed 0]
    graphrl list                # every registered name, one line per kind
    graphrl list topology       # one kind, one name per line
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
from typing import Any

import torch

from graphrl.checks import check_checkpoint, check_env, check_output_file, check_positive
from graphrl.errors import BadArgument, UsageError, did_you_mean, one_line

SAMPLED_HELP = (
    "take the argmax action instead of sampling from the policy (sampling is what training, the "
    "published results and the Python API's evaluate(greedy=False) do)"
)


class CommandHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except required options and options whose
    default ``None`` the help text explains."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required or action.default is None or "%(default)" in text:
            return text
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (``UsageError``) with a "did you mean" for a
    misspelt option, instead of the usage text. No abbreviations (as the Lightning commands);
    help shows every option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", CommandHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            flag = unknown.group(1).split("=", 1)[0]
            options = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
            message = f"unknown option {flag}{did_you_mean(flag, options)}"
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _check_counts(**values: int) -> None:
    """Counts given on the command line are >= 1; the message names the flag."""
    try:
        check_positive(**values)
    except BadArgument as exc:
        raise UsageError(f"{exc}: pass --{exc.argument} >= 1") from None


def _space_text(space: Any) -> str:
    """``(8, 8, 2)`` for a Box, the kind for spaces without one shape (``Dict``, ``Graph``)."""
    return str(tuple(space.shape)) if space.shape is not None else type(space).__name__


def check_agent_reads_env(agent: Any, env_id: str, env_kwargs: dict[str, Any]) -> None:
    """The agent's policy takes ``env_id``'s observations and actions (one forward pass).

    Graph policies read levels of other sizes, so shapes alone do not decide; a policy that
    cannot read the observation (another grid, other symbols) fails here in one line instead of
    a traceback mid-episode.
    """
    from graphrl.envs import make_env
    from graphrl.envs.vector import env_spaces
    from graphrl.graphs.observations import as_observation, stack_observations
    from graphrl.rl.recurrent import is_recurrent

    check_env(env_id, env_kwargs, "--env_id", "--env_kwargs")
    space, actions = env_spaces(env_id, env_kwargs)
    trained = f"{agent.hparams.env_id} {_space_text(agent.observation_space)}"
    check = getattr(agent.policy, "check_action_space", None)
    try:
        if check is not None:  # the policy's head says which action spaces it can act in
            check(actions)
        elif actions != agent.action_space:
            raise ValueError(f"the agent acts in {agent.action_space}, not in {actions}")
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{env_id}: {one_line(exc)} (trained on {trained}): pass an --env_id with the "
            "training env's actions"
        ) from None
    env = make_env(env_id, **env_kwargs)
    try:
        obs, _ = env.reset(seed=0)
        with torch.no_grad():
            batch = as_observation(stack_observations([obs], space), space, agent.device)
            if is_recurrent(agent.policy):  # one step from the initial state
                start = torch.ones(1, dtype=torch.bool, device=agent.device)
                agent.policy(batch, agent.policy.initial_state(1, agent.device), start)
            else:
                agent.policy(batch)
    except Exception as exc:
        raise UsageError(
            f"the agent (trained on {trained}) cannot read the observations of {env_id} "
            f"{_space_text(space)} ({type(exc).__name__}: {one_line(exc)[:120]}): pass an "
            "--env_id whose observations match the training env"
        ) from None
    finally:
        env.close()


def load_agent(path: str):  # -> OnPolicyModule
    """Load a trained RL LightningModule (PPO, A2C, ...) from a checkpoint, on the CPU."""
    check_checkpoint(path, "--ckpt")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    class_path = (
        ckpt.get("graphrl_module_class")
        or (ckpt.get("hyper_parameters") or {}).get("_class_path")
        or "graphrl.rl.PPO"
    )
    module_name, _, cls_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if not hasattr(cls, "evaluate"):
        raise UsageError(
            f"{path!r} holds a {cls_name}, not an RL agent: pass to --ckpt a checkpoint written "
            "by a PPO or A2C run (graphrl test --ckpt_path measures supervised models)"
        )
    agent = cls.load_from_checkpoint(path, map_location="cpu")
    agent.eval()
    return agent


def _json_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def evaluate_parser() -> CommandParser:
    """The options of ``graphrl evaluate``."""
    parser = CommandParser(
        prog="graphrl evaluate",
        description="Evaluate a trained agent on fresh levels: one JSON line per env (solve "
        "rate, mean return, mean length), and a markdown table for several.",
    )
    parser.add_argument(
        "--ckpt", required=True, help="checkpoint of a PPO/A2C run (e.g. .../checkpoints/last.ckpt)"
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes per env")
    parser.add_argument(
        "--env_id",
        nargs="+",
        default=None,
        help="env id(s), space- or comma-separated (one row each); default: the training env",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="also write the rows to OUT.jsonl and a table to OUT.md; default: print only",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing --out files")
    parser.add_argument(
        "--env_kwargs",
        type=_json_dict,
        nargs="+",
        default=[{}],
        help="JSON overrides, e.g. '{\"goal_length\": 3}'; several: every env runs with each",
    )
    parser.add_argument(
        "--seed", type=int, default=10_000, help="env i is seeded seed + i (fresh levels)"
    )
    parser.add_argument("--greedy", action="store_true", help=SAMPLED_HELP)
    parser.add_argument("--num_envs", type=int, default=8, help="envs stepped in parallel")
    return parser


def evaluate_command(argv: list[str]) -> dict[str, Any] | list[dict[str, Any]]:
    """``graphrl evaluate``: one JSON line per env (env_id, env_kwargs, solve_rate,
    mean_return, mean_length, episodes) and, for several envs, a markdown table; the row (one
    env) or the rows."""
    args = evaluate_parser().parse_args(argv)
    from graphrl.envs.boxworld_colors import fit_symbols
    from graphrl.rl.evaluation import evaluate_presets, markdown_table

    _check_counts(episodes=args.episodes, num_envs=args.num_envs)
    env_ids = [e for arg in args.env_id for e in arg.split(",") if e] if args.env_id else [None]
    paths = [f"{args.out}.jsonl", f"{args.out}.md"] if args.out else []
    for path in paths:
        check_output_file(path, "--out", force=args.force)
    torch.set_num_threads(1)
    agent = load_agent(args.ckpt)

    def check(env_id: str, kwargs: dict[str, Any]) -> None:
        check_env(env_id, kwargs, "--env_id", "--env_kwargs")
        try:
            kwargs = fit_symbols(agent.observation_space, env_id, kwargs)
        except ValueError as exc:  # the env's symbols do not fit the agent's
            raise UsageError(f"{exc}; or pass another --env_id") from None
        check_agent_reads_env(agent, env_id, kwargs)

    rows = evaluate_presets(
        agent,
        env_ids,
        episodes=args.episodes,
        seed=args.seed,
        greedy=args.greedy,
        num_envs=args.num_envs,
        env_kwargs=args.env_kwargs,
        check=check,
    )
    lines = [json.dumps(row) for row in rows]
    print("\n".join(lines))
    if len(rows) > 1:
        print(markdown_table(rows))
    if args.out:
        with open(paths[0], "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(paths[1], "w") as f:
            f.write(markdown_table(rows) + "\n")
    return rows[0] if len(rows) == 1 else rows


def render_parser() -> CommandParser:
    """The options of ``graphrl render``."""
    parser = CommandParser(
        prog="graphrl render",
        description="Write a GIF of episodes: each frame the observation, the agent's "
        "attention where its policy has any, and the step, action and reward.",
    )
    parser.add_argument(
        "--ckpt", required=True, help="checkpoint of a PPO/A2C run (e.g. .../checkpoints/last.ckpt)"
    )
    parser.add_argument("--out", default="episode.gif", help="GIF to write")
    parser.add_argument("--env_id", default=None, help="env id; default: the training env")
    parser.add_argument(
        "--env_kwargs",
        type=_json_dict,
        default={},
        help="JSON overrides of the training env's kwargs, e.g. '{\"goal_length\": 3}'",
    )
    parser.add_argument("--seed", type=int, default=0, help="level seed of the first episode")
    parser.add_argument("--greedy", action="store_true", help=SAMPLED_HELP)
    parser.add_argument("--max_steps", type=int, default=200, help="steps per episode at most")
    parser.add_argument(
        "--episodes", type=int, default=1, help="episodes in the GIF (seeds --seed, --seed + 1...)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")
    return parser


def render_command(argv: list[str]) -> str:
    """``graphrl render``: a GIF of episodes with the agent's attention (see
    :func:`graphrl.render.render_episode`)."""
    from graphrl.render import render_episode

    args = render_parser().parse_args(argv)
    _check_counts(max_steps=args.max_steps, episodes=args.episodes)
    check_output_file(args.out, "--out", force=args.force)
    agent = load_agent(args.ckpt)
    env_id = args.env_id or agent.hparams.env_id
    env_kwargs = {**(agent.hparams.env_kwargs or {}), **args.env_kwargs}
    check_env(env_id, env_kwargs, "--env_id", "--env_kwargs")
    check_agent_reads_env(agent, env_id, env_kwargs)
    summary = render_episode(
        agent.policy,
        env_id,
        env_kwargs,
        args.out,
        seed=args.seed,
        greedy=args.greedy,
        max_steps=args.max_steps,
        episodes=args.episodes,
    )
    print(json.dumps({"gif": os.path.abspath(args.out), **summary}))
    return args.out


LIST_KINDS_HELP = "env, model, data, policy, or a part kind (encoder, topology, layer, ...)"


def _kind(word: str, kinds: list[str]) -> str:
    """``word`` as one of ``kinds``, plurals taken (``topologies`` -> ``topology``)."""
    for kind in kinds:
        if word in (kind, f"{kind}s", f"{kind}es", f"{kind[:-1]}ies"):
            return kind
    raise UsageError(
        f"graphrl list: unknown kind {word!r}{did_you_mean(word, kinds)} (kinds: "
        f"{', '.join(kinds)})"
    )


def list_command(argv: list[str]) -> dict[str, list[str]]:
    """``graphrl list [kind]``: what graphrl offers by name, read from its registries.

    Without a kind, one line per kind (``topology: complete, criss_cross, ...``); with one, its
    names one per line. Returns ``{kind: names}`` of what was printed.
    """
    from graphrl.catalog import catalog

    parser = CommandParser(
        prog="graphrl list",
        description="List what graphrl offers by name: the envs it registers, the models "
        "(--model), data modules (--data) and policies (--model.init_args.policy), and every "
        "part registry (encoders, topologies, layers, readouts, cores, ...). Configs take "
        "these names; any class path package.module.Class works as well.",
    )
    parser.add_argument("kind", nargs="?", default=None, help=LIST_KINDS_HELP)
    args = parser.parse_args(argv)
    listed = catalog()
    if args.kind is None:
        width = max(len(kind) for kind in listed)
        for kind, names in listed.items():
            print(f"{kind:<{width}}  {', '.join(names)}")
        return listed
    kind = _kind(args.kind, list(listed))
    print("\n".join(listed[kind]))
    return {kind: listed[kind]}
