"""Save what the reader sees: the image with its overlay and a findings legend, as one PNG;
and the findings as plain text for the clipboard (the same words `chexnet predict` prints)."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap

from chexnet.inference.io.image import Image
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.render.text import model_header, prediction_text
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prediction import Prediction

LEGEND_WIDTH = 340


def legend_lines(pred: Prediction | None, finding: str | None, threshold: float,
                 chosen_by: str = "", top_n: int = 14) -> list[tuple[str, bool]]:
    """(text, emphasised) lines of the legend drawn beside the image; ``chosen_by``: how the
    model was chosen (``--model``, ``user default``, ``bundled default``, the model dialog)."""
    if pred is None:
        return [("No findings (model not run)", False)]
    lines = [(f"{pred.model.name} {pred.model.version}", True),
             (f"sha256 {pred.model.sha256[:16]}…", False)]
    if chosen_by:
        lines.append((f"chosen by: {chosen_by}", False))
    if pred.model.demo:
        lines.append((DEMO_NOTICE, True))
    if not pred.analysed:
        lines += [(f"Not analysed: {r}", True) for r in pred.reasons]
        return lines
    lines += [(f"warning: {w}", False) for w in pred.warnings]
    if finding:
        lines.append((f"Heat map: {finding} (CAM >= {threshold:.2f})", True))
    lines.append(("", False))
    for f in pred.ranked[:top_n]:
        mark = " ▲" if f.above_threshold else ""
        lines.append((f"{f.label:<20} {f.probability:6.3f}{mark}", f.above_threshold))
    lines.append(("▲ above the model's operating point", False))
    return lines


def compose_view(view: QPixmap, lines: list[tuple[str, bool]]) -> QImage:
    """The view's pixels with a legend panel on the right."""
    h = max(view.height(), 24 + 20 * len(lines))
    out = QImage(view.width() + LEGEND_WIDTH, h, QImage.Format.Format_RGB32)
    out.fill(QColor(20, 20, 20))
    painter = QPainter(out)
    try:
        painter.drawPixmap(0, 0, view)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        y = 12
        for text, strong in lines:
            font.setBold(strong)
            painter.setFont(font)
            colour = QColor(255, 90, 90) if strong and "▲" in text else QColor(230, 230, 230)
            if text.startswith("DEMO"):
                colour = QColor(255, 60, 60)
            painter.setPen(colour)
            painter.drawText(QRect(view.width() + 10, y, LEGEND_WIDTH - 16, 18),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            y += 20
    finally:
        painter.end()
    return out


def findings_text(pred: Prediction | None, image: Image | None, engine: Engine | None) -> str:
    """What `chexnet predict` prints for this image: the model header, then the findings."""
    if pred is None or engine is None:
        return ""
    head = model_header(pred.model, engine.card, engine.providers, engine.package.chosen_by)
    return "\n".join(head + prediction_text(pred, image)) + "\n"
