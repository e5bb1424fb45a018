"""One line for every bad input: the error types graphrl raises for the user, the top-level
handler of the ``graphrl`` command that turns any exception into one line on stderr and a non-zero
exit (a full traceback only with ``--debug`` or ``GRAPHRL_DEBUG=1``), and the translation of
jsonargparse's parse errors into such lines ("did you mean" from the valid keys).

The checks that raise these errors live in :mod:`graphrl.checks`.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

__all__ = [
    "BadArgument",
    "RunFailure",
    "UsageError",
    "bad_argument_line",
    "closest",
    "debugging",
    "did_you_mean",
    "handle_errors",
    "one_line",
    "parse_error_line",
]

DEBUG_FLAG = "--debug"
DEBUG_ENV = "GRAPHRL_DEBUG"

EXIT_USAGE = 2  # bad input: the user changes a flag or a file
EXIT_FAILURE = 1  # the run itself failed (a NaN loss, a crashed rank)


class UsageError(SystemExit):
    """Bad input, reported as its message alone (one line that names the flag to change).

    A ``SystemExit`` so that Python code calling a command (``cli_main``, ``evaluate_command``)
    gets the message and no traceback even without :func:`handle_errors`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class RunFailure(RuntimeError):
    """The run stopped for a reason its message states in full (the env that raised, the signal
    that preempted it, the checkpoint that could not be written): the top-level handler prints
    the message alone, as one line, and exits with ``exit_code`` (no "rerun with --debug" hint).

    Args:
        message: The whole line (what happened, where, and what to do).
        exit_code: The process's exit status (1: the run failed).
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(one_line(message))
        self.exit_code = exit_code


class BadArgument(ValueError):
    """A part's argument has a value it cannot take; ``argument`` is its parameter name.

    The CLI turns ``argument`` into the full flag of the run's config
    (``channels`` -> ``--model.init_args.channels``).
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to ``word`` (difflib), or None when none is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, choices: Iterable[str], format: str = "{}") -> str:
    """``"; did you mean X?"`` for the closest choice, else ``""``."""
    match = closest(word, choices)
    return f"; did you mean {format.format(match)}?" if match else ""


def one_line(text: str) -> str:
    """``text`` with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(text).split())


def debug_requested(argv: list[str]) -> bool:
    """Whether ``--debug`` is on the command line or ``GRAPHRL_DEBUG`` is set (not ``0``)."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "0") not in ("", "0")


def debugging() -> bool:
    """Whether this process runs under ``--debug`` / ``GRAPHRL_DEBUG=1`` (set by the handler)."""
    return debug_requested([])


def _rank_prefix() -> str:
    """``"[rank N] "`` inside a multi-process run: Lightning's launcher (and torchrun, SLURM)
    set ``LOCAL_RANK`` in every process, and it outlives the run's teardown."""
    if "LOCAL_RANK" not in os.environ:
        return ""
    return f"[rank {os.environ.get('RANK', os.environ.get('LOCAL_RANK', '0'))}] "


def exit_with(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    text = one_line(message)
    if text.startswith("error:"):
        text = text[len("error:") :].strip()
    text = f"error: {_rank_prefix()}{text}"
    print(text, file=sys.stderr, flush=True)
    raise SystemExit(code)


# What a collective raises on the ranks that survive when one rank of a run dies.
_PEER_GONE = re.compile(r"Connection closed by peer|Connection reset by peer|Broken pipe|NCCL")


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception that reached the top level."""
    if isinstance(exc, FloatingPointError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, RunFailure):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if _PEER_GONE.search(str(exc)) and _rank_prefix():
        return "stopped: another rank failed (see its error line)", EXIT_FAILURE
    if isinstance(exc, MemoryError):
        return "out of memory: lower the batch size or the number of envs", EXIT_FAILURE
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message} (rerun with {DEBUG_FLAG} for the traceback)", (
        EXIT_FAILURE
    )


def handle_errors(command: Callable[[list[str]], Any], argv: list[str]) -> Any:
    """Run ``command(argv)``; any exception (or ``SystemExit`` with a message) ends as one line.

    ``--debug`` is removed from ``argv``; with it (or ``GRAPHRL_DEBUG=1``) exceptions propagate
    with their traceback.
    """
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    if debug:
        previous = os.environ.get(DEBUG_ENV)
        os.environ[DEBUG_ENV] = "1"  # also seen by the parser and by DDP worker processes
        try:
            return command(argv)
        except UsageError:
            traceback.print_exc()  # where the check fired
            raise SystemExit(EXIT_USAGE) from None
        finally:
            if previous is None:
                os.environ.pop(DEBUG_ENV, None)
            else:
                os.environ[DEBUG_ENV] = previous
    try:
        return command(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            raise
        exit_with(str(exc.code))
    except BaseException as exc:
        message, code = describe(exc)
        exit_with(message, code)


def flatten_keys(config: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model.init_args.channels": 64, ...}`` for a nested mapping / jsonargparse Namespace."""
    items: Iterable[tuple[str, Any]]
    if hasattr(config, "items") and callable(config.items):
        items = config.items()
    elif hasattr(config, "__dict__") and type(config).__name__ == "Namespace":
        items = vars(config).items()
    else:
        return {}
    flat: dict[str, Any] = {}
    for key, value in items:
        full = f"{prefix}{key}"
        nested = flatten_keys(value, f"{full}.")
        if nested and not isinstance(value, (str, bytes)):
            flat.update(nested)
        else:
            flat[full] = value
    return flat


def flag_of(argument: str, config: Mapping[str, Any] | Any, value: Any = None) -> str:
    """The full flag (``--model.init_args.channels``) of parameter ``argument`` in ``config``.

    Prefers a key whose value equals ``value``; falls back to ``--<argument>``.
    """
    keys = [k for k in flatten_keys(config) if k == argument or k.endswith(f".{argument}")]
    keys = [k for k in keys if not k.startswith(("__", "config"))]
    if value is not None:
        same = [k for k in keys if _same(flatten_keys(config)[k], value)]
        keys = same or keys
    return f"--{keys[0]}" if keys else f"--{argument}"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return False


_GOT = re.compile(r"got (-?[\d.e+-]+)$")


def bad_argument_line(exc: BadArgument, config: Any) -> str:
    """``BadArgument`` as a line naming the full flag in ``config`` to change."""
    match = _GOT.search(str(exc))
    value: Any = None
    if match:
        text = match.group(1)
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                value = None
    flag = flag_of(exc.argument, config, value)
    return f"{exc}: change {flag}"


# ---------------------------------------------------------------- command-line parse errors

_PARSER_KEY = re.compile(r"""Parser key "([^"]+)"|class_path[ =]'([\w.]+)'""")
_NOT_ACCEPTED = re.compile(r"Option '([\w.]+)' is not accepted")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (--[\w.]+)")
_EXPECTED = re.compile(r"Expected an? (.+?)(?:\. Got value: (.*))?$")
_NO_FILE = re.compile(r"File does not exist: '([^']+)'")
_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "- Expected a <class 'NoneType'>",
    "Given value type:",
    "Given value:",
)


def _flag_keys(argv: list[str]) -> list[str]:
    """The keys of the ``--key[=value]`` flags in ``argv`` (``--config`` excluded)."""
    keys = [a.split("=", 1)[0][2:] for a in argv if a.startswith("--")]
    return [k for k in keys if k and k != "config"]


def _plain(key: str) -> str:
    """``model.init_args.processor.heads`` -> ``model.processor.heads`` (both spellings work)."""
    return ".".join(part for part in key.split(".") if part != "init_args")


def _users_flag(key: str, argv: list[str]) -> str | None:
    """The flag of ``argv`` that sets ``key`` (in either spelling), or None (set in a file)."""
    for given in _flag_keys(argv):
        if _plain(given) == _plain(key):
            return given
    return None


def _users_value(key: str | None, argv: list[str]) -> str | None:
    """The value ``argv`` gives flag ``--key`` (``--key=value`` or ``--key value``)."""
    if key is None:
        return None
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{key}="):
            return arg.split("=", 1)[1]
        if arg == f"--{key}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _type_name(text: str) -> str:
    """``<class 'int'>`` -> ``int``; ``typing.Literal['a', 'b']`` -> ``one of 'a', 'b'``."""
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text.strip())
    literal = re.fullmatch(r"typing\.Literal\[(.*)\]", text)
    if literal:
        return f"one of {literal.group(1)}"
    return text.replace("typing.", "").replace("collections.abc.", "")


def _chain(message: str) -> list[str]:
    """The config path a nested jsonargparse message walks: ``["model", "init_args", ...]``."""
    path: list[str] = []
    for key, class_path in _PARSER_KEY.findall(message):
        if key and key != "config":
            path.append(key)
        elif class_path:
            path.append("init_args")
    return path


def _class_keys(class_path: str) -> list[str]:
    """The keys a class's ``init_args`` accept (nested dataclass fields dotted)."""
    import importlib

    from jsonargparse import ArgumentParser

    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, fail_untyped=False)
    except Exception:
        return []
    keys = {s[2:] for action in parser._actions for s in action.option_strings if s[:2] == "--"}
    return sorted(k for k in keys if k != "help" and not k.endswith(".help"))


def _earlier_argument_hint(class_path: str, key: str, fuzzy: bool = False) -> str:
    """What to write instead of ``key``, an argument (or value form) of an earlier release.

    A class declares them in ``earlier_arguments``, ``{name: hint}``; ``{option}`` in a hint
    stands for the key, its first part spelt as declared (with ``fuzzy``, a misspelt earlier
    argument is recognised too). ``""`` when the class declares nothing for ``key``.
    """
    import importlib

    module_name, _, class_name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception:
        return ""
    hints = getattr(cls, "earlier_arguments", None) or {}
    head, dot, rest = key.partition(".")
    name = head if head in hints else (closest(head, hints) if fuzzy else None)
    if name is None:
        return ""
    return hints[name].replace("{option}", f"{name}{dot}{rest}")


def _parser_keys(parser: Any) -> list[str]:
    """Every ``--key`` an (argparse / jsonargparse) parser accepts, without the dashes."""
    keys = {s[2:] for a in parser._actions for s in a.option_strings if s.startswith("--")}
    return sorted(k for k in keys if k != "help" and not k.endswith(".help"))


def _unknown_option_line(option: str, class_path: str, chain: list[str], argv: list[str]) -> str:
    prefix = ".".join(chain)
    prefix = f"{prefix}." if prefix else ""
    keys = _class_keys(class_path)
    match = closest(option, keys)
    given = _users_flag(prefix + option, argv)
    where = f"--{given}" if given else f"{prefix}{option} (in the --config file)"
    line = f"unknown option {where}: {class_path} takes no argument {option!r}"
    hint = _earlier_argument_hint(class_path, option)
    if not hint and match:
        suggestion = given[: len(given) - len(option)] + match if given else prefix + match
        return f"{line}; did you mean --{suggestion}?"
    hint = hint or _earlier_argument_hint(class_path, option, fuzzy=True)
    if hint:
        return f"{line}; {hint}"
    if keys:
        supplied = {"observation_space", "action_space", "num_actions", "input_size", "spec"}
        top = sorted({k.split(".")[0] for k in keys} - supplied)  # those given at build
        top = [k for k in top if k.isidentifier()]
        line += f"; it takes: {', '.join(top)}"
    return line


def parse_error_line(message: str, parser: Any, argv: list[str]) -> str:
    """One line for a jsonargparse parse error ``message``: the flag, the problem, the fix.

    Args:
        message: The (multi-line) message jsonargparse reports.
        parser: The parser that rejected ``argv`` (its keys are the candidates for a typo).
        argv: The arguments given to that parser.
    """
    no_file = _NO_FILE.search(message)
    if no_file:
        return f"config file {no_file.group(1)!r} does not exist: pass an existing --config"
    if message.startswith("Unexpected config"):
        return (
            "a --config file is not a YAML mapping of sections (seed_everything:, model:, "
            "data:, trainer:): fix the file passed to --config"
        )
    chain = _chain(message)
    class_paths = re.findall(r"class_path[ =]'([\w.]+)'", message)
    option = _NOT_ACCEPTED.search(message)
    nested_unknown = _UNRECOGNIZED.search(message) if class_paths else None
    if option and class_paths:
        # The class that refused the option is the first named after the refusal; the keys
        # before it are the path to that class (each a class with its own init_args).
        after = re.findall(r"class_path[ =]'([\w.]+)'", message[option.end() :])
        keys = [k for k, _ in _PARSER_KEY.findall(message[: option.start()]) if k]
        keys = [k for k in keys if k != "config"]
        nested = [part for key in keys for part in (key, "init_args")]
        return _unknown_option_line(option.group(1), (after or class_paths)[0], nested, argv)
    if class_paths and nested_unknown:
        return _unknown_option_line(nested_unknown.group(1)[2:], class_paths[-1], chain, argv)
    expected = [
        _EXPECTED.match(ln.strip().lstrip("- "))
        for ln in message.splitlines()
        if "NoneType" not in ln and not ln.strip().startswith("Given value")
    ]
    expected = [m for m in expected if m]
    if expected and chain:
        key = ".".join(chain)
        given = _users_flag(key, argv)
        flag = f"--{given}" if given else f"{key} (in the --config file)"
        value = expected[-1].group(2) or _users_value(given, argv)
        got = f", got {value.strip()!r}" if value else ""
        hint = _earlier_argument_hint(class_paths[-1], chain[-1]) if class_paths else ""
        hint = f"; {hint}" if hint else ""
        return f"{flag} expects {_type_name(expected[-1].group(1))}{got}{hint}"
    if "unrecognized arguments" in message:
        known = _parser_keys(parser)
        for key in _flag_keys(argv):
            head = key.split(".", 1)[0]
            if key in known or (head in ("model", "data") and "." in key):
                continue
            return f"unknown option --{key}{did_you_mean(key, known, '--{}')}"
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(_NOISE)]
    prog = str(getattr(parser, "prog", "graphrl")).replace(" [options]", "")
    return one_line(" ".join(lines)) + f" (see {prog} --help)"
