"""The one overlay composer: a finding's CAM as a heat map on the radiograph, with the region
the model did not see outlined, so nobody mistakes an uncoloured margin for a negative finding.

Used by ``chexnet predict --cam-out`` (a PNG at up to :data:`MAX_OVERLAY_SIDE` pixels) and by
the screening report's heat-map thumbnails. (The viewer draws the same heat map,
:func:`~chexnet.inference.render.cam.cam_on_image`, as a layer of its canvas, and its export
saves the canvas as the reader sees it: window, zoom and flips included.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from chexnet.inference.atomic_file import atomic_output
from chexnet.inference.io.image import Image
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.preprocessing import CropBox
from chexnet.inference.render.cam import blend, cam_on_image, colourise
from chexnet.inference.render.text import safe_name
from chexnet.inference.scoring.prediction import ModelId, Prediction

MAX_OVERLAY_SIDE = 1024
OUTLINE_RGB = (255, 255, 0)
LEGEND_FONT_PX = 15
LEGEND_BACKGROUND = (20, 20, 20)
LEGEND_TEXT = (230, 230, 230)
LEGEND_DEMO = (255, 70, 70)


def compose_overlay(grey: np.ndarray, cam: np.ndarray, crop_box: CropBox,
                    image_shape: tuple[int, int], *, threshold: float,
                    opacity: float) -> np.ndarray:
    """RGB uint8 of ``grey`` (the image's 8-bit display pixels at any size) with ``cam``
    (a raw CAM over ``crop_box`` of an image of ``image_shape``) blended on, and the crop box
    outlined when it leaves part of the image out."""
    heat = cam_on_image(cam, crop_box, image_shape, grey.shape)
    rgb = blend(grey, colourise(heat, threshold, opacity))
    if crop_box.covers(image_shape):
        return rgb
    scale = grey.shape[0] / image_shape[0]
    pil = PILImage.fromarray(rgb)
    ImageDraw.Draw(pil).rectangle([crop_box.x0 * scale, crop_box.y0 * scale,
                                   crop_box.x1 * scale - 1, crop_box.y1 * scale - 1],
                                  outline=OUTLINE_RGB, width=2)
    return np.asarray(pil)


def write_cam_png(image: Image, pred: Prediction, finding: str, out_dir: Path, *,
                  threshold: float, opacity: float, stem: str | None = None) -> Path:
    """Write the image with ``finding``'s CAM overlaid (:func:`compose_overlay`), at most
    :data:`MAX_OVERLAY_SIDE` pixels on its long side, above a legend band naming the model
    (name, version, sha256), the finding and threshold, and the DEMO notice for a demo model;
    the same facts go into the PNG's text chunks. Returns the PNG's path."""
    picture = cam_picture(overlay_base(image.display_u8()), pred, finding, image.shape,
                          threshold=threshold, opacity=opacity)
    model = pred.model
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{safe_name(stem or image.path.stem)}_{safe_name(finding)}_cam.png"
    info = PngInfo()
    for key, value in (("chexnet.model", f"{model.name} {model.version}"),
                       ("chexnet.sha256", model.sha256), ("chexnet.demo", str(model.demo)),
                       ("chexnet.finding", finding), ("chexnet.threshold", f"{threshold:g}")):
        info.add_itxt(key, value)
    with atomic_output(target) as fh:
        picture.save(fh, format="PNG", pnginfo=info)
    return target


def overlay_base(grey: np.ndarray) -> np.ndarray:
    """``grey`` (8-bit display pixels) downscaled so its long side is at most
    :data:`MAX_OVERLAY_SIDE`: the picture every overlay file is drawn on (CAM PNGs, the DICOM
    heat map; a screening decode worker makes it where the full-size pixels are)."""
    h, w = grey.shape
    scale = min(1.0, MAX_OVERLAY_SIDE / max(h, w))
    if scale >= 1.0:
        return grey
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(PILImage.fromarray(np.ascontiguousarray(grey)).resize(
        size, PILImage.Resampling.BILINEAR))


def cam_picture(grey: np.ndarray, pred: Prediction, finding: str | None,
                image_shape: tuple[int, int], *, threshold: float, opacity: float,
                extra_lines: tuple[str, ...] = ()) -> PILImage.Image:
    """``grey`` with ``finding``'s CAM overlaid (none when ``finding`` is None) above the
    legend band (:func:`legend_lines`, then ``extra_lines``). ``image_shape``: the pixels the
    prediction's crop box refers to (``grey`` may be any size of the same image)."""
    if finding is None:
        rgb = np.stack([grey] * 3, axis=-1)
    else:
        rgb = compose_overlay(grey, pred.cam(finding), pred.crop_box, image_shape,
                              threshold=threshold, opacity=opacity)
    covers = pred.crop_box is None or pred.crop_box.covers(image_shape)
    lines = legend_lines(pred.model, finding, threshold, covers)
    lines[2:2] = [(text, LEGEND_TEXT) for text in extra_lines]
    return with_legend(PILImage.fromarray(rgb), lines)


def legend_lines(model: ModelId, finding: str | None, threshold: float, covers: bool
                 ) -> list[tuple[str, tuple[int, int, int]]]:
    """The legend of every overlay: model name, version and sha256; the finding drawn and the
    CAM threshold (and what the yellow box means, when the model saw a crop); the DEMO notice
    for a demo model, in red."""
    lines = [(f"{model.name} {model.version}  sha256 {model.sha256[:16]}", LEGEND_TEXT),
             (f"heat map: {finding} (CAM >= {threshold:.2f})" if finding is not None
              else "no heat map: the model names no finding", LEGEND_TEXT)]
    if finding is not None and not covers:
        lines[1] = (lines[1][0] + "; yellow box: what the model saw", LEGEND_TEXT)
    if model.demo:
        lines.append((DEMO_NOTICE, LEGEND_DEMO))
    return lines


def with_legend(picture: PILImage.Image, lines: list[tuple[str, tuple[int, int, int]]]
                ) -> PILImage.Image:
    """``picture`` above a dark band holding ``lines`` of (text, colour)."""
    font = _font(LEGEND_FONT_PX)
    step = LEGEND_FONT_PX + 6
    out = PILImage.new("RGB", (picture.width, picture.height + legend_height(len(lines))),
                       LEGEND_BACKGROUND)
    out.paste(picture.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    for i, (text, colour) in enumerate(lines):
        draw.text((8, picture.height + 4 + i * step), text, fill=colour, font=font)
    return out


def legend_height(n_lines: int) -> int:
    """Pixels the legend band adds below the picture."""
    return (LEGEND_FONT_PX + 6) * n_lines + 8


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's own scalable font (FreeType)
    except (TypeError, OSError):  # a Pillow built without FreeType: its small bitmap font
        return ImageFont.load_default()
