"""What every ``chexnet`` subcommand shares: exit codes, the usage error, ``--model`` help and
argument types (so subcommand modules never import the top-level parser)."""

from __future__ import annotations

import argparse

from chexnet.inference.errors import ChexnetError

EXIT_OK, EXIT_INPUT_FAILED, EXIT_USAGE = 0, 1, 2

MODEL_HELP = ("model package: a path to an .onnx file or a package name from `chexnet models`. "
              "An existing file path wins, then names of user packages (`chexnet models add`), "
              "then bundled names (default: the bundled model)")



def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value



class UsageError(ChexnetError):
    """A command-line usage problem (exit code 2)."""
