"""``chexnet models``: list, add and remove model packages; ``get`` public weights
(:mod:`.models_get`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chexnet.inference.cli.common import (
    EXIT_OK,
    UsageError,
)
from chexnet.inference.cli.models_get import register_get
from chexnet.inference.package.install import add_package, remove_package
from chexnet.inference.package.lookup import default_model_name, list_models, set_default_model
from chexnet.inference.package.registry import user_models_dir


def register(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="list, add, remove or get (download) model packages",
                       description="Model packages: the bundled ones and the user's own, kept in "
                                   f"{user_models_dir()} (set CHEXNET_HOME to move it; packages "
                                   "go in its models/ folder). Without a subcommand: list.")
    m.add_argument("--json", action="store_true", help="print the list as JSON")
    m.set_defaults(func=cmd_models_list)
    msub = m.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    ls = msub.add_parser("list", help="list bundled and user packages (the default)")
    ls.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                    help="print the list as JSON")
    ls.set_defaults(func=cmd_models_list)
    add = msub.add_parser("add", help="copy a package into the user folder and register it",
                          description="Check a package (card, graph, external data), copy it "
                                      "into the user models folder and record its sha256; a "
                                      "registered package that later changes is refused.")
    add.add_argument("package", metavar="PKG", type=Path, help="model package (.onnx) to add")
    add.add_argument("--name", help="name to use with --model (default: the file name stem)")
    add.add_argument("--force", action="store_true", help="replace a user package of that name")
    add.set_defaults(func=cmd_models_add)
    rm = msub.add_parser("remove", help="delete a user package and forget it")
    rm.add_argument("name", metavar="NAME", help="user package name (see `chexnet models`)")
    rm.set_defaults(func=cmd_models_remove)
    default = msub.add_parser(
        "default", help="show or set the model used when no --model is given",
        description="Every command and the viewer use --model if given, else your default "
                    "(set here), else the bundled default model.")
    default.add_argument("name", metavar="NAME", nargs="?",
                         help="a user or bundled package name (see `chexnet models`)")
    default.add_argument("--clear", action="store_true",
                         help="forget your default: the bundled model is used again")
    default.set_defaults(func=cmd_models_default)
    register_get(msub)


def cmd_models_list(args: argparse.Namespace) -> int:
    rows = list_models()
    if getattr(args, "json", False):
        json.dump({"user_models_dir": str(user_models_dir()),
                   "models": [r.to_dict() for r in rows]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not rows:
        print(f"no model packages installed (user folder: {user_models_dir()}); add one with "
              "`chexnet models add PKG`")
        return EXIT_OK
    table = [("NAME", "SOURCE", "CARD", "VERSION", "SHA256", "DEMO", "AUROC", "PATH")]
    for r in rows:
        demo = "-" if r.demo is None else ("yes" if r.demo else "no")
        table.append((r.name, r.source if r.ok else f"{r.source} BROKEN", r.card_name or "-",
                      r.version or "-", (r.sha256 or "-")[:12], demo,
                      "-" if r.auroc is None else f"{r.auroc:.3f}", r.path))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for r in rows:
        if not r.ok:
            print(f"broken: {r.name} ({r.source}): {r.problem}")
    name, chosen_by = default_model_name()
    print(f"default: {name or 'none'} ({chosen_by}; change it with `chexnet models default "
          "NAME`)")
    return EXIT_OK


def cmd_models_add(args: argparse.Namespace) -> int:
    entry = add_package(args.package, args.name, force=args.force)
    demo = " (DEMO)" if entry.demo else ""
    print(f"added {entry.name}: {entry.card_name} {entry.version}{demo}, sha256 "
          f"{entry.sha256[:12]}, at {entry.path}\nuse it with --model {entry.name}")
    return EXIT_OK


def cmd_models_remove(args: argparse.Namespace) -> int:
    path = remove_package(args.name)
    print(f"removed {args.name} ({path})")
    return EXIT_OK


def cmd_models_default(args: argparse.Namespace) -> int:
    if args.clear and args.name:
        raise UsageError("give a NAME or --clear, not both")
    if args.clear:
        set_default_model(None)
    elif args.name:
        package = set_default_model(args.name)
        demo = " (DEMO)" if package.card.demo else ""
        print(f"default model: {args.name}: {package.card.name} {package.card.version}{demo}, "
              f"sha256 {package.sha256[:12]}")
        return EXIT_OK
    name, chosen_by = default_model_name()
    print(f"default model: {name or 'none installed'} ({chosen_by})")
    return EXIT_OK
