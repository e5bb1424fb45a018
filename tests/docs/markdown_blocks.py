"""Fenced code blocks of the docs' Markdown pages, as the docs tests read them.

A block is a fence at the start of a line (```` ```python ````, ```` ```yaml ````, ...). The
line before it may opt it out of the tests with a reason::

    <!-- docs-test: skip needs a GPU -->

A skip without a reason is an error, so every untested block says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```([\w+-]*)\s*$")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\b(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, code, 1-based line of the opening fence, and why it
    is skipped (``None`` when it runs)."""

    path: Path
    lang: str
    code: str
    line: int
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def read_blocks(path: Path) -> list[Block]:
    """Every top-level fenced block of ``path``, in order.

    Raises:
        ValueError: for a fence that is never closed or a skip marker without a reason.
    """
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, lang = i, match.group(1)
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            i += 1
        if i == len(lines):
            raise ValueError(f"{path.name}:{start + 1}: code fence never closed")
        previous = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        skip = SKIP.match(previous.strip())
        reason = None
        if skip:
            reason = skip.group(1).strip()
            if not reason:
                raise ValueError(f"{path.name}:{start}: docs-test skip marker gives no reason")
        blocks.append(Block(path, lang, "\n".join(lines[start + 1 : i]) + "\n", start + 1, reason))
        i += 1
    return blocks
