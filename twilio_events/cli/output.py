"""What the command prints: aligned plain-text tables, and the one-line error that ends a command."""

from __future__ import annotations

from collections.abc import Sequence


class CommandError(Exception):
    """A mistake the user can fix: the command prints this one line and exits non-zero."""


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """`rows` under `header`, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join(lines)


def one_line(text: str, limit: int = 200) -> str:
    """`text` on a single line, shortened to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
