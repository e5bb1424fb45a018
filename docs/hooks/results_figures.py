"""mkdocs hook: publish the figures under ``results/`` with the site, at the same paths.

The figures live in ``results/<area>/`` beside their data, outside ``docs/``; this hook adds
every image there to the site's files as ``results/<area>/<name>``, so a results page
``docs/results/<area>.md`` shows one as ``![...](<area>/<name>.png)`` and ``mkdocs build
--strict`` fails on a link to a figure that does not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

IMAGE_SUFFIXES = {".png", ".gif", ".svg", ".jpg"}


def on_files(files: Files, config: Any) -> Files:
    """Add ``results/**/<image>`` from the repository root to the site's files."""
    root = Path(config["config_file_path"]).parent
    for path in sorted((root / "results").rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            files.append(
                File(
                    path.relative_to(root).as_posix(),
                    src_dir=str(root),
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
            )
    return files
