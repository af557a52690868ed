"""The prior's heat map in the report: the prior's CAM of the *current* row's finding.

A reader compares like with like, so the heat map beside a row's prior shows the finding the
row's own heat map shows (its top finding, or the sorting finding), drawn by the same rule
(:func:`~chexnet.inference.render.overlay.compose_overlay` at :data:`CAM_THRESHOLD` and
:data:`CAM_OPACITY`, each map scaled to its own maximum). Which finding that is becomes known
only when the prior columns are built, after both images were scored, so every analysed image
of a patient (the only ones that can be a prior) keeps its CAM grid in its journal record:

* ``cam_grid``: the CAMs at feature-map resolution ([C, 7, 7] for a 224 input; [C, 14, 14] with
  test-time augmentation), each min-max normalised as the renderer does (so float16 keeps
  ~1e-4 of the [0, 1] scale whatever the raw range), float16 little-endian, base64; with the
  crop box and the frame (rows, cols) they refer to. 14 labels x 7 x 7: 1,832 characters a
  record (docs/decisions.md has the measures). A resumed run and a ``--priors`` file keep it.
* the heat map is drawn from the grid onto the prior's grey thumbnail already in ``thumbs/``
  (a 256-pixel JPEG read back: no image is decoded again), once per (grid, finding): its name
  holds a hash of both, so a later rebuild finds it and a rescreened file gets a new one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from chexnet.inference.preprocessing import CropBox
from chexnet.inference.render.cam import normalise_cam
from chexnet.inference.render.overlay import compose_overlay
from chexnet.inference.scoring.prediction import Prediction
from chexnet.inference.screen.decode import write_jpeg

log = logging.getLogger(__name__)

CAM_THRESHOLD, CAM_OPACITY = 0.5, 0.5  # the report's heat maps, current and prior alike
GRID_FIELD = "cam_grid"  # a journal record's CAM grid
_DTYPE = np.dtype("<f2")


def grid_record(prediction: Prediction) -> dict | None:
    """The journal form of a scored image's CAMs (None when it has none)."""
    if prediction.cams is None or prediction.crop_box is None or prediction.image_shape is None:
        return None
    grid = np.stack([normalise_cam(c) for c in prediction.cams]).astype(_DTYPE)
    box = prediction.crop_box
    return {"shape": list(grid.shape), "f16": base64.b64encode(grid.tobytes()).decode("ascii"),
            "crop_box": [box.x0, box.y0, box.x1, box.y1],
            "frame": [int(v) for v in prediction.image_shape]}


def grid_cam(grid: dict, index: int) -> np.ndarray:
    """Label ``index``'s CAM (float32, normalised) back from :func:`grid_record`'s form."""
    flat = np.frombuffer(base64.b64decode(grid["f16"]), dtype=_DTYPE)
    return flat.reshape(grid["shape"])[index].astype(np.float32)


@dataclass(frozen=True)
class PriorHeatmap:
    """A prior's heat map of ``finding``, to be drawn as ``name`` (relative to the folder)."""

    name: str
    finding: str
    index: int  # the finding's position in the model's labels
    record: dict = field(compare=False, repr=False)  # the prior's journal record


def planned(prior: dict, finding: str | None, labels: tuple[str, ...]) -> PriorHeatmap | None:
    """The heat map of ``finding`` for ``prior`` (a journal record); None when it cannot be
    drawn: no grid (a journal written before grids were kept), no thumbnail, no finding."""
    grid, thumb = prior.get(GRID_FIELD), prior.get("thumb")
    if not grid or not thumb or finding not in labels:
        return None
    digest = hashlib.sha256(f"{grid['f16']}|{grid['crop_box']}|{finding}".encode()).hexdigest()
    thumb = Path(thumb)  # thumbs/<file id>.jpg: the heat map goes beside it
    return PriorHeatmap((thumb.parent / f"{thumb.stem}_{digest[:16]}_prior.jpg").as_posix(),
                        finding, labels.index(finding), prior)


def render_heatmap(heatmap: PriorHeatmap, out_dir: Path) -> np.ndarray:
    """RGB uint8 of the prior's grey thumbnail with ``heatmap.finding``'s CAM."""
    grid = heatmap.record[GRID_FIELD]
    with PILImage.open(out_dir / heatmap.record["thumb"]) as im:
        grey = np.asarray(im.convert("L"))
    return compose_overlay(grey, grid_cam(grid, heatmap.index), CropBox(*grid["crop_box"]),
                           tuple(grid["frame"]), threshold=CAM_THRESHOLD, opacity=CAM_OPACITY)


def draw_missing(heatmaps: Iterable[PriorHeatmap | None], out_dir: Path) -> int:
    """Draw the heat maps not drawn yet; returns how many were drawn. One that cannot be drawn
    (its thumbnail gone, a damaged grid) is left out of the report, with a warning."""
    drawn = 0
    for heatmap in heatmaps:
        if heatmap is None or (out_dir / heatmap.name).is_file():
            continue
        try:
            write_jpeg(render_heatmap(heatmap, out_dir), out_dir / heatmap.name)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            log.warning("prior heat map %s not drawn: %s", heatmap.name,
                        getattr(err, "strerror", None) or type(err).__name__)
            continue
        drawn += 1
    return drawn
