"""The findings panel: the model that spoke, what it found, ranked, and what it refused to score.

Shows the model's name/version/sha256 and how it was chosen, with a DEMO banner when its card
says demo, the findings ranked by probability with bars (those above the model's operating
points marked), an "abnormal" summary, and intended-use reasons and warnings in plain words.
Selecting a row picks the finding whose heat map is shown. The name column is as wide as the
model's longest label, marked and bold (all of them, not only the rows in view), and the panel
asks for that room; a name too long for it (the table asks for :data:`MAX_TABLE_WIDTH` at most)
is elided, its tooltip whole. The bars take what is left; they are painted by
:class:`~chexnet.app.widgets.probability_bar.ProbabilityBarDelegate`, so a selected row's bar
keeps its colour. The last column and the line under the table show what the reader said
(:mod:`chexnet.app.model.feedback_labels`): agree ✓, disagree ✗, missed +, and whether the
image is marked reviewed.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.model.model_choice import how_chosen
from chexnet.app.widgets.probability_bar import (
    COLOUR_ROLE,
    PROBABILITY_ROLE,
    ProbabilityBarDelegate,
)
from chexnet.inference.package.card import CHESTXRAY14_LABELS, DEMO_NOTICE, ModelCard
from chexnet.inference.scoring.prediction import ModelId, Prediction

ABOVE_COLOUR = QColor(200, 40, 40)
BAR_COLOURS = {True: QColor("#c82828"), False: QColor("#5a8fd0")}  # above / below
#: What the reader said, as the last column shows it (and its tooltip).
VERDICT_MARKS = {"agree": ("✓", "you agree"), "disagree": ("✗", "you disagree"),
                 "missed": ("+", "you added it: the model missed it")}
READER_COLUMN = 3
MIN_BAR_WIDTH = 60
#: The table asks for at most this width (pixels) to show long label names whole.
MAX_TABLE_WIDTH = 460
ABOVE_MARK = "▲ "


class FindingsPanel(QWidget):
    finding_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel("No model loaded")
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.demo_banner = QLabel()
        self.demo_banner.setObjectName("demoBanner")
        self.demo_banner.setWordWrap(True)
        self.demo_banner.setStyleSheet("QLabel#demoBanner { background: #b00020; color: white; "
                                       "font-weight: bold; padding: 4px; }")
        self.demo_banner.hide()
        self.summary = QLabel("Open a study (File > Open, or drop files here).")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("summary")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Finding", "Probability", "", "Reader"])
        self.table.setItemDelegateForColumn(2, ProbabilityBarDelegate(self.table))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(READER_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.feedback = QLabel("")
        self.feedback.setWordWrap(True)
        self.feedback.setObjectName("feedback")
        self._name_width = self.name_width(CHESTXRAY14_LABELS)
        self.table.viewport().installEventFilter(self)
        header.sectionResized.connect(self._probability_resized)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        for w in (self.demo_banner, self.model_label, self.summary, self.table, self.feedback):
            layout.addWidget(w)
        self._labels: list[str] = []
        self._updating = False

    def set_model(self, model: ModelId | None, card: ModelCard | None, device: str = "",
                  chosen_by: str = "") -> None:
        """The model that speaks; ``chosen_by``: how it was chosen (``--model``, ``user
        default``, ``bundled default``, or in the model dialog)."""
        if model is None or card is None:
            self.model_label.setText("No model loaded")
            self.demo_banner.hide()
            return
        on = f" on {device}" if device else ""
        how = f"{escape(how_chosen(chosen_by))}<br>" if chosen_by else ""
        self.model_label.setText(f"<b>{escape(model.name)}</b> {escape(model.version)}{on}<br>"
                                 f"<small>{how}sha256 {model.sha256[:16]}…  ·  "
                                 f"{escape(card.arch)}, thresholds: "
                                 f"{escape(card.threshold_rule)}</small>")
        self._fit_names(card.labels)
        self.model_label.setToolTip(f"sha256 {model.sha256}")
        if card.demo:
            self.demo_banner.setText(f"{DEMO_NOTICE} {card.description or ''}".strip())
            self.demo_banner.show()
        else:
            self.demo_banner.hide()

    def set_busy(self, text: str) -> None:
        self.summary.setText(text)

    def show_error(self, text: str) -> None:
        self.clear()
        self.summary.setText(f"<b>Could not analyse:</b> {escape(text)}")

    def clear(self) -> None:
        self._updating = True
        self.table.setRowCount(0)
        self._labels = []
        self._updating = False

    def set_prediction(self, pred: Prediction | None, selected: str | None = None) -> None:
        self.clear()
        if pred is None:
            self.summary.setText("")
            return
        self.summary.setText(summary_html(pred))
        self._updating = True
        ranked = pred.ranked
        self.table.setRowCount(len(ranked))
        for row, f in enumerate(ranked):
            name = QTableWidgetItem(f.label)
            prob = QTableWidgetItem(f"{f.probability:.3f}")
            prob.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            tip = f"{f.label}: probability {f.probability:.3f}, operating point {f.threshold:.3f}"
            for item in (name, prob):
                item.setToolTip(tip)
            if f.above_threshold:
                bold = QFont()
                bold.setBold(True)
                name.setText(f"{ABOVE_MARK}{f.label}")
                for item in (name, prob):
                    item.setFont(bold)
                    item.setForeground(QBrush(ABOVE_COLOUR))
            bar = QTableWidgetItem()
            bar.setData(PROBABILITY_ROLE, f.probability)
            bar.setData(COLOUR_ROLE, BAR_COLOURS[f.above_threshold])
            bar.setToolTip(tip)
            for col, item in enumerate((name, prob, bar, QTableWidgetItem(""))):
                self.table.setItem(row, col, item)
            self._labels.append(f.label)
        self._updating = False
        self.select(selected if selected in self._labels else None)

    def select(self, label: str | None) -> None:
        if label is None or label not in self._labels:
            return
        row = self._labels.index(label)
        if self.table.currentRow() != row:
            self._updating = True
            self.table.selectRow(row)
            self._updating = False

    @property
    def labels_in_order(self) -> list[str]:
        return list(self._labels)

    def step_selection(self, delta: int) -> None:
        """Select the next (``delta`` 1) or previous (-1) finding, as a click would."""
        if self._labels:
            row = min(len(self._labels) - 1, max(0, self.table.currentRow() + delta))
            self.table.selectRow(row)

    def set_feedback(self, verdicts: dict[str, str], reviewed: bool, note: str = "") -> None:
        """What the reader said about the shown image: a mark per finding, and a line."""
        for row, label in enumerate(self._labels):
            mark, tip = VERDICT_MARKS.get(verdicts.get(label, ""), ("", ""))
            item = self.table.item(row, READER_COLUMN)
            if item is not None:
                item.setText(mark)
                item.setToolTip(tip)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        missed = [lb for lb, v in verdicts.items() if v == "missed" and lb not in self._labels]
        parts = ["<b>Reviewed</b>" if reviewed else "Not reviewed (Shift+R when read)"]
        if missed:
            parts.append(f"you added: {escape(', '.join(missed))}")
        if note:
            parts.append(f"note: {escape(note)}")
        self.feedback.setText(" · ".join(parts) if self._labels else "")

    def name_width(self, labels: tuple[str, ...] | list[str]) -> int:
        """Pixels the name column needs to show each label whole, marked and bold."""
        bold = QFont(self.table.font())
        bold.setBold(True)
        metrics = QFontMetrics(bold)
        margin = 2 * self.table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin) + 8
        return max((metrics.horizontalAdvance(ABOVE_MARK + label) for label in labels),
                   default=0) + margin

    def _fit_names(self, labels: tuple[str, ...]) -> None:
        """Ask for room to show the model's labels whole (up to MAX_TABLE_WIDTH)."""
        self._name_width = self.name_width(labels)
        probability = QFontMetrics(self.table.font()).horizontalAdvance("Probability") + 16
        frame = 2 * self.table.frameWidth() + self.table.verticalScrollBar().sizeHint().width()
        wanted = self._name_width + probability + MIN_BAR_WIDTH + self._reader_width() + frame
        self.table.setMinimumWidth(min(wanted, MAX_TABLE_WIDTH))
        self._layout_columns()

    def _probability_resized(self, section: int, _old: int, _new: int) -> None:
        if section in (1, READER_COLUMN):
            self._layout_columns()

    def _layout_columns(self) -> None:
        """The name column: the labels' width, less only what the bars need at least."""
        header = self.table.horizontalHeader()
        room = (self.table.viewport().width() - header.sectionSize(1) - MIN_BAR_WIDTH
                - header.sectionSize(READER_COLUMN))
        header.resizeSection(0, max(40, min(self._name_width, room)))

    def _reader_width(self) -> int:
        return QFontMetrics(self.table.font()).horizontalAdvance("Reader") + 16

    def eventFilter(self, watched, event) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._layout_columns()  # the panel, or the scroll bar's coming and going
        return super().eventFilter(watched, event)

    def _selection_changed(self) -> None:
        if self._updating:
            return
        rows = {i.row() for i in self.table.selectedIndexes()}
        if rows:
            self.finding_selected.emit(self._labels[min(rows)])


def summary_html(pred: Prediction) -> str:
    """The one-paragraph verdict above the table, in plain words."""
    parts = []
    if not pred.analysed:
        reasons = "; ".join(pred.reasons) or "outside the model's intended use"
        parts.append(f"<b>Not analysed:</b> {escape(reasons)}")
    else:
        positives = pred.positives
        if positives:
            names = ", ".join(f.label for f in positives)
            parts.append(f"<b style='color:#c82828'>Abnormal</b>: {len(positives)} finding"
                         f"{'s' if len(positives) != 1 else ''} above the model's operating "
                         f"points ({escape(names)})")
        else:
            parts.append("<b>No finding</b> above the model's operating points")
    if pred.analysed and pred.tta != "none":
        parts.append(f"Test-time augmentation: {escape(pred.tta)} (probabilities averaged over "
                     f"crops)")
    parts += [f"⚠ {escape(w)}" for w in pred.warnings]
    return "<br>".join(parts)
