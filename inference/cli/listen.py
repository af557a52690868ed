"""``chexnet listen``: a DICOM node (C-ECHO, C-STORE SCP) that screens the studies PACS sends
and can send the results back. See :mod:`chexnet.inference.node.service` for how the pieces fit
and what survives a crash."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from chexnet.inference.cli.common import EXIT_OK, EXIT_USAGE, MODEL_HELP, positive_int
from chexnet.inference.node.scheduler import (
    DEFAULT_STUDY_TIMEOUT_S,
    ScreenOptions,
)
from chexnet.inference.node.scp import ListenConfig, allowed_titles
from chexnet.inference.node.sender import Destination
from chexnet.inference.node.service import NodeConfig, NodeState, run_node
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import DEVICES

LISTEN_EPILOG = """\
example (a node for the PACS "ORTHANC", results sent back to it):
  chexnet listen --port 11112 --ae-title CHEXNET --allow-ae ORTHANC --out /srv/chexnet \\
                 --send-to ORTHANC@pacs.example.org:4242

PACS side: add chexnet as a DICOM modality (AE title CHEXNET, this host, port 11112) and
route chest X-ray studies to it. Each instance is written to DIR/spool and fsynced before
the C-STORE succeeds. A study is screened once no instance of it arrived for --study-timeout
seconds, exactly as `chexnet screen` would (DIR/results/<study>/: results.csv, report.html);
DIR/results.csv and DIR/report.html gather every study. With --send-to, the results as DICOM
(structured report + secondary capture, where this chexnet writes them) go from DIR/outbox to
the destination, retried with backoff until it acknowledges them (then DIR/sent).
SIGTERM or Ctrl-C: the batch in hand is finished, then the node exits; started again with the
same --out it screens what was received but not screened and sends what was not sent.
Logs name studies and instances by short hashes, never by patient data.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="a DICOM node: receive studies from PACS and screen them",
                       description="Listen for DICOM associations (C-ECHO, C-STORE), screen each "
                                   "received study when it is complete, and optionally send "
                                   "the results back to PACS.",
                       epilog=LISTEN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True,
                   help="TCP port to listen on (0: any free port, printed at start)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    p.add_argument("--ae-title", default="CHEXNET", help="this node's AE title (default CHEXNET)")
    p.add_argument("--allow-ae", action="append", default=[], metavar="AE",
                   help="a calling AE title allowed to connect (repeat for several); others are "
                        "rejected at association")
    p.add_argument("--allow-any", action="store_true",
                   help="accept any calling AE title (no --allow-ae check; a warning is printed)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="the node's folder: spool/, results/, outbox/, sent/, results.csv, "
                        "report.html (keep it on a local disk; do not move it between runs)")
    p.add_argument("--study-timeout", type=float, default=DEFAULT_STUDY_TIMEOUT_S,
                   metavar="SECONDS", help="screen a study once nothing of it arrived for this "
                                           f"long (default {DEFAULT_STUDY_TIMEOUT_S:g})")
    p.add_argument("--send-to", metavar="AE@HOST:PORT",
                   help="C-STORE the results (DICOM) to this destination, with retries")
    p.add_argument("--tls-cert", type=Path, metavar="PEM", help="TLS certificate (with --tls-key)")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="TLS private key")
    p.add_argument("--model", metavar="PKG", help=MODEL_HELP)
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="execution device (default: auto = TensorRT, CUDA, then CPU)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="decode processes per screening (default: the number of CPU cores)")
    p.add_argument("--batch-size", type=positive_int, default=8, help="images per inference call")
    p.set_defaults(func=cmd_listen)


def _config(args: argparse.Namespace) -> NodeConfig:
    if not args.allow_ae and not args.allow_any:
        raise ValueError("say who may send: --allow-ae AE (repeatable), or --allow-any")
    if args.study_timeout <= 0 or not 0 <= args.port < 65536:
        raise ValueError("--study-timeout must be positive and --port a TCP port (0-65535)")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    listen = ListenConfig(args.port, allowed_titles([args.ae_title])[0],
                          () if args.allow_any else allowed_titles(args.allow_ae),
                          host=args.host, tls_cert=args.tls_cert, tls_key=args.tls_key)
    send_to = Destination.parse(args.send_to) if args.send_to else None
    return NodeConfig(listen, args.out, args.study_timeout,
                      ScreenOptions(args.model, args.workers, args.device, args.batch_size,
                                    dicom_out=send_to is not None), send_to)


def cmd_listen(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ValueError as err:
        print(f"chexnet listen: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    package = resolve_model(args.model)  # a bad --model is a usage error now, not per study
    if args.verbose == 0:
        logging.getLogger("chexnet.inference.node").setLevel(logging.INFO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGTERM, signal.SIGINT)}

    def ready(state: NodeState) -> None:
        card = package.card
        print(f"model  {card.name} {card.version}  sha256 {package.sha256}")
        if card.demo:
            print(f"!! {DEMO_NOTICE}")
        if args.allow_any:
            print("warning: --allow-any: every calling AE title is accepted", file=sys.stderr)
        tls = " (TLS)" if config.listen.tls_cert else ""
        print(f"listening as {config.listen.ae_title} on port {state.port}{tls}; results in "
              f"{config.out}", flush=True)

    try:
        state = run_node(config, stop, on_ready=ready)
    except OSError as err:  # the port is taken, a TLS file is missing...
        print(f"chexnet listen: error: cannot listen on port {args.port}: {err.strerror or err}",
              file=sys.stderr)
        return EXIT_USAGE
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"stopped: {state.screened} studies screened, {state.sent} results sent"
          + (f" ({state.recovered} resumed from an earlier run)" if state.recovered else ""),
          flush=True)
    return EXIT_OK
