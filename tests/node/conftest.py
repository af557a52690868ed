"""An in-process node (``run_node`` on a thread) with the tiny model, for the SCP tests."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from chexnet.inference.node.scheduler import ScreenOptions
from chexnet.inference.node.scp import ListenConfig
from chexnet.inference.node.service import NodeConfig, NodeState, run_node


class InProcessNode:
    def __init__(self, out: Path, model: Path, **listen) -> None:
        self.out, self.stop = out, threading.Event()
        ready = threading.Event()
        self.state = NodeState()
        options = dict(port=0, ae_title="CHEXNET", allowed=("TESTSCU",), host="127.0.0.1")
        options.update(listen)
        config = NodeConfig(ListenConfig(**options), out, 0.5,
                            ScreenOptions(str(model), workers=1))

        def serve():
            self.state = run_node(config, self.stop,
                                  on_ready=lambda s: (setattr(self, "state", s), ready.set()))

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert ready.wait(60), "the node did not start"
        self.port = self.state.port

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)


@pytest.fixture
def node(tmp_path: Path, tiny_model: Path):
    n = InProcessNode(tmp_path / "node", tiny_model)
    yield n
    n.close()
