"""``chexnet pacs echo|find|get|clear-cache``: reading from PACS on the command line (the
library is :mod:`chexnet.inference.pacs.client`; the viewer's File > Open from PACS… uses the
same). Patient names and IDs are printed (the user asked for them) and never logged."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from chexnet.inference.atomic_file import atomic_output
from chexnet.inference.cli.common import EXIT_OK, UsageError, positive_int
from chexnet.inference.pacs.cache import PacsCache, cache_root, clear_cache
from chexnet.inference.pacs.client import echo, find_studies, retrieve_study
from chexnet.inference.pacs.node import NODE_FORM, READABLE_MODALITIES, PacsNode
from chexnet.inference.pacs.query import StudyMatch, parse_date_range

EPILOG = """\
examples:
  chexnet pacs echo --node ORTHANC@pacs.example.org:4242
  chexnet pacs find --node ORTHANC@pacs.example.org:4242 --patient-id 12345
  chexnet pacs find --node ORTHANC@pacs.example.org:4242 --date 20240101-20240131 --json
  chexnet pacs get  --node ORTHANC@pacs.example.org:4242 --study 1.2.840.99.1 --out ./study
  chexnet pacs find --node https://pacs.example.org/dicom-web --accession A123   (DICOMweb)
  chexnet-viewer --pacs ORTHANC@pacs.example.org:4242 --accession A123   (read it)

The PACS must know this AE title (--calling-ae, default CHEXNET) and allow it to query and
retrieve. Retrieval is by C-GET (nothing else to configure); --move-port PORT retrieves by
C-MOVE instead, to a storage SCP this command opens on PORT (the PACS must list the calling
AE title at this host and port). Retrieved files are cached (CHEXNET_CACHE moves the cache;
`chexnet pacs clear-cache` empties it) and copied to --out with hashed names.
Exit codes: 0 done, 1 the PACS could not be reached or refused, 2 usage error.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pacs", help="search a PACS and retrieve studies (C-FIND/C-GET, DICOMweb)",
                       description="Search a PACS and retrieve studies from it.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="pacs_command", metavar="ACTION")
    actions.required = True
    e = actions.add_parser("echo", help="test the connection (C-ECHO / a QIDO-RS search)",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    node_options(e)
    e.set_defaults(func=cmd_echo)
    f = actions.add_parser("find", help="search studies", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    node_options(f)
    f.add_argument("--patient-id", default="", metavar="ID")
    f.add_argument("--patient-name", default="", metavar="NAME",
                   help="DICOM form, wildcards allowed: 'DOE^J*'")
    f.add_argument("--accession", default="", metavar="A")
    f.add_argument("--date", default="", metavar="FROM-TO",
                   help="study date or range: 20240101-20240131, 20240101-, -20240131")
    f.add_argument("--modality", nargs="+", default=list(READABLE_MODALITIES), metavar="M",
                   help="modalities in study (default: CR DX); 'any' for every modality")
    f.add_argument("--json", action="store_true", help="the matches as JSON")
    f.set_defaults(func=cmd_find)
    g = actions.add_parser("get", help="retrieve a study into a folder", epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    node_options(g)
    g.add_argument("--study", required=True, metavar="UID", help="Study Instance UID")
    g.add_argument("--out", required=True, type=Path, metavar="DIR")
    g.add_argument("--readable-only", action="store_true",
                   help="only the model-readable series (CR/DX)")
    g.set_defaults(func=cmd_get)
    c = actions.add_parser("clear-cache", help="empty the cache of retrieved studies")
    c.set_defaults(func=cmd_clear)


def node_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--node", required=True, metavar="NODE", help=NODE_FORM)
    p.add_argument("--calling-ae", default=None, metavar="AE",
                   help="our AE title, as the PACS knows it (default CHEXNET)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for each answer (default 30)")
    p.add_argument("--tls", action="store_true", help="DICOM over TLS")
    p.add_argument("--tls-ca", default="", metavar="PEM", help="CA certificates to trust")
    p.add_argument("--move-port", type=positive_int, default=0, metavar="PORT",
                   help="retrieve by C-MOVE to a storage SCP on this port (default: C-GET)")


def parsed_node(args: argparse.Namespace) -> PacsNode:
    try:
        return PacsNode.parse(args.node, args.calling_ae, tls=args.tls, tls_ca=args.tls_ca,
                              timeout_s=args.timeout, move_port=args.move_port)
    except ValueError as err:
        raise UsageError(f"--node: {err}") from None


def cmd_echo(args: argparse.Namespace) -> int:
    node = parsed_node(args)
    seconds = echo(node)
    print(f"{node}: answers ({seconds * 1000:.0f} ms)")
    return EXIT_OK


def cmd_find(args: argparse.Namespace) -> int:
    node = parsed_node(args)
    try:
        date_from, date_to = parse_date_range(args.date) if args.date else ("", "")
    except ValueError as err:
        raise UsageError(f"--date: {err}") from None
    modalities = () if "any" in (m.lower() for m in args.modality) else tuple(
        m.upper() for m in args.modality)
    found = find_studies(node, args.patient_id, args.patient_name, args.accession, date_from,
                         date_to, modalities)
    if args.json:
        print(json.dumps([as_json(m) for m in found], indent=1))
    else:
        print_table(found)
    return EXIT_OK


def as_json(m: StudyMatch) -> dict:
    return {"study_uid": m.study_uid, "date": m.date, "time": m.time,
            "description": m.description, "modalities": list(m.modalities),
            "instances": m.instances, "patient_id": m.patient_id,
            "patient_name": m.patient_name, "accession": m.accession}


def print_table(found: list[StudyMatch]) -> None:
    if not found:
        print("no matching studies")
        return
    print(f"{'date':<10}  {'modalities':<10}  {'images':>6}  {'patient ID':<14}  "
          f"{'accession':<12}  description / study UID")
    for m in found:
        images = "?" if m.instances is None else str(m.instances)
        print(f"{m.date_text:<10}  {'/'.join(m.modalities):<10}  {images:>6}  "
              f"{m.patient_id:<14}  {m.accession:<12}  {m.description}")
        print(f"{'':>62}{m.study_uid}")
    print(f"{len(found)} studies")


def cmd_get(args: argparse.Namespace) -> int:
    node = parsed_node(args)
    study = args.study.strip()
    files = retrieve_study(node, study, PacsCache(), progress=show_progress,
                           scope="readable" if args.readable_only else "all")
    print(file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for f in files:
        with atomic_output(args.out / f.name, durable=False) as fh, f.open("rb") as src:
            shutil.copyfileobj(src, fh)
    print(f"{len(files)} images written to {args.out}")
    return EXIT_OK


def show_progress(done: int, total: int) -> None:
    print(f"\rretrieving: {done}/{total} images", end="", file=sys.stderr, flush=True)


def cmd_clear(_args: argparse.Namespace) -> int:
    freed = clear_cache()
    print(f"PACS cache emptied ({freed / 1e6:.1f} MB freed): {cache_root()}")
    return EXIT_OK
