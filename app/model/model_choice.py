"""Which model the viewer runs and how it was chosen.

The viewer follows the one rule every command follows
(:func:`~chexnet.inference.package.lookup.resolve_model`): ``--model`` if given, else the user's
default (``chexnet models default NAME``), else the bundled default. A package picked in
File > Model… runs for this session only, unless the reader also makes it the default for every
command (:func:`make_default`, on a worker: it verifies the package, and may copy it).
"""

from __future__ import annotations

from dataclasses import dataclass

from chexnet.inference.package.install import add_package
from chexnet.inference.package.lookup import set_default_model

#: How a package chosen in the model dialog was chosen (the CLI's are ``--model``,
#: ``user default`` and ``bundled default``).
CHOSEN_IN_DIALOG = "File > Model…"

_WORDS = {"--model": "chosen by --model",
          "user default": "your default model (chexnet models default)",
          "bundled default": "the bundled default model",
          CHOSEN_IN_DIALOG: "chosen in File > Model… for this session"}


def how_chosen(chosen_by: str) -> str:
    """``chosen_by`` in the words the findings panel shows."""
    return _WORDS.get(chosen_by, f"chosen by {chosen_by}" if chosen_by else "")


@dataclass(frozen=True)
class ModelChoice:
    """What the reader picked in File > Model…: the package ``path``, its package ``name``
    (None for a file browsed to, not registered), and whether to make it the default."""

    path: str
    name: str | None = None
    make_default: bool = False


def make_default(choice: ModelChoice) -> str:
    """Make the chosen package the default for every command (runs on a worker). A file that is
    no registered package is first copied into the user's models folder, as ``chexnet models
    add`` does. Returns what was done, in words; raises ChexnetError when it cannot be done."""
    name, said = choice.name, ""
    if name is None:
        entry = add_package(choice.path)
        name, said = entry.name, f"registered {choice.path} as {entry.name!r}; "
    set_default_model(name)
    return f"{said}{name!r} is now your default model for every command"
