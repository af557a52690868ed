"""Test-time augmentation: crops as torchvision cuts them, averaged probabilities, CAMs merged
back onto the image (hot spot where the bright blob is, flips undone)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chexnet.inference import Engine, load_image
from chexnet.inference.cli.main import main
from chexnet.inference.errors import ModelPackageError
from chexnet.inference.io.image import Image
from chexnet.inference.preprocessing import PreprocessSpec, normalise, preprocess
from chexnet.inference.render.cam import cam_on_image
from chexnet.inference.scoring.tta import (
    Crop,
    crop_plan,
    merge_cams,
    normalise_crops,
    tta_crops,
    tta_resize,
)
from tests.tiny_model import build_tiny_package, reference_outputs, tiny_card

SPEC = PreprocessSpec()  # 224 input, resize 224: TTA resizes to 256


def _image(pixels: np.ndarray, tmp_path, name="blob.png") -> Image:
    """An 8-bit PNG on disk, loaded the way every input is."""
    from PIL import Image as PILImage

    path = tmp_path / name
    PILImage.fromarray(pixels).save(path)
    return load_image(path)


@pytest.mark.parametrize("mode", ["five-crop", "ten-crop"])
def test_crops_are_torchvisions_resize_then_five_or_ten_crop(nih_png, mode):
    tv = pytest.importorskip("torchvision.transforms")
    from PIL import Image as PILImage

    grey = load_image(nih_png).display_u8()[:, 40:]  # not square: corners differ from centre
    t = tta_crops(grey, SPEC, mode)
    resized = tv.Resize(256)(PILImage.fromarray(grey))
    crops = (tv.FiveCrop(224) if mode == "five-crop" else tv.TenCrop(224))(resized)
    want = np.stack([normalise(np.asarray(c), SPEC) for c in crops])
    # torchvision orders ten-crop as five crops of the flipped image: flip(tl) = our flipped tr
    order = list(range(5)) if mode == "five-crop" else [0, 1, 2, 3, 4, 6, 5, 8, 7, 9]
    assert t.frame == (resized.height, resized.width)
    np.testing.assert_array_equal(normalise_crops(t.pixels, SPEC), want[order])


def test_none_is_the_plain_preprocessing(nih_png):
    grey = load_image(nih_png).display_u8()[:, 40:]
    t = tta_crops(grey, SPEC, "none")
    np.testing.assert_array_equal(normalise_crops(t.pixels, SPEC)[0], preprocess(grey, SPEC)[0])


def test_tta_resize_leaves_room_for_corners():
    assert tta_resize(PreprocessSpec()) == 256
    assert tta_resize(PreprocessSpec(size=224, resize=288)) == 288
    plan = crop_plan((256, 300), 224, "ten-crop")
    assert len(plan) == 10
    assert len(set(plan)) == 10
    assert plan[1] == Crop(0, 76)
    assert plan[4] == Crop(16, 38)
    assert plan[9] == Crop(16, 38, True)
    with pytest.raises(ValueError, match="must be one of"):
        crop_plan((256, 256), 224, "three-crop")


def test_merged_cam_is_the_count_weighted_mean_of_the_crops():
    # crop k's CAM is the constant k + 1: each cell's value is the mean over the crops whose
    # square contains the cell's centre, computed here from the geometry alone
    crops = crop_plan((256, 256), 224, "five-crop")
    cams = np.stack([np.full((2, 7, 7), k + 1.0) for k in range(5)])
    merged, seen = merge_cams(cams, crops, (256, 256), 224)
    assert merged.shape == (2, 16, 16)
    assert seen == 1.0
    centres = (np.arange(16) + 0.5) * 16
    for i in range(16):
        for j in range(16):
            inside = [k + 1.0 for k, c in enumerate(crops)
                      if c.top <= centres[i] < c.top + 224 and c.left <= centres[j] < c.left + 224]
            assert merged[0, i, j] == pytest.approx(np.mean(inside))
    assert merged[0, 0, 0] == 1.0
    assert merged[0, 15, 15] == 4.0


def test_uncovered_cells_are_nan_and_shown_as_unseen():
    frame = (256, 760)  # wider than 2.6:1: a gap between the centre and side crops
    crops = crop_plan(frame, 224, "five-crop")
    merged, seen = merge_cams(np.ones((5, 1, 7, 7)), crops, frame, 224)
    assert 0.8 < seen < 1.0
    gap = np.isnan(merged[0]).all(axis=0)
    assert gap.any()
    assert not gap[:10].any()
    assert not gap[-10:].any()
    # corner crops span rows 0-224 and 32-256 at columns 0-224 and 536-760, the centre crop
    # rows 16-240 at columns 268-492: columns 224-268 and the top strip above the centre crop
    # were seen by no crop
    heat = cam_on_image(merged[0], _whole((256, 760)), (256, 760))
    assert np.isnan(heat[:, 246]).all()
    assert np.isnan(heat[4, 300:460]).all()
    assert np.isfinite(heat[:, 100]).all()
    assert np.isfinite(heat[30:230, 300:460]).all()


def _whole(shape):
    from chexnet.inference.preprocessing import CropBox

    return CropBox(0, 0, shape[1], shape[0])


def test_engine_averages_the_crops_probabilities(tiny_model, nih_png):
    image = load_image(nih_png)
    for mode, k in (("five-crop", 5), ("ten-crop", 10)):
        pred = Engine(tiny_model, tta=mode, batch_size=3).predict_one(image)
        x = normalise_crops(tta_crops(image.display_u8(), SPEC, mode).pixels, SPEC)
        probs, _ = reference_outputs(x)
        assert len(x) == k
        np.testing.assert_allclose(pred.probabilities, probs.mean(axis=0), atol=1e-5)
        assert pred.tta == mode
        assert pred.to_dict()["tta"] == mode
        assert pred.crop_box.covers(image.shape)
        plain = Engine(tiny_model).predict_one(image)
        assert plain.tta == "none"
        assert plain.cams.shape == (14, 7, 7)
        assert not np.allclose(plain.probabilities, pred.probabilities, atol=1e-4)


def _blob_image(tmp_path) -> Image:
    """Dark 300 x 340 image with a bright square near the top-left corner: in the left half
    only, so a CAM flipped the wrong way would glow on the right."""
    pixels = np.full((300, 340), 20, np.uint8)
    pixels[30:80, 25:75] = 235
    return _image(pixels, tmp_path)


def _brightness_label() -> int:
    """A label whose tiny-model CAM grows with brightness (picked, then checked, from the
    numpy reference on uniform images)."""
    levels = np.linspace(0, 1, 11)
    x = np.stack([normalise(np.full((224, 224), round(v * 255), np.uint8), SPEC)
                  for v in levels])
    cams = reference_outputs(x)[1][:, :, 3, 3]  # [levels, labels]
    rising = np.all(np.diff(cams, axis=0) > 0, axis=0)
    assert rising.any()
    return int(np.argmax(np.where(rising, cams[-1] - cams[0], -np.inf)))


def test_merged_cam_peaks_on_the_bright_blob_and_flips_are_undone(tiny_model, tmp_path):
    image = _blob_image(tmp_path)
    c = _brightness_label()
    engine = Engine(tiny_model)
    five, ten = (engine.predict([image], tta=m)[0] for m in ("five-crop", "ten-crop"))
    for pred in (five, ten):
        heat = cam_on_image(pred.cams[c], pred.crop_box, image.shape)
        row, col = np.unravel_index(np.nanargmax(heat), heat.shape)
        assert 30 - 20 <= row < 80 + 20, (row, col)  # within one merged cell (19 px)
        assert 25 - 20 <= col < 75 + 20, (row, col)
        assert np.nanmean(heat[:, 170:]) < 0.25 < np.nanmean(heat[30:80, 25:75])
    # the tiny model pools 32 px blocks, so a mirrored crop's CAM is the mirror of the crop's
    # CAM: undone right, ten crops merge to exactly the five crops' map and probabilities
    np.testing.assert_allclose(ten.cams, five.cams, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ten.probabilities, five.probabilities, atol=1e-5)


def test_engine_default_is_the_cards_tta_and_can_be_overridden(tmp_path, nih_png):
    pkg = build_tiny_package(tmp_path / "five.onnx", tiny_card(tta="five-crop"))
    image = load_image(nih_png)
    assert Engine(pkg).tta == "five-crop"
    assert Engine(pkg).predict_one(image).tta == "five-crop"
    assert Engine(pkg, tta="none").predict_one(image).tta == "none"
    assert Engine(pkg).predict([image], tta="ten-crop")[0].tta == "ten-crop"
    with pytest.raises(ValueError, match="five-crop"):
        Engine(pkg, tta="twelve-crop")
    bad = build_tiny_package(tmp_path / "bad.onnx", tiny_card(tta="sideways"))
    with pytest.raises(ModelPackageError, match="sideways"):
        Engine(bad)


def test_batch_size_does_not_change_results(tiny_model, nih_sample):
    images = [load_image(p) for p in sorted((nih_sample / "images").glob("*.png"))[:3]]
    a = Engine(tiny_model, batch_size=1).predict(images, tta="ten-crop")
    b = Engine(tiny_model, batch_size=16).predict(images, tta="ten-crop")
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.probabilities, y.probabilities, atol=1e-6)
        np.testing.assert_allclose(x.cams, y.cams, atol=1e-5)


def test_not_analysed_images_keep_their_place(tiny_model, nih_png, rg3_uncr):
    preds = Engine(tiny_model).predict([load_image(rg3_uncr), load_image(nih_png)],
                                       tta="five-crop")
    assert preds[0].status == "not_analysed"
    assert preds[1].tta == "five-crop"
    assert preds[1].probabilities.shape == (14,)


def test_predict_cli_tta_option(tiny_model, nih_png, tmp_path, capsys):
    assert main(["predict", str(nih_png), "--model", str(tiny_model), "--json",
                 "--tta", "ten-crop", "--cam-out", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["tta"] == "ten-crop"
    assert doc["results"][0]["tta"] == "ten-crop"
    assert list(tmp_path.glob("*_cam.png"))
    assert main(["predict", str(nih_png), "--model", str(tiny_model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["tta"] == "none"  # the card's
    with pytest.raises(SystemExit):
        main(["predict", str(nih_png), "--tta", "sideways"])

