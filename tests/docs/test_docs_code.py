"""Every code block of the guides and the README runs, so the docs cannot drift from the code.

For each page (``docs/guides/*.md``, ``docs/getting-started.md``, ``README.md``) the fenced
blocks run in order, in a fresh directory, in one module namespace per page:

- ```` ```python ```` blocks are executed. Sizes are shrunk first: a literal keyword argument
  ``total_timesteps=``, ``num_envs=``, ``num_steps=``, ``episodes=``, ``max_steps=`` or
  ``max_epochs=`` gets the small value in :data:`SMALL`, so a guide can show real sizes.
- A block (Python or YAML) whose first line is ``# file: NAME`` is written to ``NAME`` instead
  of run, as the reader would save it (later blocks import it or pass it to ``graphrl``).
- ```` ```yaml ```` blocks that are whole configs (a ``model:`` with a ``class_path``) are
  trained with ``graphrl fit`` at small sizes (RL: ``total_timesteps`` and ``num_envs``
  overridden on the command line; supervised: ``--trainer.max_steps``), or parsed only
  (``--print_config``) when they are not RL or supervised configs.
- Shell blocks are not run; ``tests/cli`` covers the commands they show.

A block is left out only with ``<!-- docs-test: skip REASON -->`` on the line before it.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from markdown_blocks import Block, read_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    *sorted((ROOT / "docs" / "guides").glob("*.md")),
    ROOT / "docs" / "getting-started.md",
    ROOT / "README.md",
]

SMALL = {
    "total_timesteps": "256",
    "num_envs": "4",
    "num_steps": "16",
    "episodes": "4",
    "max_steps": "2",
    "max_epochs": "1",
}
_SIZE = re.compile(r"\b(" + "|".join(SMALL) + r")=([0-9][0-9_]*)")
_FILE = re.compile(r"^#\s*file:\s*(\S+)\s*$")


def shrink(code: str) -> str:
    """``code`` with every literal size keyword of :data:`SMALL` set to its small value."""
    return _SIZE.sub(lambda m: f"{m.group(1)}={SMALL[m.group(1)]}", code)


def test_shrink_sets_sizes_and_leaves_other_code() -> None:
    code = "PPO(total_timesteps=200_000, num_envs=16, seed=3)\nx = num_envs\n"
    assert shrink(code) == "PPO(total_timesteps=256, num_envs=4, seed=3)\nx = num_envs\n"


@contextlib.contextmanager
def _page_module(name: str, where: Path) -> Iterator[types.ModuleType]:
    """A real module (so classes a page defines pickle into checkpoints) with ``where`` on
    ``sys.path`` (so files a page writes import)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    sys.path.insert(0, str(where))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield module
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(where))
        sys.modules.pop(name, None)


def _fit_yaml(block: Block, path: Path, root: Path) -> None:
    from graphrl.cli import main

    config = yaml.safe_load(block.code)
    model = (config or {}).get("model", {})
    class_path = model.get("class_path", "") if isinstance(model, dict) else ""
    argv = ["fit", "--config", str(path), f"--trainer.default_root_dir={root}"]
    if class_path.startswith("graphrl.rl."):
        argv += [
            f"--model.init_args.total_timesteps={SMALL['total_timesteps']}",
            f"--model.init_args.num_envs={SMALL['num_envs']}",
            f"--model.init_args.num_steps={SMALL['num_steps']}",
            "--model.init_args.num_minibatches=2",
        ]
    elif "data" in config:
        argv += ["--trainer.max_steps=2", "--trainer.limit_val_batches=1"]
    else:
        argv += ["--print_config"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            main(argv)
    except SystemExit as exc:
        assert exc.code in (0, None), f"{block.where}: graphrl fit exited with {exc.code}"


def _run_page(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run ``page``'s blocks; the number that ran."""
    monkeypatch.chdir(tmp_path)
    ran = 0
    name = "docs_" + re.sub(r"\W", "_", page.stem)
    with _page_module(name, tmp_path) as module:
        for block in read_blocks(page):
            if block.skip is not None or block.lang not in ("python", "yaml"):
                continue
            first = block.code.splitlines()[0] if block.code.strip() else ""
            target = _FILE.match(first)
            if target:
                (tmp_path / target.group(1)).write_text(block.code)
                ran += 1
                continue
            if block.lang == "python":
                code = compile(shrink(block.code), str(block.where), "exec")
                exec(code, module.__dict__)
                ran += 1
            elif isinstance(yaml.safe_load(block.code), dict) and "model" in yaml.safe_load(
                block.code
            ):
                path = tmp_path / f"block_{block.line}.yaml"
                path.write_text(block.code)
                _fit_yaml(block, path, tmp_path / f"run_{block.line}")
                ran += 1
    return ran


def _defined_on_page(obj: object, where: Path) -> bool:
    """Whether a registered class or env entry point comes from a page (its module namespace
    or a file it wrote under ``where``), not from a package imported along the way."""
    name = obj.split(":")[0] if isinstance(obj, str) else getattr(obj, "__module__", "") or ""
    if name.startswith("docs_"):
        return True
    file = getattr(sys.modules.get(name), "__file__", None)
    return file is not None and Path(file).resolve().is_relative_to(where.resolve())


@pytest.fixture
def _registries(tmp_path: Path) -> Iterator[None]:
    """A page's ``gym.register`` calls and registered parts stay on the page (its
    ``Corridor-v0`` is not the RL tests' toy env; its topology ``ring`` is gone after it).

    What a package imported during the page registers (``import minigrid`` registers the
    ``MiniGrid-*`` ids once per process) stays for the pages after it.
    """
    import gymnasium as gym

    from graphrl.registry import Registry

    saved = dict(gym.registry)
    parts = {kind: dict(registry._entries) for kind, registry in Registry.all().items()}
    yield
    for key, spec in list(gym.registry.items()):
        if key in saved:
            gym.registry[key] = saved[key]
        elif _defined_on_page(spec.entry_point, tmp_path):
            del gym.registry[key]
    for kind, registry in Registry.all().items():
        before = parts.get(kind, {})
        for name, obj in list(registry._entries.items()):
            if name in before:
                registry._entries[name] = before[name]
            elif _defined_on_page(obj, tmp_path):
                del registry._entries[name]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _registries: None
) -> None:
    _run_page(page, tmp_path, monkeypatch)


def test_skip_markers_give_reasons() -> None:
    for page in PAGES:
        read_blocks(page)  # raises on a skip marker without a reason or an unclosed fence


def test_a_broken_block_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "broken.md"
    page.write_text("```python\nfrom graphrl.models import NoSuchAgent\n```\n")
    with pytest.raises(ImportError, match="NoSuchAgent"):
        _run_page(page, tmp_path, monkeypatch)
