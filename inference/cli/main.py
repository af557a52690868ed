"""The ``chexnet`` command line.

Exit codes: 0 everything read (images outside the intended use are reported, not failures);
1 some inputs could not be read (or a PACS could not be reached, or refused); 2 usage or
configuration error (bad option, missing model).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from chexnet.inference.cli.common import EXIT_INPUT_FAILED, EXIT_USAGE, UsageError
from chexnet.inference.cli.listen import register as add_listen_command
from chexnet.inference.cli.models import register as add_models_command
from chexnet.inference.cli.pacs import register as add_pacs_command
from chexnet.inference.cli.predict import register as add_predict_command
from chexnet.inference.cli.screen import register as add_screen_command
from chexnet.inference.errors import (
    ChexnetInputError,
    DeviceUnavailableError,
    ModelPackageError,
    PacsError,
)

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chexnet", description="Chest X-ray findings with a CheXNet model (ONNX Runtime).")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_predict_command(sub)
    add_screen_command(sub)
    add_listen_command(sub)
    add_pacs_command(sub)
    add_models_command(sub)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands other rooms provide (``export``, ``eval`` from chexnet.training), found through
    the ``chexnet.commands`` entry-point group, so this room never imports theirs. Each entry
    point is a ``register(subparsers)`` function; heavy imports happen only when it runs."""
    for ep in sorted(entry_points(group="chexnet.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as err:
            stub = sub.add_parser(ep.name, help=f"(unavailable: {err.name} is not installed)")
            stub.set_defaults(func=_missing_extra(ep.name, err))
            continue
        register(sub)


def _missing_extra(name: str, err: ImportError):
    def run(_args: argparse.Namespace) -> int:
        raise UsageError(f"`chexnet {name}` needs {err.name}, which is not installed: "
                         "pip install 'chexnet[train]'")
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (UsageError, ModelPackageError, DeviceUnavailableError) as err:
        print(f"chexnet {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (ChexnetInputError, PacsError) as err:
        print(f"chexnet {args.command}: error: {err}", file=sys.stderr)
        return EXIT_INPUT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
