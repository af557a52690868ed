"""The worklist dock of the main window: choose what to screen, where results go, and open a
row for reading (the viewer then runs the model itself and shows the heat map).

A ``chexnet listen`` output folder opens too (every study it screened, ranked together) and
stays live: it is read again every :data:`LIVE_REFRESH_MS` while it is the open worklist, so
studies appear as PACS sends them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import platformdirs
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow

from chexnet.app.worklist.panel import WorklistPanel
from chexnet.inference.node.worklist import is_node_folder, read_node_worklist
from chexnet.inference.screen.pipeline import read_worklist

LIVE_REFRESH_MS = 3000


def default_out_dir(inputs: list[Path]) -> Path:
    """``<user data>/chexnet/worklists/<first input's name>-<hash of the inputs>``: the same
    folders always map to the same place, so screening them again resumes."""
    key = "\n".join(sorted(str(p.resolve()) for p in inputs))
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    root = Path(platformdirs.user_data_dir("chexnet", appauthor=False)) / "worklists"
    return root / f"{inputs[0].name or 'input'}-{digest}"


class WorklistDock(QDockWidget):
    """The worklist panel in a dock on the left, hidden until a worklist is screened or
    opened; its messages go to the window's message area."""

    def __init__(self, window: QMainWindow) -> None:
        super().__init__("Worklist", window)
        self.setObjectName("Worklist")
        self.window_ = window
        self.panel = WorklistPanel()
        self.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self)
        self.hide()
        self.panel.open_requested.connect(self._open_row)
        self.panel.message.connect(window.messages.post)
        self.live: Path | None = None  # the chexnet listen folder kept live, if one is open
        self._reading = False
        self._shown: tuple | None = None  # (folder, rows) last shown: a refresh skips repeats
        self.live_timer = QTimer(self)
        self.live_timer.setInterval(LIVE_REFRESH_MS)
        self.live_timer.timeout.connect(self._refresh)

    def choose_and_screen(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window_, "Screen a folder",
                                                  self.window_.settings.last_folder)
        if folder:
            self.screen([Path(folder)])

    def choose_and_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window_, "Open a screening folder "
                                                  "(results.jsonl) or a chexnet listen folder")
        if folder:
            self.open_worklist(Path(folder))

    def screen(self, inputs: list[Path], out_dir: Path | None = None) -> bool:
        out_dir = out_dir or default_out_dir(inputs)
        self.live, self._shown = None, None
        self.live_timer.stop()
        self._reveal()
        started = self.panel.start(inputs, out_dir, self.window_.model_spec)
        if started:
            self.window_.messages.post(f"screening {', '.join(map(str, inputs))} into "
                                       f"{out_dir}", "info")
        return started

    def open_worklist(self, out_dir: Path) -> None:
        """Reopen a screening folder, or open a ``chexnet listen`` folder and keep it live:
        journals are read on a worker thread."""
        self.live = out_dir if is_node_folder(out_dir) else None
        self._shown = None
        if self.live is not None:
            self.live_timer.start()
        else:
            self.live_timer.stop()
        self._read(out_dir)

    def _read(self, out_dir: Path) -> None:
        self._reading = True
        reader = read_node_worklist if self.live == out_dir else read_worklist
        self.window_.runner.start(out_dir, reader, out_dir,
                                  on_result=self._worklist_read, on_error=self._worklist_failed)

    def _refresh(self) -> None:
        if self.live is not None and not self._reading and not self.panel.running:
            self._read(self.live)

    def _worklist_read(self, out_dir: Path, result) -> None:
        self._reading = False
        model, rows = result
        if self.live is not None and out_dir != self.live:
            return  # another folder was opened meanwhile
        shown = (out_dir, tuple((r.path, r.status, r.priority) for r in rows))
        if shown == self._shown:
            return  # a live folder with nothing new: keep the selection and scroll as they are
        first = self._shown is None or self._shown[0] != out_dir
        self._shown = shown
        self.panel.show_worklist(out_dir, rows, model.labels)
        if first:
            self._reveal()

    def _worklist_failed(self, out_dir: Path, message: str) -> None:
        self._reading = False
        if out_dir != self.live:  # a live folder with no study yet: wait for the first
            self.window_.messages.post(message)

    def _reveal(self) -> None:
        """Show the dock at about 40 % of the window's width, leaving the image room."""
        if not self.isVisible():
            self.show()
            self.window_.resizeDocks([self], [int(self.window_.width() * 0.4)],
                                     Qt.Orientation.Horizontal)
        self.raise_()

    def _open_row(self, path: str) -> None:
        self.window_.open_paths([path])
        self.window_.raise_()
