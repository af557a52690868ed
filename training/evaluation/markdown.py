"""Text for people: escaping for report.md (every string that comes from an input file --
labels, image names, reader IDs, paths -- goes through :func:`md_escape`, so a file cannot
inject markup), counted nouns, and how a model was chosen."""

from __future__ import annotations

_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "\\": "\\\\",
               "`": "\\`", "[": "\\[", "]": "\\]", "\r": " ", "\n": " "}


def md_escape(text: object) -> str:
    """Text safe inside a Markdown paragraph or table cell: no HTML, no table breaks, no
    links or code spans."""
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in str(text))


def plural(n: int, noun: str) -> str:
    """``1 label``, ``2 labels``, ``0 classes``."""
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun}es" if noun.endswith(("s", "x", "ch", "sh")) else f"{n} {noun}s"


def chosen_by_text(chosen_by: str) -> str:
    """How the model was chosen (``VerifiedPackage.chosen_by``), for people."""
    return {"--model": "chosen by --model",
            "user default": "your default model (no --model given; `chexnet models default`)",
            "bundled default": "the bundled default model (no --model given)",
            }.get(chosen_by, f"chosen by {chosen_by}" if chosen_by else "opened by path")
