"""How often a package's out-of-distribution check refuses each kind of image.

Every image goes through the real path (``load_image`` of a PNG written to a temporary folder,
or of a DICOM; ``Engine.predict``: intended-use gate, preprocessing, graph). The DICOMs that are
not chest radiographs are given without their header metadata, so that the header gate (which
refuses them by modality or body part) does not hide what the model's own check does.

Sets: the NIH sample split as the bundled model was trained (train = the reference images;
val+test = held out, false rejections), blank images, noise, the two photographs of
``sklearn.datasets.load_sample_images`` (crops and rescales, colour and grey), rendered text
pages, non-chest DICOMs of pydicom's test data, simple drawings; informational: rotated and
flipped held-out chest images, and the chest CR of pydicom's test data (another hospital).

    python benchmarks/ood_rates.py [--model resources/models/default.onnx] [--write-card]

``--write-card`` stores the table in the package's card (``ood.rates``; the graph is unchanged).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from chexnet.inference import Engine, preprocess
from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.errors import ChexnetError
from chexnet.inference.io.image import Image, ImageMetadata
from chexnet.inference.io.image_file import load_image
from chexnet.inference.package.card import attach_card
from chexnet.training.package.ood_reference import reference_paths

ROOT = Path(__file__).resolve().parents[1]
NIH = ROOT.parent / "shared" / "data" / "nih14-sample"
OTHER_DICOMS = ("CT_small.dcm", "MR_small.dcm", "MR2_UNCR.dcm", "OT-PAL-8-face.dcm",
                "US1_UNCR.dcm", "emri_small.dcm")
WORDS = ("the", "patient", "was", "seen", "in", "clinic", "today", "and", "reports", "no", "new",
         "symptoms", "since", "last", "visit", "follow", "up", "three", "months", "radiology",
         "department", "report", "page", "of", "findings", "impression", "signed")


def _png(folder: Path, name: str, pixels: np.ndarray) -> Path:
    path = folder / f"{name}.png"
    PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def blank_images(folder: Path) -> list[Path]:
    return [_png(folder, f"blank-{v}-{s}", np.full((s, s), v)) for v in (0, 64, 128, 200, 255)
            for s in (512, 1024)]


def noise_images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(1)
    out = []
    for i, size in enumerate((256, 512, 1024) * 4):
        kind = ("gaussian", "uniform")[i % 2]
        x = (rng.normal(128, 40, (size, size)) if kind == "gaussian"
             else rng.uniform(0, 256, (size, size)))
        if i >= 6:  # colour noise
            x = np.stack([x, rng.permutation(x.ravel()).reshape(x.shape), x[::-1]], -1)
        out.append(_png(folder, f"noise-{kind}-{i}-{size}", x))
    return out


def photo_images(folder: Path, grey: bool) -> list[Path]:
    from sklearn.datasets import load_sample_images

    out = []
    for name, photo in zip(("china", "flower"), load_sample_images().images, strict=True):
        h, w = photo.shape[:2]
        views = {"full": photo, "centre": photo[:, (w - h) // 2:(w + h) // 2],
                 "top-left": photo[:h // 2, :w // 2], "top-right": photo[:h // 2, w // 2:],
                 "bottom-left": photo[h // 2:, :w // 2], "bottom-right": photo[h // 2:, w // 2:]}
        for view, pixels in views.items():
            for scale in (1.0, 0.5):
                im = PILImage.fromarray(pixels)
                im = im.resize((int(im.width * scale), int(im.height * scale)), PILImage.BILINEAR)
                im = im.convert("L") if grey else im
                path = folder / f"photo-{name}-{view}-{scale}-{'grey' if grey else 'rgb'}.png"
                im.save(path)
                out.append(path)
    return out


def text_pages(folder: Path) -> list[Path]:
    rng = np.random.default_rng(2)
    out = []
    for i, size in enumerate((12, 16, 20, 28, 36, 14, 18, 24, 32, 40)):
        page = PILImage.new("L", (850, 1100), 255 if i < 5 else 0)
        draw = ImageDraw.Draw(page)
        font = ImageFont.load_default(size=size)
        for y in range(40, 1060, int(size * 1.5)):
            draw.text((50, y), " ".join(rng.choice(WORDS, 60 // size + 4)), font=font,
                      fill=0 if i < 5 else 255)
        path = folder / f"text-{i}.png"
        page.save(path)
        out.append(path)
    return out


def drawings(folder: Path) -> list[Path]:
    yy, xx = np.mgrid[0:512, 0:512]
    return [_png(folder, "gradient-h", xx / 2), _png(folder, "gradient-v", yy / 2),
            _png(folder, "checker-32", ((xx // 32 + yy // 32) % 2) * 255),
            _png(folder, "checker-8", ((xx // 8 + yy // 8) % 2) * 255),
            _png(folder, "circle", ((xx - 256) ** 2 + (yy - 256) ** 2 < 150 ** 2) * 255),
            _png(folder, "rings", 127 + 127 * np.sin(np.hypot(xx - 256, yy - 256) / 6))]


def headerless(path: Path) -> Image:
    """The DICOM's pixels and display pipeline without its header's modality, body part or
    view, so the intended-use gate lets the model's own check decide."""
    image = load_image(path)
    return dataclasses.replace(image, metadata=ImageMetadata(source="dicom"))


def dicoms(names: tuple[str, ...], loader: Callable[[Path], Image]) -> list[Image]:
    """The pydicom test files that exist and chexnet can read (it refuses palette colour)."""
    from pydicom.data import get_testdata_file

    out = []
    for path in filter(None, map(get_testdata_file, names)):
        try:
            out.append(loader(Path(path)))
        except ChexnetError as err:
            print(f"left out {Path(path).name}: {err}")
    return out


def transformed(paths: list[Path], folder: Path) -> list[Path]:
    out = []
    for path in paths:
        im = PILImage.open(path).convert("L")
        for tag, op in (("rot90", PILImage.Transpose.ROTATE_90),
                        ("rot180", PILImage.Transpose.ROTATE_180),
                        ("hflip", PILImage.Transpose.FLIP_LEFT_RIGHT)):
            out.append(folder / f"{path.stem}-{tag}.png")
            im.transpose(op).save(out[-1])
    return out


def build_sets(folder: Path) -> dict[str, tuple[str, list[Image]]]:
    """Set name -> (kind: "in"/"out"/"info", images)."""
    load = lambda paths: [load_image(p) for p in paths]  # noqa: E731
    sets: dict[str, tuple[str, list[Image]]] = {}
    if (NIH / "images").is_dir():
        held, _ = reference_paths(NIH, "val+test")
        train, _ = reference_paths(NIH, "train")
        sets["NIH held-out (val+test)"] = ("in", load(held))
        sets["NIH train (reference)"] = ("in", load(train))
    sets["blank (uniform grey)"] = ("out", load(blank_images(folder)))
    sets["noise (Gaussian/uniform)"] = ("out", load(noise_images(folder)))
    sets["photographs, colour"] = ("out", load(photo_images(folder, grey=False)))
    sets["photographs, grey"] = ("out", load(photo_images(folder, grey=True)))
    sets["text pages"] = ("out", load(text_pages(folder)))
    sets["extremity CR (RG3_UNCI, no header)"] = ("out", dicoms(("RG3_UNCI.dcm",), headerless))
    sets["CT/MR/US/OT DICOMs (no header)"] = ("out", dicoms(OTHER_DICOMS, headerless))
    sets["drawings (gradients, checkers)"] = ("out", load(drawings(folder)))
    if (NIH / "images").is_dir():
        sets["NIH held-out, rotated/flipped"] = ("info", load(transformed(held[:20], folder)))
    sets["chest CR, other site (RG1_UNCR)"] = ("info", dicoms(("RG1_UNCR.dcm",), load_image))
    return sets


def ood_alone(engine: Engine, images: list[Image]) -> np.ndarray:
    """The graph's ``ood_score`` of each image's centre crop, the intended-use gate bypassed."""
    scores = []
    for i in range(0, len(images), 16):
        x = np.stack([preprocess(im.display_u8(), engine.card.preprocess)[0]
                      for im in images[i:i + 16]])
        scores.append(engine.run(x).ood)
    return np.concatenate(scores)


def measure(model: Path) -> list[dict]:
    """Per set: the OOD check alone (gate bypassed) and the whole pipeline (gate + check)."""
    engine = Engine(model, device="cpu")
    if engine.card.ood_threshold is None:
        raise SystemExit(f"{model}: this package has no out-of-distribution check")
    limit = engine.card.ood_threshold
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, images) in build_sets(Path(tmp)).items():
            scores = ood_alone(engine, images)
            preds = engine.predict(images)
            rejected = int((scores > limit).sum())
            rows.append({"set": name, "kind": kind, "n": len(images), "rejected": rejected,
                         "rate": round(rejected / len(images), 4),
                         "median_score": round(float(np.median(scores)), 1),
                         "not_analysed_pipeline": sum(not p.analysed for p in preds),
                         "refused_by_gate_first": sum(not p.analysed and p.ood_score is None
                                                      for p in preds)})
    return rows


def table(rows: list[dict], threshold: float) -> str:
    lines = [f"Out-of-distribution limit {threshold:.1f} (Mahalanobis distance). "
             "OOD check alone: the graph's score of the centre crop, intended-use gate bypassed; "
             "pipeline: `Engine.predict` (the header/content gate first, then the check).", "",
             "| set | should be | n | OOD check alone: rejected | rate | median score | "
             "pipeline: not analysed (by the gate first) |", "|---|---|---|---|---|---|---|"]
    kinds = {"in": "analysed", "out": "rejected", "info": "(informational)"}
    for r in rows:
        lines.append(f"| {r['set']} | {kinds[r['kind']]} | {r['n']} | {r['rejected']} | "
                     f"{r['rate']:.1%} | {r['median_score']} | {r['not_analysed_pipeline']} "
                     f"({r['refused_by_gate_first']}) |")
    return "\n".join(lines)


def write_rates(model: Path, rows: list[dict]) -> None:
    """Store ``rows`` as the card's ``ood.rates`` (metadata only: the graph is unchanged)."""
    engine = Engine(model, device="cpu")
    proto = onnx.load(str(model))
    ood = dict(engine.card.ood, rates=rows)
    attach_card(proto, dataclasses.replace(engine.card, ood=ood))
    write_atomic(model, proto.SerializeToString())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "resources/models/default.onnx")
    parser.add_argument("--write-card", action="store_true",
                        help="store the measured rates in the package's card (ood.rates)")
    args = parser.parse_args(argv)
    rows = measure(args.model)
    print(table(rows, Engine(args.model, device="cpu").card.ood_threshold))
    if args.write_card:
        write_rates(args.model, rows)
        print(f"\nwrote the rates into {args.model}'s card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
