"""The prior pane's data: the change table as text (arrow and signed delta, new and resolved
first), and timelines over the open files plus a worklist's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chexnet.app.model.priors import PriorSession, build_timelines, change_rows, change_text
from chexnet.inference.io.study import scan
from chexnet.inference.priors.compare import Comparison, FindingChange


@pytest.mark.parametrize(("delta", "text"), [
    (0.123, "▲ +0.12"), (-0.081, "▼ −0.08"), (0.004, "= 0.00"), (-0.0049, "= 0.00"),
    (0.005, "▲ +0.01"), (-1.0, "▼ −1.00"),
])
def test_the_change_is_an_arrow_and_a_signed_delta(delta, text):
    assert change_text(delta) == text


def test_new_then_resolved_findings_come_first_in_the_comparisons_order_otherwise():
    rows = (FindingChange("Mass", 0.9, 0.8, 0.1, ""),
            FindingChange("Effusion", 0.7, 0.2, 0.5, "new"),
            FindingChange("Nodule", 0.3, 0.6, -0.3, "resolved"),
            FindingChange("Edema", 0.2, 0.2, 0.0, ""),
            FindingChange("Hernia", 0.6, 0.1, 0.5, "new"))
    shown = change_rows(Comparison(rows, ("Effusion", "Hernia"), ("Nodule",)))
    assert [r.label for r in shown] == ["Effusion", "Hernia", "Nodule", "Mass", "Edema"]
    nodule = shown[2]
    assert (nodule.now, nodule.before, nodule.change, nodule.status) == (
        "0.30", "0.60", "▼ −0.30", "resolved")
    assert "fell below the model's operating point" in nodule.tooltip


def test_a_worklists_files_are_searched_too_and_an_open_file_is_not_counted_twice(
        tmp_path: Path, nih_sample: Path):
    images = tmp_path / "images"
    images.mkdir()
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:3]
    lines = ["Image Index,Follow-up #,Patient ID"]
    for k, name in enumerate(names):
        shutil.copy(nih_sample / "images" / name, images / name)
        lines.append(f"{name},{k},7")
    (tmp_path / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    current = images / names[2]
    opened = scan([current]).studies  # the worklist opened one row
    worklist = [images / n for n in names]  # ...and lists all three, the open one included
    search = build_timelines(opened, worklist).search(current)
    assert [m.path.name for m in search.priors] == [names[1], names[0]]  # each once
    assert [m.when_text for m in search.priors] == ["follow-up 1", "follow-up 0"]
    alone = build_timelines(opened)
    assert alone.search(current).reason == "no earlier study of this patient"


class _HeldRunner:
    """A JobRunner whose jobs wait until the test delivers them, in the order it chooses."""

    def __init__(self) -> None:
        self.jobs: list = []

    def start(self, token, fn, *args, on_result=None, on_error=None):
        self.jobs.append((token, fn, args, on_result))

    def run(self, k: int, result=None) -> None:
        """Deliver job ``k``: ``result`` if given (a prior's decode), else ``fn(*args)``."""
        token, fn, args, on_result = self.jobs[k]
        on_result(token, fn(*args) if result is None else result)


def test_a_prior_load_overtaken_by_a_cached_choice_is_dropped(tmp_path: Path, nih_sample: Path,
                                                              qtbot):
    """Reader: the latest prior is loading, the reader picks the older one (already decoded for
    the previous image): the late load must not replace it (the list would say one prior and
    the pane show another)."""
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:3]
    lines = ["Image Index,Follow-up #,Patient ID"]
    for k, name in enumerate(names):
        (tmp_path / "images").mkdir(exist_ok=True)
        shutil.copy(nih_sample / "images" / name, tmp_path / "images" / name)
        lines.append(f"{name},{k},7")
    (tmp_path / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    f0, f1, f2 = (tmp_path / "images" / n for n in names)
    runner, engine = _HeldRunner(), object()
    session = PriorSession(runner)
    shown = []
    session.prior_ready.connect(lambda r: shown.append(r.match.path))
    session.open(scan([f0, f1, f2]).studies)
    runner.run(0)  # the timelines
    session.find(f1)
    assert session.choose(0, engine)  # f1's prior: f0
    runner.run(1, ("loaded f0", "prediction f0"))
    session.find(f2)  # f2's priors: f1 (latest), f0 (shown a moment ago)
    assert [m.path for m in session.search.priors] == [f1, f0]
    assert session.choose(0, engine)  # f1 starts loading...
    assert session.choose(1, engine)  # ...the reader picks f0: shown at once, not decoded again
    assert len(runner.jobs) == 3
    assert shown[-1] == f0
    runner.run(2, ("loaded f1", "prediction f1"))  # the late load of f1
    assert session.result.match.path == f0
    assert shown[-1] == f0
