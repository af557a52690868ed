"""The outbox sender against a real pynetdicom Storage SCP: a destination that is down costs
retries with growing waits, not files; once it is up every file is delivered exactly once and
moved to sent/; a file the destination refuses stays in the outbox; a new sender (a restart)
drains what an earlier one left."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, StoragePresentationContexts, evt

from chexnet.inference.node.sender import Backoff, Destination, Sender
from chexnet.inference.node.spool import NodeFolders
from tests.node.helpers import free_port, make_study, wait_until


class StorageDestination:
    def __init__(self, port: int, status: int = 0x0000) -> None:
        self.received: list[str] = []
        self.status = status
        ae = AE(ae_title="DEST")
        ae.supported_contexts = StoragePresentationContexts
        self.server = ae.start_server(("127.0.0.1", port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self.store)])

    def store(self, event) -> int:
        self.received.append(str(event.dataset.SOPInstanceUID))
        return self.status

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def outbox(tmp_path) -> tuple[NodeFolders, list[Path]]:
    folders = NodeFolders.at(tmp_path / "node")
    files = make_study(tmp_path / "in", 3, size=64)
    for f in files:
        (folders.outbox / "study1").mkdir(exist_ok=True)
        shutil.copy(f, folders.outbox / "study1" / f.name)
    return folders, files


def start(sender: Sender) -> threading.Thread:
    t = threading.Thread(target=sender.run, daemon=True)
    t.start()
    return t


def test_destination_down_then_up_delivers_everything_once(outbox, caplog):
    caplog.set_level(logging.INFO)
    folders, files = outbox
    port, stop = free_port(), threading.Event()
    sender = Sender(folders, Destination("DEST", "127.0.0.1", port), "CHEXNET", stop,
                    backoff=Backoff(base_s=0.1, max_s=0.4))
    thread = start(sender)
    wait_until(lambda: max(sender.backoff.failures.values(), default=0) >= 3,
               what="three failed tries")  # 0.1, 0.2, 0.4 s apart: backing off
    assert len(list((folders.outbox / "study1").iterdir())) == 3  # nothing lost while down
    dest = StorageDestination(port)
    try:
        wait_until(lambda: sender.sent_count == 3, what="delivery")
        stop.set()
        thread.join(10)
    finally:
        dest.stop()
    assert sorted(dest.received) == sorted(str(pydicom.dcmread(f).SOPInstanceUID)
                                           for f in files)
    assert not list((folders.outbox / "study1").iterdir())
    assert len(list((folders.sent / "study1").iterdir())) == 3
    assert "cannot reach DEST@127.0.0.1" in caplog.text
    assert "Secret" not in caplog.text


def test_refused_files_stay_and_a_restarted_sender_delivers_them(outbox):
    folders, _files = outbox
    port = free_port()
    dest = StorageDestination(port, status=0xA700)  # out of resources: refuses everything
    stop = threading.Event()
    sender = Sender(folders, Destination("DEST", "127.0.0.1", port), "CHEXNET", stop,
                    backoff=Backoff(base_s=0.1, max_s=0.2))
    thread = start(sender)
    try:
        wait_until(lambda: len(dest.received) >= 6, what="retries of refused files")
    finally:
        stop.set()
        thread.join(10)
    assert sender.sent_count == 0
    assert len(list((folders.outbox / "study1").iterdir())) == 3
    dest.status = 0x0000
    stop2 = threading.Event()
    restarted = Sender(folders, Destination("DEST", "127.0.0.1", port), "CHEXNET", stop2)
    assert restarted.sweep() == 3  # the outbox is the queue: a new sender finds it all
    dest.stop()
    assert len(list((folders.sent / "study1").iterdir())) == 3


def test_destination_parsing():
    assert Destination.parse("ORTHANC@pacs.example.org:4242") == Destination(
        "ORTHANC", "pacs.example.org", 4242)
    with pytest.raises(ValueError, match="AE@host:port"):
        Destination.parse("ORTHANC:4242")
