"""The prior pane (issue 15), as a reader sees it: the patient's earlier radiograph beside the
current one (pixels of both on screen), zoom/pan kept in step (a toggle), the same finding's
heat map on both, the change table equal to comparing two independent predictions, another
prior chosen from the list, ``P``, and a reason instead of an empty pane.

Real images: NIH ChestX-ray14 PNGs from ../shared. That sample holds one image per patient,
so the labels CSV written here makes three of them one patient's follow-ups 0, 1, 2 (the
viewer learns who is who from that CSV only, as it would from the NIH release's own). Also
generated DICOMs with one Patient ID and two Study Dates.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PySide6.QtCore import QPointF, Qt

from chexnet.app.menus import SHORTCUTS
from chexnet.inference import Engine, load_image
from chexnet.inference.render.cam import cam_on_image
from tests.app.conftest import FINDINGS_TIMEOUT_MS, open_and_wait
from tests.inference.io.dicom_factory import make_dicom

NAMES = ("00000075_000.png", "00000100_000.png", "00000129_000.png")  # follow-ups 0, 1, 2


@pytest.fixture
def follow_ups(tmp_path: Path, nih_sample: Path) -> Path:
    """The NIH layout: images/ with three PNGs, the labels CSV beside it naming one patient."""
    images = tmp_path / "nih" / "images"
    images.mkdir(parents=True)
    lines = ["Image Index,Finding Labels,Follow-up #,Patient ID"]
    for k, name in enumerate(NAMES):
        shutil.copy(nih_sample / "images" / name, images / name)
        lines.append(f"{name},No Finding,{k},4242")
    (images.parent / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    return images


def show_with_prior(qtbot, window, folder: Path, name: str) -> None:
    """Open ``folder``, show ``name`` and wait until its prior and change table are up."""
    open_and_wait(qtbot, window, folder)
    index = [item.instance.path.name for item in window.session.items].index(name)
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.choose_index(index)
    wait_prior(qtbot, window)


def wait_prior(qtbot, window, when: str | None = None) -> None:
    model, pane = window.priors.model, window.priors.pane

    def up() -> bool:
        result = model.result
        return (result is not None and (when is None or result.match.when_text == when)
                and pane.canvas.base.image is not None and pane.table.rowCount() > 0)

    qtbot.waitUntil(up, timeout=FINDINGS_TIMEOUT_MS)


def on_screen(canvas, points: list[tuple[float, float]]) -> np.ndarray:
    """RGB on screen of image pixels (x, y) of ``canvas`` (one grab)."""
    grab = canvas.grab().toImage()
    ratio = grab.devicePixelRatio()
    out = []
    for x, y in points:
        p = canvas.mapFromScene(canvas.base.mapToScene(QPointF(x + 0.5, y + 0.5)))
        c = grab.pixelColor(round(p.x() * ratio), round(p.y() * ratio))
        out.append((c.red(), c.green(), c.blue()))
    return np.array(out, dtype=float)


def grid(shape: tuple[int, int], n: int = 16) -> list[tuple[float, float]]:
    h, w = shape
    return [(x, y) for y in np.linspace(0.08 * h, 0.92 * h, n) for x in np.linspace(
        0.08 * w, 0.92 * w, n)]


def source_grey(path: Path, points) -> np.ndarray:
    pixels = np.asarray(PILImage.open(path).convert("L"), dtype=float)
    return np.array([pixels[int(y), int(x)] for x, y in points])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def heat_off(qtbot, window) -> None:
    window.state.cam_visible = False
    qtbot.waitUntil(lambda: not window.canvas.overlay.isVisible()
                    and not window.priors.pane.canvas.overlay.isVisible())


def test_the_prior_is_drawn_beside_the_current_image_with_the_change_per_finding(
        qtbot, make_window, follow_ups, tiny_model):
    window = make_window()
    show_with_prior(qtbot, window, follow_ups, NAMES[2])
    pane = window.priors.pane
    assert window.priors.dock.isVisible()  # it appeared by itself: there is a prior
    assert [pane.choice.itemText(k) for k in range(pane.choice.count())] == [
        f"follow-up 1 — {NAMES[1]}", f"follow-up 0 — {NAMES[0]}"]
    heat_off(qtbot, window)

    # both images on screen: each canvas shows its own file, not the other
    points = grid((1024, 1024))
    current = on_screen(window.canvas, points)[:, 0]
    prior = on_screen(pane.canvas, points)[:, 0]
    cur_src, prior_src = (source_grey(follow_ups / n, points) for n in (NAMES[2], NAMES[1]))
    assert correlation(current, cur_src) > 0.95
    assert correlation(prior, prior_src) > 0.95
    assert correlation(prior, cur_src) < correlation(prior, prior_src) - 0.2

    # the change table = comparing two predictions made here, independently, with the Engine
    engine = Engine(str(tiny_model), batch_size=1)
    now, before = (engine.predict([load_image(follow_ups / n)])[0] for n in (NAMES[2], NAMES[1]))
    check_table(pane, now, before)

    # window/level: right-drag on the prior changes the prior only
    main_window = window.state.window
    pane.canvas.window_drag.emit(-150.0, -60.0, True)  # narrower, higher centre: darker
    qtbot.waitUntil(lambda: on_screen(pane.canvas, points)[:, 0].mean() < prior.mean() - 10)
    assert window.state.window == main_window
    assert np.array_equal(on_screen(window.canvas, points)[:, 0], current)

    # another prior from the list: follow-up 0 is drawn and compared
    pane.choice.setCurrentIndex(1)
    wait_prior(qtbot, window, "follow-up 0")
    older = engine.predict([load_image(follow_ups / NAMES[0])])[0]
    check_table(pane, now, older)
    shown = on_screen(pane.canvas, points)[:, 0]
    assert correlation(shown, source_grey(follow_ups / NAMES[0], points)) > 0.95
    assert "follow-up 0" in pane.status.text()


def check_table(pane, now, before) -> None:
    """Every finding's row: now, before, change (arrow and delta) and new/resolved, from the
    two predictions' probabilities and operating points."""
    was = dict(zip(before.labels, before.probabilities, strict=True))
    rows = {pane.table.item(r, 0).text(): [pane.table.item(r, c).text() for c in range(1, 5)]
            for r in range(pane.table.rowCount())}
    assert set(rows) == set(now.labels)
    for label, p, limit in zip(now.labels, now.probabilities, now.thresholds, strict=True):
        shown_now, shown_before, change, status = rows[label]
        delta = p - was[label]
        assert float(shown_now) == pytest.approx(p, abs=0.005)
        assert float(shown_before) == pytest.approx(was[label], abs=0.005)
        arrow, number = change.split(" ")
        assert float(number.replace("−", "-")) == pytest.approx(delta, abs=0.0051)
        assert arrow == ("=" if abs(delta) < 0.005 else "▲" if delta > 0 else "▼")
        assert status == ("new" if p >= limit > was[label]
                          else "resolved" if was[label] >= limit > p else "")


def centre_and_zoom(canvas) -> tuple[float, float, float]:
    """The image point at the view's centre (fractions of the image) and the zoom relative to
    the whole image fitting the canvas (screen pixels per image pixel, over the fit's)."""
    rect = canvas.view.viewRect()
    p = canvas.base.mapFromParent(rect.center())
    h, w = canvas.shape
    size = canvas.view.size()
    fit = min(size.width() / w, size.height() / h)
    return p.x() / w, p.y() / h, size.width() / rect.width() / fit


def test_zoom_and_pan_follow_on_both_images_until_sync_is_off(qtbot, make_window, follow_ups):
    window = make_window()
    show_with_prior(qtbot, window, follow_ups, NAMES[2])
    main, prior, pane = window.canvas, window.priors.pane.canvas, window.priors.pane
    assert pane.sync.isChecked()  # on by default
    fitted = centre_and_zoom(main)[2]
    main.zoom(2.0)
    main.view.translateBy(x=120, y=-80)  # pan (view units: image pixels)

    def same_view() -> bool:
        mx, my, mz = centre_and_zoom(main)
        px, py, pz = centre_and_zoom(prior)
        return abs(px - mx) < 0.005 and abs(py - my) < 0.005 and abs(pz / mz - 1) < 0.01

    qtbot.waitUntil(same_view)
    mx, my, zoom = centre_and_zoom(main)
    assert zoom / fitted == pytest.approx(2.0, rel=0.01)
    assert (mx, my) != pytest.approx((0.5, 0.5), abs=0.05)  # the middle moved off the centre

    prior.zoom(1.5)  # either way round
    qtbot.waitUntil(lambda: same_view() and centre_and_zoom(main)[2] / zoom > 1.45)

    pane.sync.setChecked(False)
    held = prior.view.viewRect()
    main.zoom(2.0)
    main.view.translateBy(x=-50, y=30)
    qtbot.wait(50)
    assert prior.view.viewRect() == held
    assert not same_view()
    pane.sync.setChecked(True)  # on again: the prior jumps to the current view
    qtbot.waitUntil(same_view)


def test_the_selected_findings_heat_map_is_drawn_on_both(qtbot, make_window, follow_ups,
                                                         tiny_model):
    window = make_window()
    show_with_prior(qtbot, window, follow_ups, NAMES[2])
    state, pane = window.state, window.priors.pane
    engine = Engine(str(tiny_model), batch_size=1)
    label = engine.labels[2]
    state.finding, state.opacity, state.threshold, state.cam_visible = label, 1.0, 0.0, True
    checks = []
    for canvas, name in ((window.canvas, NAMES[2]), (pane.canvas, NAMES[1])):
        image = load_image(follow_ups / name)
        pred = engine.predict([image])[0]
        heat = cam_on_image(pred.cam(label), pred.crop_box, image.shape, (256, 256))
        hot = np.argwhere(heat >= np.nanpercentile(heat, 95))[::25] * 4 + 2  # rows, cols
        checks.append((canvas, [(float(c), float(r)) for r, c in hot]))

    def coloured() -> bool:  # jet at the CAM's top: far from grey, on both images
        return all((np.ptp(on_screen(c, pts), axis=1) > 80).mean() > 0.9 for c, pts in checks)

    qtbot.waitUntil(coloured, timeout=FINDINGS_TIMEOUT_MS)
    state.threshold = 1.0  # the one threshold control hides the weaker CAM on both
    qtbot.waitUntil(lambda: all((np.ptp(on_screen(c, pts), axis=1) <= 3).mean() > 0.9
                                for c, pts in checks), timeout=FINDINGS_TIMEOUT_MS)
    # the pane follows the selected finding both ways: its row is highlighted
    rows = pane.table.selectionModel().selectedRows()
    assert [pane.table.item(r.row(), 0).text() for r in rows] == [label]
    other = pane.table.item(0 if pane.table.item(0, 0).text() != label else 1, 0).text()
    pane.table.selectRow([pane.table.item(r, 0).text()
                          for r in range(pane.table.rowCount())].index(other))
    assert state.finding == other


def test_p_toggles_the_pane_and_a_pane_without_prior_says_why(qtbot, make_window, follow_ups,
                                                             nih_png, tmp_path):
    assert ("Prior pane on/off (the patient's earlier study)", "P") in SHORTCUTS
    window = make_window()
    show_with_prior(qtbot, window, follow_ups, NAMES[1])
    dock, pane = window.priors.dock, window.priors.pane
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert not dock.isVisible()
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.choose_index(2)  # follow-up 2 has priors, but the reader hid the pane
    qtbot.waitUntil(lambda: window.priors.model.search is not None
                    and window.runner.running == 0, timeout=FINDINGS_TIMEOUT_MS)
    assert not dock.isVisible()
    assert window.priors.model.result is None  # nothing decoded or scored for a hidden pane
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert dock.isVisible()
    wait_prior(qtbot, window, "follow-up 1")  # shown again: the prior is loaded now
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.choose_index(0)  # follow-up 0: the pane says why it is empty
    qtbot.waitUntil(lambda: "no earlier study of this patient" in pane.status.text())
    assert pane.canvas.base.image is None
    assert pane.table.rowCount() == 0

    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(nih_png, lone / nih_png.name)  # no labels CSV: who is it?
    open_and_wait(qtbot, window, lone)
    qtbot.waitUntil(lambda: "No prior: no Patient ID (no labels CSV" in pane.status.text(),
                    timeout=FINDINGS_TIMEOUT_MS)


def test_dicom_priors_by_patient_id_and_study_date(qtbot, make_window, tmp_path):
    yy, xx = np.mgrid[0:256, 0:256]
    for name, date, blob in (("now.dcm", "20200101", 60), ("then.dcm", "20190304", 190),
                             ("other.dcm", "20180101", 120)):
        img = 300 + 2 * xx + 1200 * np.exp(-(((xx - blob) / 25.0) ** 2
                                             + ((yy - 128) / 25.0) ** 2))
        make_dicom(tmp_path / name, img.astype(np.uint16),
                   PatientID="OTHER" if name == "other.dcm" else "PAT-1", StudyDate=date)
    window = make_window()
    show_with_prior(qtbot, window, tmp_path, "now.dcm")
    pane = window.priors.pane
    assert [pane.choice.itemText(k) for k in range(pane.choice.count())] == [
        "2019-03-04 — then.dcm"]  # another patient's older study is not a prior
    assert "Prior of 2019-03-04, 303 days before" in pane.status.text()
    assert not pane.choice.isEnabled()  # one prior: nothing to choose
