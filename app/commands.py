"""What the File and Help menus do beyond reading: file dialogs, the model dialog, opening from
PACS, saving the view, copying the findings, the shortcut list. Kept out of the main window,
which only binds the session to the widgets; these read the window's state and call its public
methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from chexnet.app.export_view import compose_view, findings_text, legend_lines
from chexnet.app.menus import SHORTCUTS
from chexnet.app.model.pacs import retrieve_accession
from chexnet.app.widgets.model_dialog import ModelDialog
from chexnet.app.widgets.pacs_dialog import PacsDialog
from chexnet.inference.dicom_out import DicomResults, write_dicom_results
from chexnet.inference.pacs.cache import clear_cache
from chexnet.inference.pacs.node import PacsNode

if TYPE_CHECKING:  # for annotations only: the window imports this module
    from chexnet.app.main_window import MainWindow

IMAGE_FILTER = "Chest X-rays (*.dcm *.dicom *.png *.jpg *.jpeg);;All files (*)"


class WindowCommands:
    """The menu commands of one main window."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.pacs_dialog: PacsDialog | None = None

    # --- opening --------------------------------------------------------------------------
    def choose_files(self) -> None:
        w = self.window
        names, _ = QFileDialog.getOpenFileNames(w, "Open images", w.settings.last_folder,
                                                IMAGE_FILTER)
        w.open_paths(names)

    def choose_folder(self) -> None:
        w = self.window
        name = QFileDialog.getExistingDirectory(w, "Open a study folder", w.settings.last_folder)
        if name:
            w.open_paths([name])

    def open_from_pacs(self) -> PacsDialog:
        """File > Open from PACS…: a non-modal dialog (the window stays usable while it
        searches); the retrieved study opens as files do."""
        w = self.window
        if self.pacs_dialog is None:
            self.pacs_dialog = PacsDialog(w.settings, w.runner, parent=w)
            self.pacs_dialog.retrieved.connect(w.open_paths)
        self.pacs_dialog.show()
        self.pacs_dialog.raise_()
        return self.pacs_dialog

    def open_accession(self, node: PacsNode, accession: str) -> None:
        """``--pacs NODE --accession A``: find, retrieve (a worker) and open the study."""
        w = self.window
        w.findings.set_busy(f"Retrieving accession {accession} from {node}…")
        w.runner.start("pacs-accession", retrieve_accession, node, accession,
                       on_result=lambda _t, paths: w.open_paths(paths),
                       on_error=self._pacs_failed)

    def _pacs_failed(self, _token, message: str) -> None:
        w = self.window
        w.messages.post(message)
        w.findings.show_error(message)
        w.gave_up.emit(message)

    def clear_pacs_cache(self) -> None:
        """File > Clear PACS cache (a worker: a large cache takes a while to delete)."""
        self.window.runner.start("pacs-clear", clear_cache, on_result=self._cache_cleared,
                                 on_error=self._pacs_failed)

    def _cache_cleared(self, _token, freed: int) -> None:
        said = f"PACS cache emptied ({freed / 1e6:.1f} MB freed)"
        self.window.messages.post(said, "info")
        self.window.statusBar().showMessage(said, 5000)

    def choose_model(self) -> None:
        """File > Model…: the chosen package runs for this session, and becomes the default for
        every command when the reader ticks that."""
        w = self.window
        engine = w.session.engine
        dialog = ModelDialog(str(engine.package.path) if engine else w.model_spec, w.runner, w)
        if dialog.exec() and dialog.choice() is not None:
            w.use_choice(dialog.choice())

    # --- output -----------------------------------------------------------------------------
    def legend(self) -> list[tuple[str, bool]]:
        """The findings legend of the shown image: model, how it was chosen, findings."""
        w = self.window
        engine = w.session.engine
        return legend_lines(w.session.prediction(w.nav.index), w.state.finding,
                            w.state.threshold, engine.package.chosen_by if engine else "")

    def view_image(self) -> QImage:
        """The canvas as shown, with the findings legend beside it."""
        return compose_view(self.window.canvas.grab(), self.legend())

    def choose_save_view(self) -> None:
        w = self.window
        name, _ = QFileDialog.getSaveFileName(w, "Save view", w.settings.last_folder,
                                              "PNG image (*.png)")
        if name:
            self.save_view(Path(name))

    def save_view(self, path: Path) -> bool:
        ok = self.view_image().save(str(path), "PNG")
        if not ok:
            self.window.messages.post(f"could not write {path} (check the folder exists and "
                                      f"is writable)")
        return ok

    def choose_export_dicom(self) -> None:
        w = self.window
        name = QFileDialog.getExistingDirectory(w, "Export DICOM results into",
                                                w.settings.last_folder)
        if name:
            self.export_dicom(Path(name))

    def export_dicom(self, folder: Path) -> bool:
        """File > Export DICOM results…: the shown image's structured report and heat map
        (:func:`write_dicom_results`), written on a worker; a message when done or failed.
        False when there is nothing to export (no analysed result for the shown image)."""
        w = self.window
        index, loaded, engine = w.nav.index, w.nav.loaded, w.session.engine
        pred = w.session.prediction(index)
        if pred is None or loaded is None or engine is None or not pred.analysed:
            w.messages.post("no analysed result to export as DICOM for this image", "warning")
            return False
        instance = w.session.items[index].instance
        source = instance.file if instance.file is not None else instance.path
        w.runner.start("export-dicom", write_dicom_results, source, loaded.image, pred,
                       engine.model_id, engine.card, folder, on_result=self._dicom_written,
                       on_error=self._dicom_failed)
        return True

    def _dicom_written(self, _token, written: DicomResults) -> None:
        said = f"DICOM results written to {written.sr.parent}: {written.sr.name} (report), " \
               f"{written.sc.name} (heat map)"
        self.window.messages.post(said, "info")
        self.window.statusBar().showMessage("DICOM results written", 5000)
        self.window.dicom_exported.emit(written)

    def _dicom_failed(self, _token, message: str) -> None:
        self.window.messages.post(f"could not export DICOM results: {message}")

    def copy_findings(self) -> None:
        """The findings as `chexnet predict` prints them, to the clipboard."""
        w = self.window
        loaded = w.nav.loaded
        text = findings_text(w.session.prediction(w.nav.index),
                             loaded.image if loaded else None, w.session.engine)
        QGuiApplication.clipboard().setText(text)
        w.statusBar().showMessage("Findings copied" if text else "No findings to copy", 3000)

    # --- help -------------------------------------------------------------------------------
    def show_shortcuts(self) -> None:
        text = "\n".join(f"{keys:<16} {what}" for what, keys in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", text,
                          parent=self.window)
        box.setModal(False)
        box.show()
