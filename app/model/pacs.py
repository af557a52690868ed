"""The viewer's side of reading from PACS, without widgets: the configured nodes (kept in the
viewer settings as JSON: a name and the node's parseable form plus options) and the functions
the dialog and the command line run on workers (:mod:`chexnet.app.workers`). Every network
call is one of these, never on the GUI thread."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from chexnet.app.workers import Stream
from chexnet.inference.errors import StudyNotFoundError
from chexnet.inference.pacs.cache import PacsCache
from chexnet.inference.pacs.client import find_studies, retrieve_study
from chexnet.inference.pacs.node import DEFAULT_CALLING_AE, DEFAULT_TIMEOUT_S, PacsNode
from chexnet.inference.pacs.query import StudyMatch


@dataclass(frozen=True)
class SavedNode:
    """A node as the reader configured it (``address``: ``AE@host:port`` or a URL)."""

    name: str
    address: str
    calling_ae: str = DEFAULT_CALLING_AE
    tls: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    move_port: int = 0

    def node(self) -> PacsNode:
        """The node (ValueError when the address or AE title is malformed)."""
        return PacsNode.parse(self.address, self.calling_ae, tls=self.tls,
                              timeout_s=self.timeout_s, move_port=self.move_port)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.address})" if self.name else self.address


def nodes_from_json(text: object) -> list[SavedNode]:
    """Stored nodes; entries that do not parse (a hand-edited settings file) are dropped."""
    try:
        items = json.loads(str(text or "[]"))
    except ValueError:
        return []
    nodes = []
    for item in items if isinstance(items, list) else []:
        try:
            saved = SavedNode(**item)
            saved.node()
        except (TypeError, ValueError):
            continue
        nodes.append(saved)
    return nodes


def nodes_to_json(nodes: list[SavedNode]) -> str:
    return json.dumps([asdict(n) for n in nodes])


def search(node: PacsNode, fields: dict[str, str], modalities: tuple[str, ...]
           ) -> list[StudyMatch]:
    """The dialog's search (a worker): ``fields`` as :func:`find_studies` names them."""
    return find_studies(node, modalities=modalities, **fields)


def retrieve(stream: Stream, node: PacsNode, study_uid: str,
             cache: PacsCache | None = None) -> list[Path]:
    """Retrieve a study (a streaming worker): progress ``(done, total)``; cancellable."""
    return retrieve_study(node, study_uid, cache, progress=lambda d, n: stream.progress((d, n)),
                          cancel=stream.cancelled)


def retrieve_accession(node: PacsNode, accession: str,
                       cache: PacsCache | None = None) -> list[Path]:
    """``chexnet-viewer --pacs NODE --accession A`` (a worker): the newest study with this
    accession number, whatever its modalities."""
    found = find_studies(node, accession=accession, modalities=())
    if not found:
        raise StudyNotFoundError(str(node), "no study has this accession number",
                                 "check the accession number")
    return retrieve_study(node, found[0].study_uid, cache)
