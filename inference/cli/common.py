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
    """An argparse type: a number in [0, 1] (thresholds, opacities)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (counts, threads, workers)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {low}")
    return value



class UsageError(ChexnetError):
    """A command-line usage problem (exit code 2)."""
