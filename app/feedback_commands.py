"""The reader's feedback keys: agree / disagree with the selected finding, add a finding the
model missed, mark the image reviewed, a note, the reader's ID, and File > Export feedback….

Each key press becomes one event (:func:`~chexnet.app.model.feedback_log.make_event`) about the
shown image's prediction, handed to :class:`~chexnet.app.model.feedback.FeedbackState`, which
shows it at once and appends it to the log on its own writer thread. Pressing a verdict's key
again takes it back (a ``cleared`` event; nothing in the log is ever rewritten). The reader's
ID is asked once, on the first feedback, and kept in the settings (Feedback > Reader ID… edits
it). Kept out of the main window, which only binds; see also :mod:`chexnet.app.commands`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMenu

from chexnet.app.menus import add_action
from chexnet.app.model.feedback import FeedbackState
from chexnet.app.model.feedback_labels import ExportResult
from chexnet.app.model.feedback_log import image_key, make_event
from chexnet.inference.scoring.prediction import Finding, Prediction

if TYPE_CHECKING:  # for annotations only: the window imports this module
    from chexnet.app.main_window import MainWindow

#: Help > Keyboard shortcuts and the README list these (``R`` is Rotate, hence Shift+R).
FEEDBACK_KEYS = {"agree": "A", "disagree": "D", "missed": "M", "reviewed": "Shift+R",
                 "note": "N", "next": "F", "previous": "Shift+F"}
SAID = {"agree": "agreed with", "disagree": "disagreed with", "missed": "added",
        "cleared": "took back the verdict on"}


class FeedbackCommands:
    """The feedback actions of one main window."""

    def __init__(self, window: MainWindow, state: FeedbackState | None = None) -> None:
        self.window = window
        self.state = state or FeedbackState(parent=window)
        self.state.changed.connect(self._changed)
        self.state.written.connect(self._written)
        self.state.failed.connect(window.messages.post)
        self.state.exported.connect(self._exported)
        self.state.loaded.connect(self._loaded)
        self.state.reviewed_changed.connect(window.worklist.panel.set_reviewed)
        window.findings_shown.connect(lambda _index: self.refresh())
        self.state.load()

    # --- what the keys act on --------------------------------------------------------------
    def shown(self) -> Prediction | None:
        """The shown image's analysed prediction, or None (said in the status bar)."""
        w = self.window
        pred = w.session.prediction(w.nav.index) if w.nav.loaded is not None else None
        if pred is None or not pred.analysed or not pred.ranked:
            w.statusBar().showMessage("No findings to give feedback on for this image", 4000)
            return None
        return pred

    def selected(self, pred: Prediction) -> Finding | None:
        return next((f for f in pred.ranked if f.label == self.window.state.finding), None)

    def reader(self) -> str | None:
        """The reader's ID: from the settings, else asked (once; None if cancelled)."""
        return self.window.settings.reader_id or self.edit_reader_id()

    def edit_reader_id(self) -> str | None:
        w = self.window
        text, ok = QInputDialog.getText(
            w, "Reader ID", "Your reader ID (recorded with every verdict; not a patient's):",
            QLineEdit.EchoMode.Normal, w.settings.reader_id)
        if not ok or not text.strip():
            return None
        w.settings.reader_id = text.strip()
        return w.settings.reader_id

    # --- the keys ----------------------------------------------------------------------------
    def agree(self) -> None:
        self._verdict("agree")

    def disagree(self) -> None:
        self._verdict("disagree")

    def _verdict(self, verdict: str) -> None:
        pred = self.shown()
        finding = self.selected(pred) if pred else None
        if pred is None or finding is None:
            return
        fb = self.state.of(key_of(pred))
        if fb is not None and fb.verdict(finding.label) == verdict:
            verdict = "cleared"  # the same key again takes it back
        self._record("finding", pred, finding=finding, verdict=verdict)

    def add_missed(self) -> None:
        """M: one of the model's labels it put below its operating point, chosen in a list."""
        pred = self.shown()
        if pred is None:
            return
        below = [f.label for f in pred.ranked if not f.above_threshold]
        if not below:
            self.window.statusBar().showMessage("Every finding is above the model's operating "
                                                "point: disagree (D) with one instead", 4000)
            return
        label, ok = QInputDialog.getItem(self.window, "Add a finding the model missed",
                                         "Finding:", below, 0, False)
        finding = next((f for f in pred.ranked if f.label == label), None)
        if ok and finding is not None:
            self._record("finding", pred, finding=finding, verdict="missed")
            self.window.state.finding = label

    def toggle_reviewed(self) -> None:
        pred = self.shown()
        if pred is not None:
            fb = self.state.of(key_of(pred))
            self._record("unreviewed" if fb is not None and fb.reviewed else "reviewed", pred)

    def edit_note(self) -> None:
        pred = self.shown()
        if pred is None:
            return
        fb = self.state.of(key_of(pred))
        text, ok = QInputDialog.getMultiLineText(self.window, "Note", "Note on this image "
                                                 "(no patient names or IDs):",
                                                 fb.note if fb else "")
        if ok:
            self._record("note", pred, note=text.strip())

    def _record(self, kind: str, pred: Prediction, **what) -> None:
        reader = self.reader()
        if reader:
            self.state.record(make_event(kind, reader, pred, **what))

    # --- export ------------------------------------------------------------------------------
    def choose_export(self) -> None:
        w = self.window
        name = QFileDialog.getExistingDirectory(w, "Export feedback into",
                                                w.settings.last_folder)
        if name:
            self.state.export(name)

    def _exported(self, result: ExportResult) -> None:
        table = result.table
        left_out = (f"; {table.not_reviewed} image(s) with feedback but not marked reviewed "
                    f"left out" if table.not_reviewed else "")
        if result.labels_csv is None:
            said = f"feedback log copied to {result.log_copy}; no image is marked reviewed " \
                   f"yet, so no labels CSV{left_out}"
        else:
            said = f"feedback exported: {result.labels_csv} ({len(table.rows)} image(s), " \
                   f"{len(table.labels)} label(s)) and {result.log_copy.name}{left_out}"
        self.window.messages.post(said, "info")
        self.window.statusBar().showMessage("Feedback exported", 5000)

    # --- showing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """The findings panel's marks and line for the shown image."""
        w = self.window
        pred = w.session.prediction(w.nav.index)
        fb = self.state.of(key_of(pred)) if pred is not None else None
        verdicts = {label: ev["verdict"] for label, ev in fb.verdicts.items()} if fb else {}
        w.findings.set_feedback(verdicts, bool(fb and fb.reviewed), fb.note if fb else "")

    def _changed(self, key: str) -> None:
        pred = self.window.session.prediction(self.window.nav.index)
        if pred is not None and key_of(pred) == key:
            self.refresh()

    def _written(self, event: dict) -> None:
        what = SAID.get(event.get("verdict") or "", "")
        said = f"{what} {event['finding']}" if what else event["event"]
        self.window.statusBar().showMessage(f"Saved: {said}", 3000)

    def _loaded(self, skipped: int) -> None:
        if skipped:
            self.window.messages.post(f"feedback log {self.state.log}: {skipped} torn or "
                                      f"unreadable line(s) skipped (a write cut short)",
                                      "warning")
        self.refresh()


def key_of(pred: Prediction) -> str:
    return image_key(pred.path, pred.uids.sop_instance)


def build_feedback_menu(w: MainWindow, do: FeedbackCommands) -> None:
    """The Feedback menu (before Help) and its keys; File > Export feedback… is in menus."""
    bar = w.menuBar()
    menu = QMenu("Fee&dback", bar)
    help_menu = next((a for a in bar.actions() if a.text() == "&Help"), None)
    if help_menu is None:
        bar.addMenu(menu)
    else:
        bar.insertMenu(help_menu, menu)
    keys = FEEDBACK_KEYS
    add_action(w, menu, "Agree with the selected finding", do.agree, keys["agree"])
    add_action(w, menu, "Disagree with the selected finding", do.disagree, keys["disagree"])
    add_action(w, menu, "Add a finding the model missed…", do.add_missed, keys["missed"])
    add_action(w, menu, "Mark image reviewed / not reviewed", do.toggle_reviewed,
               keys["reviewed"])
    add_action(w, menu, "Note on this image…", do.edit_note, keys["note"])
    menu.addSeparator()
    add_action(w, menu, "Next finding", lambda: w.findings.step_selection(1), keys["next"])
    add_action(w, menu, "Previous finding", lambda: w.findings.step_selection(-1),
               keys["previous"])
    menu.addSeparator()
    add_action(w, menu, "Reader ID…", do.edit_reader_id)
