"""The DICOM side of ``chexnet listen``: a pynetdicom Application Entity that answers C-ECHO and
C-STORE, accepts only the calling AE titles it was told to, and spools every instance durably
before it says "success".

Why the status waits for the disk: a PACS deletes or forgets what a node acknowledged. The
handler therefore writes the instance (the bytes as received, no re-encoding, so a JPEG 2000
study stays JPEG 2000) with fsync of the file and of its folder, and only then returns 0x0000.
Anything that goes wrong before that is a failure status for that instance alone, so the
sender knows to try again, and the node keeps serving:

* 0xC000 (cannot understand): the dataset does not decode, or names no Study/SOP Instance UID;
* 0xA700 (out of resources): the spool could not be written (disk full, permissions).

Nothing a library says about a dataset reaches the log: decoding runs inside
:func:`~chexnet.inference.io.file_guard.guarded_file` (named, PHI-free errors; pydicom's
warnings and log records captured) and pynetdicom's own loggers are held at WARNING, since its
debug output dumps datasets. UIDs are logged as short hashes.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.file_guard import guarded_file
from chexnet.inference.node.spool import NodeFolders, short, spool_instance, uid_key

log = logging.getLogger(__name__)

SUCCESS, OUT_OF_RESOURCES, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0xC000

#: What the node accepts for every storage SOP class: the uncompressed syntaxes, deflate, and
#: every compression the screening decoders read (pylibjpeg: JPEG, JPEG-LS, JPEG 2000, RLE).
TRANSFER_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                     ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLosslessSV1,
                     JPEGLossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000,
                     RLELossless)
MAX_ASSOCIATIONS = 16
#: One PDU per instance chunk of this size: fewer round trips than pynetdicom's 16 KiB default.
MAX_PDU = 1 << 20


@dataclass(frozen=True)
class ListenConfig:
    """Who may call, on which port, under which AE title; TLS when both files are given."""

    port: int
    ae_title: str
    allowed: tuple[str, ...]  # empty: any calling AE (--allow-any)
    host: str = "0.0.0.0"  # a DICOM node listens on the network by design
    tls_cert: Path | None = None
    tls_key: Path | None = None


def server_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A TLS server context from a PEM certificate and key, or None when neither is given."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return context


class StoreHandler:
    """The C-STORE handler: decode just enough to route, spool, then answer. ``on_stored`` is
    told the study key of every instance made durable (the scheduler's clock restarts)."""

    def __init__(self, folders: NodeFolders, on_stored: Callable[[str], None]) -> None:
        self.folders, self.on_stored = folders, on_stored

    def __call__(self, event: evt.Event) -> int:
        try:
            with guarded_file(Path("received dataset")):
                ds = event.dataset  # the whole dataset is parsed here; values on access
                study = str(ds.get("StudyInstanceUID", "") or "").strip()
                sop = str(ds.get("SOPInstanceUID", "") or "").strip()
                sop = sop or str(event.request.AffectedSOPInstanceUID or "").strip()
                data = event.encoded_dataset(include_meta=True)
        except ChexnetInputError as err:
            log.warning("C-STORE refused (0xC000): the dataset does not decode: %s", err)
            return CANNOT_UNDERSTAND
        except Exception as err:  # never let the handler's exception reach pynetdicom's log
            log.warning("C-STORE refused (0xC000): %s while decoding", type(err).__name__)
            return CANNOT_UNDERSTAND
        if not study or not sop:
            log.warning("C-STORE refused (0xC000): no %s Instance UID",
                        "Study" if not study else "SOP")
            return CANNOT_UNDERSTAND
        try:
            path = spool_instance(self.folders, study, sop, data)
        except OSError as err:
            log.error("C-STORE failed (0xA700): cannot write the spool (%s, errno %s)",
                      type(err).__name__, err.errno)
            return OUT_OF_RESOURCES
        log.debug("stored instance %s of study %s (%d bytes)", short(sop), short(study),
                 path.stat().st_size)
        self.on_stored(uid_key(study))
        return SUCCESS


def make_ae(config: ListenConfig) -> AE:
    """The Application Entity: C-ECHO, every storage SOP class with :data:`TRANSFER_SYNTAXES`,
    calling AE titles checked at association (an unknown one is rejected there)."""
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    ae = AE(ae_title=config.ae_title)
    ae.add_supported_context(Verification)
    for cx in StoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, list(TRANSFER_SYNTAXES))
    ae.require_calling_aet = list(config.allowed)
    ae.maximum_associations = MAX_ASSOCIATIONS
    ae.maximum_pdu_size = MAX_PDU
    return ae


def start_scp(config: ListenConfig, folders: NodeFolders,
              on_stored: Callable[[str], None]) -> ThreadedAssociationServer:
    """Start listening (in pynetdicom's threads); returns the server to shut down later."""
    ae = make_ae(config)
    handlers = [(evt.EVT_C_STORE, StoreHandler(folders, on_stored)),
                (evt.EVT_REJECTED, _log_rejected)]
    server = ae.start_server((config.host, config.port), block=False, evt_handlers=handlers,
                             ssl_context=server_tls(config.tls_cert, config.tls_key))
    assert server is not None  # non-blocking start always returns the server
    return server


def _log_rejected(event: evt.Event) -> None:
    calling = event.assoc.requestor.ae_title
    log.warning("association from %s rejected: calling AE title %r is not allowed (--allow-ae)",
                event.address[0], calling)


def stop_scp(server: ThreadedAssociationServer, grace_s: float,
             sleep: Callable[[float], None]) -> None:
    """Let the associations in progress finish for up to ``grace_s`` seconds (an instance being
    received is acknowledged or not; either way its sender knows), then stop listening and
    abort what is left (unacknowledged instances: the sender sends them again)."""
    waited = 0.0
    while server.active_associations and waited < grace_s:
        sleep(0.05)
        waited += 0.05
    server.shutdown()


def allowed_titles(titles: Sequence[str]) -> tuple[str, ...]:
    """AE titles as pynetdicom compares them (stripped; an AE title is at most 16 characters)."""
    out = []
    for title in titles:
        t = title.strip()
        if not t or len(t) > 16:
            raise ValueError(f"AE title {title!r}: 1 to 16 characters")
        out.append(t)
    return tuple(out)
