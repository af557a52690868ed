"""The prior pane's data: the patients' timelines of what is open, the shown image's priors,
the chosen prior decoded and scored, and the rows of the change table -- no widgets here.

Everything is computed by the inference room (:mod:`chexnet.inference.priors`): timelines are
built from the studies the open already scanned (their headers parsed once) plus, when a
worklist is shown, the worklist's files, on a worker; a prior is decoded (the per-file guard of
:func:`~chexnet.app.model.session.load_for_view`) and scored by the session's engine on a
worker; the comparison is :func:`~chexnet.inference.priors.compare.compare_predictions` of the
two predictions. Jobs carry a generation (bumped on every open and every search) and stale
results are dropped, as :class:`~chexnet.app.model.session.StudySession` does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from chexnet.app.model.session import LoadedImage, load_for_view
from chexnet.app.workers import JobRunner
from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.study import Study, scan
from chexnet.inference.priors.compare import (
    Comparison,
    FindingChange,
    NotComparableError,
    card_thresholds,
    compare_predictions,
)
from chexnet.inference.priors.timeline import PriorMatch, PriorSearch, Timelines
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prediction import Prediction

#: Changes smaller than this show as "=" (the table shows two decimals).
UNCHANGED = 0.005


@dataclass(frozen=True)
class ChangeRow:
    """One row of the change table, as text: finding, now, before, change, status."""

    label: str
    now: str
    before: str
    change: str
    status: str
    tooltip: str


@dataclass(frozen=True)
class PriorResult:
    """A prior decoded for viewing and scored by ``engine``."""

    match: PriorMatch
    loaded: LoadedImage
    prediction: Prediction
    engine: Engine


def change_text(delta: float) -> str:
    """The change column: an arrow and the signed delta (``▲ +0.12``, ``▼ −0.08``, ``= 0.00``)."""
    if abs(delta) < UNCHANGED:
        return "= 0.00"
    return f"▲ +{delta:.2f}" if delta > 0 else f"▼ −{-delta:.2f}"


def change_rows(comparison: Comparison) -> list[ChangeRow]:
    """The comparison's rows as the table shows them: new findings first, then resolved ones,
    then the rest in the current prediction's order."""
    order = {"new": 0, "resolved": 1}

    def row(change: FindingChange) -> ChangeRow:
        tip = (f"{change.label}: {change.now:.3f} now, {change.before:.3f} on the prior, "
               f"change {change.delta:+.3f}")
        if change.status == "new":
            tip += " (newly above the model's operating point)"
        elif change.status == "resolved":
            tip += " (fell below the model's operating point)"
        return ChangeRow(change.label, f"{change.now:.2f}", f"{change.before:.2f}",
                         change_text(change.delta), change.status, tip)

    ranked = sorted(comparison.rows, key=lambda c: order.get(c.status, 2))  # stable
    return [row(c) for c in ranked]


def prior_names(search: PriorSearch) -> list[str]:
    """The list of priors as the pane offers them: when, and the file's name."""
    return [f"{m.when_text or 'undated'} — {m.path.name}" for m in search.priors]


def operating_points(pred: Prediction, engine: Engine) -> dict[str, float]:
    """The operating points the findings panel marks with: the prediction's own (site tuning
    included), else the card's."""
    if pred.thresholds is not None:
        return {label: float(t) for label, t in zip(pred.labels, pred.thresholds, strict=True)}
    return card_thresholds(engine.card)


def build_timelines(studies: Sequence[Study], extra: Sequence[Path] = ()) -> Timelines:
    """Timelines of the open studies (their headers parsed by the open, not read again) and,
    when a worklist is shown, of its files too (``extra``: those not open are scanned here).
    Runs on a worker."""
    opened = {os.path.abspath(inst.path) for study in studies for inst in study.instances}
    rest = [path for path in extra if os.path.abspath(path) not in opened]
    return Timelines.from_studies([*studies, *(scan(rest).studies if rest else ())])


def load_prior(path: Path, engine: Engine) -> tuple[LoadedImage, Prediction]:
    """Decode a prior as the viewer decodes the shown image, and score it. Runs on a worker."""
    found = scan([path])
    instances = [inst for study in found.studies for inst in study.instances]
    if not instances:
        reasons = "; ".join(str(err) for err in found.skipped)
        raise ChexnetInputError(path, f"cannot be read any more ({reasons or 'no image'})",
                                "check that the file is still there")
    loaded = load_for_view(instances[0])
    return loaded, engine.predict([loaded.image])[0]


class PriorSession(QObject):
    """Timelines of what is open, the shown image's priors, and the chosen prior."""

    searched = Signal(object)        # PriorSearch of the shown image
    prior_ready = Signal(object)     # PriorResult
    prior_failed = Signal(str)       # why the chosen prior cannot be shown
    search_failed = Signal(str)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.generation = 0
        self.timelines: Timelines | None = None
        self.search: PriorSearch | None = None
        self.chosen: int | None = None
        self.result: PriorResult | None = None
        self._current: Path | None = None
        self._load_token = 0
        self._loading: tuple[PriorMatch, Engine] | None = None  # the prior being scored
        self._kept: PriorResult | None = None  # the last prior shown

    def open(self, studies: Sequence[Study], extra: Sequence[Path] = ()) -> None:
        """A new open: forget everything, build its timelines on a worker."""
        self.generation += 1
        self._kept = self.result or self._kept  # kept: a worklist's next row may share it
        self.timelines, self.search, self.chosen, self.result = None, None, None, None
        self._current, self._loading = None, None
        self.runner.start(self.generation, build_timelines, list(studies), list(extra),
                          on_result=self._built, on_error=self._build_failed)

    def find(self, current: Path) -> None:
        """The priors of the shown image (as soon as the timelines are built)."""
        if current == self._current and self.search is not None:
            return
        self._current = current
        self._kept = self.result or self._kept  # the same prior again is not decoded again
        self.search, self.chosen, self.result, self._loading = None, None, None, None
        self._load_token += 1
        if self.timelines is not None:
            self._search_now()

    def _built(self, token, timelines: Timelines) -> None:
        if token != self.generation:
            return
        self.timelines = timelines
        if self._current is not None:
            self._search_now()

    def _build_failed(self, token, message: str) -> None:
        if token == self.generation:
            self.search_failed.emit(f"could not look for priors: {message}")

    def _search_now(self) -> None:
        # in memory: the headers were read when the timelines were built
        self.search = self.timelines.search(self._current)
        self.searched.emit(self.search)

    # --- the chosen prior ---------------------------------------------------------------------
    def choose(self, k: int, engine: Engine | None) -> bool:
        """Decode and score prior ``k`` of the search on a worker; False when there is no such
        prior or no model yet (it is asked for again when the model is ready)."""
        if self.search is None or not 0 <= k < len(self.search.priors):
            return False
        self.chosen = k
        for result in (self.result, self._kept):
            if result is not None and result.match == self.search.priors[k] \
                    and result.engine is engine:
                self._loading = None  # a load still on its way is for another choice: dropped
                self._load_token += 1
                self.result = result
                self.prior_ready.emit(result)
                return True
        self.result = None
        if engine is None:
            return False
        match = self.search.priors[k]
        if self._loading == (match, engine):
            return True  # already on its way
        self._loading = (match, engine)
        self._load_token += 1
        self.runner.start((self.generation, self._load_token), load_prior, match.path, engine,
                          on_result=lambda token, got: self._loaded(token, match, engine, got),
                          on_error=self._load_failed)
        return True

    def _loaded(self, token, match: PriorMatch, engine: Engine, got) -> None:
        if token != (self.generation, self._load_token):
            return
        loaded, prediction = got
        self._loading = None
        self.result = PriorResult(match, loaded, prediction, engine)
        self.prior_ready.emit(self.result)

    def _load_failed(self, token, message: str) -> None:
        if token == (self.generation, self._load_token):
            self._loading = None
            self.prior_failed.emit(message)

    def comparison(self, current: Prediction | None,
                   engine: Engine | None) -> tuple[Comparison | None, str]:
        """The change from the shown prior to ``current``, or None and why not."""
        result = self.result
        if result is None or current is None or engine is None:
            return None, ""
        if result.engine is not engine:
            return None, "the prior was scored by another model: scoring it again…"
        try:
            return compare_predictions(current, result.prediction,
                                       operating_points(current, engine)), ""
        except NotComparableError as err:
            return None, f"no comparison: {err}"
