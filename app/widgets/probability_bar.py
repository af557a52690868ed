"""The findings table's probability bars, painted by a delegate.

They were ``QProgressBar`` cell widgets: a widget lying on the cell is not part of the row's
painting, so a selected row drew its full-width selection band around (and, with styles that
paint the groove translucent, through) the bar, and the bar sat at the top of a taller row.
The delegate paints the cell itself: the row's background first (the selection band included),
then the bar, vertically centred on an opaque groove with a border in the row's text colour,
so the bar keeps its own colour, and stays readable, on a selected row.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPalette, QPen
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

#: Item data roles of the bar's cell: the probability (0..1) and the bar's colour (a QColor).
PROBABILITY_ROLE = Qt.ItemDataRole.UserRole + 10
COLOUR_ROLE = Qt.ItemDataRole.UserRole + 11
BAR_HEIGHT = 12
MARGIN = 4
GROOVE = QColor(255, 255, 255)


class ProbabilityBarDelegate(QStyledItemDelegate):
    """Paints ``PROBABILITY_ROLE`` as a bar of ``COLOUR_ROLE`` on the row's background."""

    def paint(self, painter, option, index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        probability = index.data(PROBABILITY_ROLE)
        if probability is None:
            return
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        groove = bar_rect(opt.rect)
        painter.save()
        painter.fillRect(groove, GROOVE)
        filled = QRect(groove)
        filled.setWidth(round(groove.width() * min(1.0, max(0.0, float(probability)))))
        painter.fillRect(filled, index.data(COLOUR_ROLE) or QColor("#5a8fd0"))
        role = (QPalette.ColorRole.HighlightedText if selected
                else QPalette.ColorRole.Mid)
        painter.setPen(QPen(opt.palette.color(role), 1))
        painter.drawRect(groove.adjusted(0, 0, -1, -1))
        painter.restore()


def bar_rect(cell: QRect) -> QRect:
    """The bar's groove inside a cell: ``MARGIN`` each side, ``BAR_HEIGHT`` tall, centred."""
    height = min(BAR_HEIGHT, max(2, cell.height() - 2 * MARGIN))
    top = cell.top() + (cell.height() - height) // 2
    return QRect(cell.left() + MARGIN, top, max(0, cell.width() - 2 * MARGIN), height)
