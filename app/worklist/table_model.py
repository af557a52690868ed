"""The worklist table's data: screened rows as a Qt table model, and the filter/sort proxy.

Cells and sort keys are small pure functions of a :class:`ScreenRow`, so sorting by a column
sorts by its value (priority order for Rank and Priority, the score for Abnormal), not by the
text shown. The Reviewed column and filter come from the reader's feedback (the image keys
marked reviewed, :mod:`chexnet.app.model.feedback`), matched by SOP Instance UID, else path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QSortFilterProxyModel, Qt

from chexnet.app.model.feedback_log import image_key
from chexnet.inference.screen.results import ScreenRow

COLUMNS = ("Rank", "File", "Status", "Priority", "Abnormal", "Above operating point",
           "Reviewed", "Reason")
FILE_COLUMN = 1
REVIEWED_COLUMN = 6
REVIEWED_MARK = "✓"
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


def cell_text(row: ScreenRow, col: int) -> str:
    """What column ``col`` shows for ``row``."""
    if col == 0:
        return "" if row.rank is None else str(row.rank)
    if col == 1:
        return Path(row.path).name
    if col == 2:
        return row.status.replace("_", " ")
    if col == 3:
        return "" if row.priority is None else f"{row.priority:.3f}"
    if col == 4:
        return "" if row.abnormal_score is None else f"{row.abnormal_score:.3f}"
    if col == 5:
        return ", ".join(row.findings_above_threshold)
    if col == REVIEWED_COLUMN:
        return ""  # not a field of the row: WorklistModel knows it
    return row.reason


def row_key(row: ScreenRow) -> str:
    """The row's image as the feedback log names it."""
    return image_key(row.path, row.uids.sop_instance)


def sort_value(row: ScreenRow, col: int):
    """The key column ``col`` sorts ``row`` by (one type per column)."""
    if col in (0, 3):  # priority order: the worklist's own sort key
        return (row.priority_group, -(row.priority or 0.0), row.path)
    if col == 4:
        return -1.0 if row.abnormal_score is None else row.abnormal_score
    return cell_text(row, col)


class WorklistModel(QAbstractTableModel):
    """The screened rows, appended as they arrive or replaced by the final ranked list."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ScreenRow] = []
        self.reviewed: frozenset[str] = frozenset()  # image keys the reader marked reviewed

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        row = self.rows[index.row()]
        col = index.column()
        if col == REVIEWED_COLUMN and role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return REVIEWED_MARK if self.is_reviewed(row) else ""
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(row, col)
        if role == SORT_ROLE:
            return sort_value(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.path if col == FILE_COLUMN else row.reason or None
        return None

    def append(self, row: ScreenRow) -> None:
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(row)
        self.endInsertRows()

    def replace(self, rows: list[ScreenRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def is_reviewed(self, row: ScreenRow) -> bool:
        return row_key(row) in self.reviewed

    def set_reviewed(self, keys: frozenset[str]) -> None:
        self.reviewed = frozenset(keys)
        if self.rows:
            self.dataChanged.emit(self.index(0, REVIEWED_COLUMN),
                                  self.index(len(self.rows) - 1, REVIEWED_COLUMN))


class WorklistFilter(QSortFilterProxyModel):
    """Status, finding and reviewed filters plus free text over file name and reason."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status: str | None = None
        self.finding: str | None = None
        self.text = ""
        self.reviewed: bool | None = None  # None: either
        self.setSortRole(SORT_ROLE)

    def set_filters(self, status: str | None, finding: str | None, text: str) -> None:
        self.status, self.finding, self.text = status, finding, text.strip().lower()
        self.invalidate()

    def set_reviewed_filter(self, reviewed: bool | None) -> None:
        """Only the rows the reader marked reviewed (True), only the others (False), or all."""
        self.reviewed = reviewed
        self.invalidate()

    def filterAcceptsRow(self, source_row: int, _parent) -> bool:
        model = self.sourceModel()
        row = model.rows[source_row]
        if self.reviewed is not None and model.is_reviewed(row) != self.reviewed:
            return False
        if self.status and row.status != self.status:
            return False
        if self.finding and self.finding not in row.findings_above_threshold:
            return False
        return not self.text or self.text in f"{row.path} {row.reason}".lower()

    def lessThan(self, left, right) -> bool:  # each column's sort values share one type
        return left.data(SORT_ROLE) < right.data(SORT_ROLE)

    def source_rows(self) -> list[ScreenRow]:
        """The rows that pass the filters, in the order shown."""
        rows = self.sourceModel().rows
        return [rows[self.mapToSource(self.index(r, 0)).row()] for r in range(self.rowCount())]
