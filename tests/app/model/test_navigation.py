"""Navigation without a window: what is shown first, where the image and series keys go,
skipping unreadable images while opening, and window presets of the shown image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from chexnet.app.model.navigation import Navigation, primary_index, series_starts
from chexnet.app.model.session import OpenResult, load_for_view, open_paths
from chexnet.inference.io.image import Window
from tests.inference.io.dicom_factory import make_dicom


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> OpenResult:
    """One study of two series (a lateral then a PA; one PA) and a second study (one PA)."""
    root = tmp_path_factory.mktemp("study")
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 8)
    first, other = generate_uid(), generate_uid()
    s1, s2, s3 = generate_uid(), generate_uid(), generate_uid()
    make_dicom(root / "a_lateral.dcm", ramp, study_uid=first, series_uid=s1, SeriesNumber=1,
               InstanceNumber=1, ViewPosition="LL")
    make_dicom(root / "b_pa.dcm", ramp, study_uid=first, series_uid=s1, SeriesNumber=1,
               InstanceNumber=2)
    make_dicom(root / "c_pa.dcm", ramp, study_uid=first, series_uid=s2, SeriesNumber=2,
               InstanceNumber=1)
    make_dicom(root / "d_other.dcm", ramp, study_uid=other, series_uid=s3, SeriesNumber=1,
               InstanceNumber=1)
    result = open_paths([root])
    assert len(result.items) == 4
    return result


def test_the_first_studys_frontal_image_is_shown_first(study):
    index = primary_index(study)
    assert study.items[index].instance.view_position == "PA"
    assert study.items[index].study_index == 0
    assert all(item.instance.view_position == "LL" for item in study.items[:index])


def test_series_starts(study):
    keys = [(it.study_index, it.series_index) for it in study.items]
    starts = series_starts(study.items)
    assert starts[0] == 0
    assert len(starts) == len(set(keys)) == 3
    assert all(keys[s] != keys[s - 1] for s in starts[1:])


def test_image_keys_step_and_stop_at_the_ends(study):
    nav = Navigation()
    count = len(study.items)
    assert nav.step_image(1, 0) is None  # nothing open
    assert nav.go_to(1, count)
    assert nav.step_image(1, count) == 2
    assert nav.step_image(-5, count) == 0
    assert nav.go_to(count - 1, count)
    assert nav.step_image(1, count) == count - 1
    assert not nav.go_to(count, count)
    assert nav.index == count - 1


def test_series_keys_go_to_the_first_image_of_a_series(study):
    nav = Navigation()
    items = study.items
    starts = series_starts(items)
    assert nav.step_series(1, items) is None  # nothing shown yet
    nav.go_to(1, len(items))  # second image of the first series
    assert nav.step_series(0, items) == starts[0]
    assert nav.step_series(1, items) == starts[1]
    assert nav.step_series(2, items) == starts[2]
    assert nav.step_series(9, items) == starts[-1]
    nav.go_to(starts[2], len(items))
    assert nav.step_series(-1, items) == starts[1]


def test_unreadable_images_are_skipped_only_until_the_reader_moves(study):
    nav = Navigation()
    count = len(study.items)
    nav.go_to(0, count)
    assert nav.after_failure(count) == 1  # opening: try the next image
    nav.go_to(count - 1, count)
    assert nav.after_failure(count) is None  # none left
    nav.choose(0, count)
    assert nav.after_failure(count) is None  # the reader picked it: show its error
    nav.reset()
    nav.go_to(0, count)
    assert nav.after_failure(count) == 1
    nav.step_image(1, count)
    assert nav.after_failure(count) is None


def test_an_arrived_image_starts_at_the_remembered_kind_of_preset(study):
    nav = Navigation()
    nav.go_to(0, len(study.items))
    loaded = load_for_view(study.items[0].instance)
    n = len(loaded.presets)
    assert nav.arrived(loaded, "full") is True  # first image since the open
    assert nav.preset_index == n - 1
    assert nav.preset.window.explanation == "full range"
    assert nav.preset_kind == "full"
    assert nav.arrived(loaded, "auto") is False
    assert nav.preset_index == n - 2
    assert nav.preset_kind == "auto"
    nav.reset()
    assert nav.loaded is None
    assert nav.arrived(loaded, "file") is True
    assert nav.preset_index == 0


def test_presets_and_a_window_of_ones_own(study):
    nav = Navigation()
    assert nav.choose_preset(0) is None  # nothing shown
    loaded = load_for_view(study.items[0].instance)
    nav.arrived(loaded, "file")
    assert nav.choose_preset(len(loaded.presets)) is None
    assert nav.preset_index == 0
    full = nav.choose_preset(len(loaded.presets) - 1)
    assert full is loaded.presets[-1]
    shown = nav.display(full.window)
    assert nav.display(full.window) is shown  # a preset's pixels are cached on the image
    nav.leave_presets()
    assert nav.preset is None
    assert nav.preset_kind is None
    manual = Window(100.0, 300.0, "LINEAR", "manual")
    dragged = nav.display(manual)
    assert nav.display(manual) is not dragged  # a dragged window is not
    np.testing.assert_array_equal(dragged, loaded.image.display_u8(manual, cache=False))


def test_display_needs_a_shown_image():
    with pytest.raises(ValueError, match="no image is shown"):
        Navigation().display(None)


def test_paths_are_items_in_reading_order(study):
    names = [Path(it.instance.path).name for it in study.items]
    keys = [(it.study_index, it.series_index) for it in study.items]
    assert keys == sorted(keys)
    assert set(names) == {"a_lateral.dcm", "b_pa.dcm", "c_pa.dcm", "d_other.dcm"}
