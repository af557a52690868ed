"""Which image of an open to show first: the first one the model would analyse.

A folder may hold several studies (a CT, a lateral, a chest radiograph): whatever order the
studies come in, the viewer opens on the first frontal chest radiograph, judged from the header
alone (no pixels are decoded), as :class:`~chexnet.inference.io.study.Instance` judges it. Plain
Python on scanned instances; runs on the worker that scans the open.
"""

from __future__ import annotations

from chexnet.inference.io.image import FRONTAL_VIEWS
from chexnet.inference.io.study import Instance

#: What the header says about an image, best first.
FRONTAL_CHEST_RADIOGRAPH, NOT_REFUSED, REFUSED = 0, 1, 2


def header_rank(instance: Instance) -> int:
    """:data:`FRONTAL_CHEST_RADIOGRAPH`: a PA/AP chest radiograph; :data:`NOT_REFUSED`: nothing
    in the header says otherwise (a PNG or JPEG, a DICOM that does not say its view);
    :data:`REFUSED`: another modality (CT, MR...), body part or view."""
    if instance.reads_first:
        return FRONTAL_CHEST_RADIOGRAPH
    view = instance.view_position
    if instance.is_chest_radiograph and (not view or view in FRONTAL_VIEWS):
        return NOT_REFUSED
    return REFUSED


def first_to_read(instances: list[Instance]) -> int:
    """Index of the image shown first: the first frontal chest radiograph, else the first image
    nothing in its header refuses, else the first image."""
    if not instances:
        return 0
    ranks = [header_rank(inst) for inst in instances]
    return ranks.index(min(ranks))
