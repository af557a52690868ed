"""``chexnet models get NAME`` / ``--list``: public CheXNet weights from the catalogue, downloaded
only on this explicit command, converted and registered (:mod:`chexnet.inference.package.
get_model`)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from chexnet.inference.cli.common import EXIT_INPUT_FAILED, EXIT_OK, UsageError
from chexnet.inference.package.card import DEMO_NOTICE, ModelCard
from chexnet.inference.package.catalogue import (
    MIRROR_ENV,
    CatalogueEntry,
    CatalogueError,
    catalogue_entry,
    download_url,
    load_catalogue,
)
from chexnet.inference.package.download import (
    DEFAULT_TIMEOUT_S,
    DownloadError,
    InsecureURLError,
    NetworkUnavailableError,
    check_url,
)
from chexnet.inference.package.get_model import (
    ConversionError,
    ConverterUnavailableError,
    Installed,
    check_name_free,
    convert_and_register,
    download_path,
    fetch,
    local_file,
)

DESCRIPTION = f"""\
Download a public CheXNet-style release (see --list), convert it into a checked model package
and register it under its catalogue name (use it with --model NAME). Nothing is ever downloaded
except by this command.

Downloads: HTTPS only, certificates verified (plain http:// is accepted only from this machine:
127.0.0.1, ::1, localhost); a progress bar on a terminal; an interrupted download resumes where
it stopped when the command is run again; the size is checked against what the server announced;
the file's sha256 is printed and recorded in the package's card (--sha256 pins it: a mismatch
deletes the download). Files are kept in <chexnet home>/downloads/NAME/.

Mirrors: --url gives one file's address; ${MIRROR_ENV}=BASE fetches every release from
BASE/NAME/FILE (a hospital mirror; https_proxy and SSL_CERT_FILE are honoured).

Offline: copy the file from the release's source by hand, then
  chexnet models get NAME --file FILE
(or: chexnet import FILE --format FORMAT [--variant NAME] --out NAME.onnx, then
chexnet models add NAME.onnx).
Converting needs the training extra: pip install 'chexnet[train]'."""


def register_get(msub: argparse._SubParsersAction) -> None:
    g = msub.add_parser("get", help="download, convert and register public CheXNet weights",
                        description=DESCRIPTION,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("name", metavar="NAME", nargs="?", help="a catalogue name (see --list)")
    g.add_argument("--list", action="store_true", help="show the catalogue and exit")
    g.add_argument("--url", help="fetch the file from this address instead (a mirror); https://")
    g.add_argument("--file", type=Path, metavar="FILE",
                   help="do not download: convert this copy of the release's file")
    g.add_argument("--sha256", metavar="HEX", type=_sha256,
                   help="the file's expected sha256; a mismatch deletes it and fails")
    g.add_argument("--name", dest="package_name", metavar="PKG",
                   help="register under this name (default: NAME)")
    g.add_argument("--force", action="store_true",
                   help="download and convert again, replacing a package of that name")
    g.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="give up when the server sends nothing for S seconds (default "
                        f"{DEFAULT_TIMEOUT_S:g})")
    g.set_defaults(func=cmd_models_get)


def _sha256(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a sha256 (64 hexadecimal digits)")
    return text.lower()


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return value


def cmd_models_get(args: argparse.Namespace) -> int:
    if args.list:
        print_catalogue()
        return EXIT_OK
    if not args.name:
        raise UsageError("give a catalogue NAME (see `chexnet models get --list`)")
    try:
        entry = catalogue_entry(args.name)
        url = "" if args.file else download_url(entry, args.url)
        if url:
            check_url(url)
    except (CatalogueError, InsecureURLError) as err:
        raise UsageError(str(err)) from err
    name = args.package_name or entry.name
    check_name_free(name, args.force)
    try:
        if args.file:
            fetched = local_file(args.file, args.sha256)
        elif not url:
            raise UsageError(f"{entry.name} has no direct download link: get "
                             f"{entry.file} from {entry.source}, then run `chexnet models get "
                             f"{entry.name} --file {entry.file}`")
        else:
            if args.force or not download_path(entry).is_file():
                print(f"downloading {entry.name} from {url}", file=sys.stderr)
            with _Bar() as bar:
                fetched = fetch(entry, url, timeout=args.timeout, sha256=args.sha256,
                                progress=bar.update, again=args.force)
        print(f"{fetched.path.name}: {fetched.size:,} bytes, {fetched.how}; sha256 "
              f"{fetched.sha256}", file=sys.stderr)
        installed = convert_and_register(entry, fetched, name=name, url=url, force=args.force)
    except (DownloadError, ConverterUnavailableError, ConversionError) as err:
        print(f"chexnet models get: error: {err}", file=sys.stderr)
        if isinstance(err, NetworkUnavailableError):
            print(offline_help(entry), file=sys.stderr)
        return EXIT_INPUT_FAILED
    print_summary(installed)
    return EXIT_OK


def offline_help(entry: CatalogueEntry) -> str:
    variant = f" --variant {entry.variant}" if entry.variant else ""
    return (f"without a network: copy {entry.file} from {entry.url or entry.source} on a "
            "machine that has one, bring it here, then run\n"
            f"  chexnet models get {entry.name} --file {entry.file}\n"
            f"or: chexnet import {entry.file} --format {entry.format}{variant} --out "
            f"{entry.name}.onnx && chexnet models add {entry.name}.onnx")


class _Bar:
    """A tqdm byte bar on a terminal (stderr); nothing otherwise (logs, pipes, tests)."""

    def __init__(self) -> None:
        self.bar = None
        self.tty = sys.stderr.isatty()

    def update(self, done: int, total: int | None) -> None:
        if not self.tty:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="B", unit_scale=True,
                            unit_divisor=1024, file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def print_catalogue() -> None:
    for e in load_catalogue().values():
        print(f"{e.name}\n  {e.title}\n  source:  {e.source} ({e.version}); licence: {e.licence}"
              f"\n  labels:  {len(e.labels)}: {', '.join(e.labels)}"
              f"\n  input:   {e.input_size}x{e.input_size}; {e.preprocessing}"
              f"\n  AUROC:   {e.published_auroc}: {e.auroc_where}"
              f"\n  file:    {e.url or 'manual download from ' + e.source}"
              f"\n  sha256:  {e.published_sha256}; import format {e.format}\n")
    print("get one with `chexnet models get NAME`; offline: `chexnet models get NAME --file "
          f"FILE`; mirror: --url URL or {MIRROR_ENV}=BASE (BASE/NAME/FILE)")


def describe_preprocessing(card: ModelCard) -> str:
    p = card.preprocess
    channels = "1 channel" if p.channels == 1 else f"{p.channels} channels"
    return (f"{channels}; resize to {p.resize} ({p.interpolation}), crop {p.size}x{p.size} "
            f"({p.crop}); mean {list(p.mean)}, std {[round(s, 6) for s in p.std]}")


def print_summary(done: Installed) -> None:
    card, e, f = done.card, done.entry, done.fetched
    labels = ", ".join(card.labels)
    auroc = (f"mean AUROC {e.auroc} on the source's test data (where: `chexnet models get "
             "--list`)" if e.auroc else "no AUROC published by the source")
    print(f"installed {done.name}: {e.title}\n"
          f"  source       {e.source} ({e.version}); licence: {e.licence}\n"
          f"  labels       {len(card.labels)}: {labels}\n"
          f"  input        {card.preprocess.size}x{card.preprocess.size}; "
          f"{describe_preprocessing(card)}\n"
          f"  TTA          {card.tta}\n"
          f"  thresholds   {card.threshold_rule}\n"
          f"  published    {auroc}\n"
          f"  weights      {f.path} ({f.size:,} bytes)\n"
          f"  sha256       {f.sha256} (recorded in the card)\n"
          f"  package      {done.registered.path} (sha256 {done.registered.sha256[:12]})")
    if card.demo:
        print(f"  note         {DEMO_NOTICE} (research weights, not cleared for clinical use)")
    print(f"use it: chexnet predict --model {done.name} IMAGE")
