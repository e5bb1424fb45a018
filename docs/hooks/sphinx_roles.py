"""mkdocs hook: show Sphinx cross-reference roles in docstrings as plain code.

graphrl's docstrings use Sphinx roles (``:class:`EntitySet```, ``:func:`make_env```), which
mkdocstrings renders as ``:class:`` followed by the code span. This hook drops the role prefix
from the page's HTML, so the text reads "see ``EntitySet``"; a leading ``~`` (Sphinx's "last
component only") is applied as Sphinx would.
"""

from __future__ import annotations

import re
from typing import Any

_TILDE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):\s*(<code>)([^<]*)</code>")


def _strip(match: re.Match[str]) -> str:
    text = match.group(2)
    if text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    return f"{match.group(1)}{text}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """``html`` with every ``:role:<code>x</code>`` turned into ``<code>x</code>``."""
    return _TILDE.sub(_strip, html)
