"""Escaping for report.md: every string that comes from an input file (labels, image names,
reader IDs, paths) goes through :func:`md_escape`, so a file cannot inject markup."""

from __future__ import annotations

_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "\\": "\\\\",
               "`": "\\`", "[": "\\[", "]": "\\]", "\r": " ", "\n": " "}


def md_escape(text: object) -> str:
    """Text safe inside a Markdown paragraph or table cell: no HTML, no table breaks, no
    links or code spans."""
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in str(text))
