"""The image an open shows first (io.study.first_to_read): the first frontal chest radiograph of
whatever study, else the first image nothing refuses, else the first one -- whatever order the
studies come in."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from chexnet.app.model.session import open_paths
from chexnet.inference.io.study import (
    FRONTAL_CHEST_RADIOGRAPH,
    NOT_REFUSED,
    REFUSED,
    first_to_read,
)
from tests.inference.io.dicom_factory import make_dicom

RAMP = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 8)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A CT, a lateral CR, a PNG and a PA CR, each its own study; by name in that order."""
    root = tmp_path_factory.mktemp("mixed")
    make_dicom(root / "a_ct.dcm", RAMP, Modality="CT", ViewPosition="")
    make_dicom(root / "b_lateral.dcm", RAMP, ViewPosition="LL")
    PILImage.fromarray((RAMP // 256).astype(np.uint8)).save(root / "c_photo.png")
    make_dicom(root / "d_pa.dcm", RAMP)
    make_dicom(root / "e_knee.dcm", RAMP, BodyPartExamined="KNEE")
    return {p.name: inst for p, inst in ((i.path, i) for i in
                                        (it.instance for it in open_paths([root]).items))}


def test_each_image_is_ranked_by_its_header(mixed):
    assert mixed["d_pa.dcm"].read_rank == FRONTAL_CHEST_RADIOGRAPH
    assert mixed["c_photo.png"].read_rank == NOT_REFUSED
    for name in ("a_ct.dcm", "b_lateral.dcm", "e_knee.dcm"):
        assert mixed[name].read_rank == REFUSED, name


@pytest.mark.parametrize(("order", "first"), [
    (["a_ct.dcm", "b_lateral.dcm", "c_photo.png", "d_pa.dcm"], "d_pa.dcm"),
    (["a_ct.dcm", "e_knee.dcm", "c_photo.png"], "c_photo.png"),
    (["e_knee.dcm", "a_ct.dcm"], "e_knee.dcm"),
])
def test_the_first_image_the_model_would_analyse_opens_first(mixed, order, first):
    instances = [mixed[name] for name in order]
    assert instances[first_to_read(instances)].path.name == first


def test_an_open_carries_its_first_image(tmp_path):
    make_dicom(tmp_path / "a_ct.dcm", RAMP, Modality="CT", ViewPosition="")
    make_dicom(tmp_path / "b_pa.dcm", RAMP)
    result = open_paths([tmp_path])
    assert result.items[result.first].instance.path.name == "b_pa.dcm"
    assert first_to_read([]) == 0
