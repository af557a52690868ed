"""The worklist table's data: screened rows as a Qt table model, and the filter/sort proxy.

Cells and sort keys are small pure functions of a :class:`ScreenRow`, so sorting by a column
sorts by its value (priority order for Rank and Priority, the score for Abnormal), not by the
text shown.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QSortFilterProxyModel, Qt

from chexnet.inference.screen.results import ScreenRow

COLUMNS = ("Rank", "File", "Status", "Priority", "Abnormal", "Above operating point", "Reason")
FILE_COLUMN = 1
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
    return row.reason


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


class WorklistFilter(QSortFilterProxyModel):
    """Status and finding filters plus free text over file name and reason."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status: str | None = None
        self.finding: str | None = None
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_filters(self, status: str | None, finding: str | None, text: str) -> None:
        self.status, self.finding, self.text = status, finding, text.strip().lower()
        self.invalidate()

    def filterAcceptsRow(self, source_row: int, _parent) -> bool:
        row = self.sourceModel().rows[source_row]
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
