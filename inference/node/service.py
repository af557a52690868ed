"""``chexnet listen`` put together: the SCP (pynetdicom's threads) spools, the scheduler (the
calling thread) screens quiet studies, the sender (a thread) drains the outbox; one ``stop``
event ends all three.

Stopping (SIGTERM, Ctrl-C: the CLI sets ``stop``): the study being screened finishes the batch
in hand and its journal is written; associations in progress get a few seconds to finish; the
sender finishes the file in hand. Nothing acknowledged is lost whatever the stop (kill -9
included): the spool is durable before the acknowledgement, the journal before a row counts,
the outbox until the destination acknowledges; a restart picks up each where it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.node.scheduler import ScreenOptions, StudyScheduler
from chexnet.inference.node.scp import ListenConfig, start_scp, stop_scp
from chexnet.inference.node.sender import Destination, Sender
from chexnet.inference.node.spool import NodeFolders
from chexnet.inference.node.worklist import rebuild_worklist

log = logging.getLogger(__name__)

ASSOCIATION_GRACE_S = 5.0


@dataclass(frozen=True)
class NodeConfig:
    listen: ListenConfig
    out: Path
    study_timeout_s: float
    screen: ScreenOptions
    send_to: Destination | None = None


@dataclass
class NodeState:
    """What a finished run did (for the CLI's last line and for tests)."""

    port: int = 0
    recovered: int = 0  # studies found unscreened at start
    screened: int = 0  # studies screened by this run
    sent: int = 0  # result files delivered by this run


def run_node(config: NodeConfig, stop: threading.Event,
             on_ready: Callable[[NodeState], None] | None = None) -> NodeState:
    """Serve until ``stop`` is set. ``on_ready`` is called once the port listens (with the
    port actually bound: ``--port 0`` picks a free one)."""
    folders = NodeFolders.at(config.out)
    state = NodeState()
    scheduler = StudyScheduler(folders, config.screen, config.study_timeout_s, stop)
    state.recovered = scheduler.recover()
    server = start_scp(config.listen, folders, scheduler.arrived)
    state.port = server.server_address[1]
    sender = sender_thread = None
    if config.send_to is not None:
        sender = Sender(folders, config.send_to, config.listen.ae_title, stop,
                        busy=lambda: scheduler.current)
        sender_thread = threading.Thread(target=sender.run, name="chexnet-sender", daemon=True)
        sender_thread.start()
    if state.recovered:
        log.warning("%d spooled stud%s not screened yet: screening now", state.recovered,
                    "y" if state.recovered == 1 else "ies")
    try:
        if on_ready is not None:
            on_ready(state)
        scheduler.run()
    finally:
        stop.set()
        stop_scp(server, ASSOCIATION_GRACE_S, time.sleep)
        if sender_thread is not None:
            sender_thread.join(timeout=60)
        state.screened = scheduler.screened_count
        state.sent = sender.sent_count if sender is not None else 0
    if not (folders.root / "results.csv").exists():
        rebuild_worklist(folders)  # an empty worklist says "nothing yet" rather than nothing
    return state
