"""Synthetic chest phantoms with planted, boxed lesions, to prove that the trainer learns and that
its CAMs point at the right place. numpy + Pillow only.

An 8-bit frontal "radiograph": air, a soft-tissue torso, two dark lung fields with vessel-like
texture, bright mediastinum and heart, curved ribs, a smooth exposure gradient, pixel noise;
anatomy jittered per image. Geometry is in unit coordinates, so 64 to 512 pixels look alike.
Lesions (one label each, boxed in pixels): ``nodule`` (small round opacity in a lung),
``mass`` (larger, lobulated), ``effusion`` (fluid filling one lung's base, meniscus rising
laterally), ``pneumothorax`` (a darker band without lung texture along one lung's outer edge,
with a thin pleural line), ``cardiomegaly`` (heart > ~55% of the thorax; boxed as the heart).

``python -m chexnet.training.data.phantom OUT --n 400 --size 128 --seed 0`` writes ``OUT/images/``,
``OUT/labels.csv`` (generic layout, ``labels.py``), ``OUT/bbox.csv`` (NIH BBox_List format).
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from chexnet.training.data.labels import read_label_file

PHANTOM_LABELS = ("nodule", "mass", "effusion", "pneumothorax", "cardiomegaly")
MAX_LESIONS = 2
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h]"
_TEXTURE_GRID = 14  # vessels: level lines of a field on a fixed grid, alike at every size


@dataclass
class Phantom:
    image: np.ndarray  # uint8 [H, W]
    labels: dict[str, int]
    boxes: list[tuple[str, float, float, float, float]]  # (label, x, y, w, h) in pixels
    lung_mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # bool [H, W]


def _soft(t: np.ndarray, edge: float) -> np.ndarray:
    """~1 where t < 1, ~0 where t > 1, a smooth step of width ``edge`` (no overflow)."""
    return 0.5 * (1.0 + np.tanh((1.0 - t) / (2.0 * edge)))


def _ell(x, y, cx, cy, ax, ay):
    """Normalised elliptic radius: 1 on the ellipse's edge."""
    return np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(grid.astype(np.float32)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float64)


def _anatomy(g: np.random.Generator, rng: np.random.Generator) -> dict:
    """Base geometry from ``g`` (a patient), small per-image jitter from ``rng``."""
    s = g.uniform(0.92, 1.06) * rng.uniform(0.98, 1.02)
    sx, sy = s * g.uniform(0.95, 1.05), s * g.uniform(0.95, 1.05)
    cx, cy = 0.5 + g.normal(0, 0.015, 2) + rng.normal(0, 0.01, 2)
    a = {"cx": cx, "cy": cy, "sx": sx, "sy": sy, "ctr": g.uniform(0.38, 0.47),
         "hay": 0.125 * sy * g.uniform(0.9, 1.1), "rib_phase": rng.uniform(0, 1),
         "rib_curve": g.uniform(0.8, 1.2), "lungs": []}
    for side in (-1, 1):
        a["lungs"].append({"side": side, "cx": cx + side * 0.165 * sx * g.uniform(0.97, 1.03),
                           "cy": cy - 0.04 * sy, "ax": 0.125 * sx * g.uniform(0.95, 1.05),
                           "ay": 0.29 * sy * g.uniform(0.95, 1.05)})
    left, right = a["lungs"]
    a["thorax_w"] = (right["cx"] + right["ax"]) - (left["cx"] - left["ax"])
    a["hcx"], a["hcy"] = cx + 0.03 * sx, cy + 0.15 * sy
    return a


def _fluid_line(lung: dict, frac: float, menisc: float, x):
    """Effusion surface: ``frac`` of the lung height up from its base, rising laterally."""
    lat = np.clip((x - lung["cx"]) * lung["side"] / lung["ax"], -1, 1)
    return lung["cy"] + lung["ay"] * (1 - 2 * frac) - menisc * ((lat + 1) / 2) ** 2


def _collapsed(lung: dict, depth: float) -> tuple[float, float, float, float]:
    """The lung edge displaced medially and down by a pneumothorax of relative ``depth``."""
    return (lung["cx"] - lung["side"] * depth * lung["ax"] / 2,
            lung["cy"] + depth * 0.25 * lung["ay"],
            lung["ax"] * (1 - depth / 2), lung["ay"] * (1 - depth * 0.25))


def _place(rng: np.random.Generator, a: dict, lesions: list[dict], radius: float):
    """A centre whose ``radius`` disc lies in aerated lung, clear of heart and other lesions."""
    hax = a["ctr_used"] * a["thorax_w"] / 2
    for _ in range(200):
        lung = a["lungs"][rng.integers(2)]
        r, t = np.sqrt(rng.uniform(0, 1)) * 0.85, rng.uniform(0, 2 * np.pi)
        x, y = lung["cx"] + r * lung["ax"] * np.cos(t), lung["cy"] + r * lung["ay"] * np.sin(t)
        if (_ell(x, y, lung["cx"], lung["cy"], lung["ax"], lung["ay"]) + radius / lung["ax"] > 0.9
                or _ell(x, y, a["hcx"], a["hcy"], hax, a["hay"]) < 1 + 1.5 * radius / a["hay"]
                or abs(x - a["cx"]) < 0.07 * a["sx"] + radius):  # mediastinum
            continue
        ok = True
        for les in lesions:
            if les["kind"] == "effusion" and les["lung"] is lung:
                ok &= y + 1.5 * radius < _fluid_line(lung, les["frac"], les["menisc"], x)
            elif les["kind"] == "pneumothorax" and les["lung"] is lung:
                ok &= _ell(x, y, *_collapsed(lung, les["depth"])) + 1.5 * radius / lung["ax"] < 1
            elif "r" in les:
                ok &= np.hypot(x - les["x"], y - les["y"]) > 1.3 * (radius + les["r"])
        if ok:
            return x, y
    return None


def _sample(rng: np.random.Generator, labels: tuple[str, ...], p_lesion: float,
            anatomy_seed: int | None) -> tuple[dict, list[dict], int]:
    g = rng if anatomy_seed is None else np.random.default_rng(anatomy_seed)
    a = _anatomy(g, rng)
    chosen = [k for k in labels if rng.random() < p_lesion]
    if len(chosen) > MAX_LESIONS:
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), MAX_LESIONS, replace=False))]
    a["ctr_big"] = rng.uniform(0.57, 0.66)
    a["ctr_used"] = a["ctr_big"] if "cardiomegaly" in chosen else a["ctr"]
    lesions: list[dict] = []
    free_sides = [0, 1]  # effusion and pneumothorax go to different lungs
    for kind in ("cardiomegaly", "effusion", "pneumothorax", "mass", "nodule"):
        if kind not in chosen:
            continue
        if kind == "cardiomegaly":
            lesions.append({"kind": kind})
        elif kind in ("effusion", "pneumothorax"):
            lung = a["lungs"][free_sides.pop(rng.integers(len(free_sides)))]
            lesions.append({"kind": kind, "lung": lung, **(
                {"frac": rng.uniform(0.22, 0.42), "menisc": rng.uniform(0.06, 0.11) * a["sy"],
                 "amp": rng.uniform(0.17, 0.24)} if kind == "effusion" else
                {"depth": rng.uniform(0.3, 0.55), "amp": rng.uniform(0.04, 0.07)})})
        else:
            radius = rng.uniform(0.05, 0.075) if kind == "mass" else rng.uniform(0.02, 0.032)
            centre = _place(rng, a, lesions, radius * 1.2)
            if centre is None:  # no room left (rare): the image simply lacks this lesion
                continue
            lesions.append({"kind": kind, "x": centre[0], "y": centre[1], "r": radius,
                            "amp": rng.uniform(0.09, 0.15) if kind == "nodule"
                            else rng.uniform(0.10, 0.16),
                            "wobble": rng.uniform(0.0, 0.12, 4), "phase": rng.uniform(0, 6.3, 4)})
    return a, lesions, int(rng.integers(2**63 - 1))


def _render(a: dict, lesions: list[dict], noise_seed: int, size: int, with_lesions: bool):
    nz = np.random.default_rng(noise_seed)  # the same draws with or without lesions
    fine, coarse, low = (_upsample(nz.normal(size=(k, k)), size) for k in (_TEXTURE_GRID, 8, 4))
    pixel = nz.normal(size=(size, size))
    u = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(u, u)
    cx, sx, sy = a["cx"], a["sx"], a["sy"]
    bx, by = np.abs(x - cx) / (0.44 * sx), np.abs(y - a["cy"] - 0.1 * sy) / (0.62 * sy)
    body = _soft((bx**2.5 + by**2.5) ** 0.4, 0.02)  # a squarish torso
    lung_side = [_soft(_ell(x, y, lu["cx"], lu["cy"], lu["ax"], lu["ay"]), 0.04)
                 for lu in a["lungs"]]
    ctr = a["ctr_used"] if with_lesions else a["ctr"]
    heart = _soft(_ell(x, y, a["hcx"], a["hcy"], ctr * a["thorax_w"] / 2, a["hay"]), 0.04)
    medi = _soft(np.abs(x - cx) / (0.05 * sx), 0.15) * (y < a["hcy"])
    spine = _soft(np.abs(x - cx) / (0.028 * sx), 0.2)
    lung = np.clip(lung_side[0] + lung_side[1], 0, 1) * (1 - heart) * (1 - 0.9 * medi)
    d = np.abs(x - cx) / sx
    top = a["lungs"][0]["cy"] - a["lungs"][0]["ay"] - 0.04 * sy + a["rib_phase"] * 0.062 * sy
    arc = a["rib_curve"] * (0.9 * d**2 + 0.12 * d) * sy  # posterior ribs fall laterally
    ribs = sum(np.exp(-(((y - top - k * 0.062 * sy - arc) / (0.012 * sy)) ** 2))
               for k in range(-1, 11))
    thorax = _soft(_ell(x, y, cx, a["cy"] - 0.04 * sy, 0.33 * sx, 0.34 * sy), 0.05)
    vessels = np.exp(-((fine / 0.3) ** 2))  # thin branching curves, not blobs
    texture = (vessels + 0.3 * coarse) * (1.0 - 0.5 * d / 0.3)
    tex_keep = np.ones_like(x)
    img = 0.05 + 0.42 * body + (0.08 * spine + 0.1 * medi) * body + 0.07 * heart
    img += -0.27 * lung + 0.06 * ribs * thorax * body
    masks: dict[str, np.ndarray] = {}
    for les in lesions if with_lesions else []:
        kind = les["kind"]
        if kind == "effusion":
            lu = les["lung"]
            m = lung_side[a["lungs"].index(lu)] * _soft(
                (_fluid_line(lu, les["frac"], les["menisc"], x) - y) / 0.02 + 1, 0.4)
            img += les["amp"] * m * (1 - 0.6 * heart)
            tex_keep *= 1 - m
        elif kind == "pneumothorax":
            lu = les["lung"]
            cxc, cyc, axc, ayc = _collapsed(lu, les["depth"])
            rc = _ell(x, y, cxc, cyc, axc, ayc)
            inside = _soft(_ell(x, y, lu["cx"], lu["cy"], lu["ax"], lu["ay"]), 0.02)
            m = inside * (1 - _soft(rc, 0.01))
            line = np.exp(-(((rc - 1) * axc / max(0.004, 0.6 / size)) ** 2)) * inside
            img += -les["amp"] * m + 0.09 * line * (1 - heart)
            tex_keep *= 1 - m
        elif kind in ("nodule", "mass"):
            ang = np.arctan2(y - les["y"], x - les["x"])
            rad = les["r"] * np.ones_like(x)
            if kind == "mass":
                for i, k in enumerate((2, 3, 5, 7)):
                    rad *= 1 + les["wobble"][i] * np.cos(k * ang + les["phase"][i])
            m = _soft(np.hypot(x - les["x"], y - les["y"]) / rad, 0.1)
            img += les["amp"] * m * (1 + 0.1 * coarse)
            tex_keep *= 1 - 0.5 * m
        else:  # cardiomegaly: the wider heart above
            m = heart
        masks[kind] = m
    img += 0.08 * texture * lung * tex_keep + 0.03 * low + 0.015 * pixel + 0.04 * (y - 0.5)
    image = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    boxes = []
    for kind, m in masks.items():
        ys, xs = np.nonzero(m > (0.5 if kind == "cardiomegaly" else 0.1))
        if len(xs):
            boxes.append((kind, float(xs.min()), float(ys.min()),
                          float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())))
    lung_mask = lung > 0.5  # the visible lung fields (behind neither heart nor mediastinum)
    return image, boxes, lung_mask


def _check(size: int, labels) -> tuple[str, ...]:
    unknown = [lb for lb in labels if lb not in PHANTOM_LABELS]
    if unknown or not labels:
        raise ValueError(f"phantom labels must be some of {PHANTOM_LABELS}, not {unknown}")
    if not 32 <= size <= 2048:
        raise ValueError(f"size {size} outside 32..2048")
    return tuple(labels)


def make_phantom(rng: np.random.Generator, size: int = 128, labels=PHANTOM_LABELS,
                 p_lesion: float = 0.3, *, lesions: bool = True,
                 anatomy_seed: int | None = None) -> Phantom:
    """One phantom. ``lesions=False`` renders the same draw (anatomy, noise) without its lesions
    (labels all 0, no boxes). ``anatomy_seed`` fixes the base body, as for one patient."""
    labels = _check(size, labels)
    a, planted, noise_seed = _sample(rng, labels, p_lesion, anatomy_seed)
    image, boxes, lung_mask = _render(a, planted, noise_seed, size, lesions)
    present = {b[0] for b in boxes}  # a lesion too small to leave a box is not labelled
    return Phantom(image, {lb: int(lb in present) for lb in labels}, boxes, lung_mask)


def iter_phantoms(n: int, *, size: int = 128, seed: int = 0, labels=PHANTOM_LABELS,
                  p_lesion: float = 0.3, images_per_patient: int = 1):
    """Yield ``(file name, patient id, Phantom)``: exactly what ``write_phantom_dataset`` writes.
    Images of one patient share the base anatomy; lesions, noise and jitter differ."""
    rng, per = np.random.default_rng(seed), max(1, images_per_patient)
    patients = rng.integers(2**63 - 1, size=-(-n // per))  # one anatomy seed per patient
    for i in range(n):
        yield (f"phantom_{i:05d}.png", f"P{i // per:05d}",
               make_phantom(rng, size, labels, p_lesion, anatomy_seed=int(patients[i // per])))


def write_phantom_dataset(out_dir: Path, n: int, *, size: int = 128, seed: int = 0,
                          labels=PHANTOM_LABELS, p_lesion: float = 0.3,
                          images_per_patient: int = 1) -> Path:
    """Write ``n`` phantoms: ``images/phantom_NNNNN.png``, ``labels.csv``, ``bbox.csv``."""
    out_dir, labels = Path(out_dir), _check(size, tuple(labels))
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows, box_rows = [], []
    for name, patient, ph in iter_phantoms(n, size=size, seed=seed, labels=labels,
                                           p_lesion=p_lesion,
                                           images_per_patient=images_per_patient):
        Image.fromarray(ph.image).save(out_dir / "images" / name)
        rows.append([f"images/{name}", patient, *(ph.labels[lb] for lb in labels)])
        box_rows += [[name, lb, *(f"{v:g}" for v in box)] for lb, *box in ph.boxes]
    with open(out_dir / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "patient_id", *labels])
        writer.writerows(rows)
    with open(out_dir / "bbox.csv", "w", newline="", encoding="utf-8") as fh:
        fh.write(BBOX_HEADER + "\r\n")  # written as is, like NIH's: its commas are not quoted
        csv.writer(fh, lineterminator="\r\n").writerows(box_rows)
    return out_dir / "labels.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chexnet.training.data.phantom",
                                 description="Write a synthetic chest-phantom data set.")
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--n", type=int, default=400, help="number of images (400)")
    ap.add_argument("--size", type=int, default=128, help="image side in pixels (128)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--p-lesion", type=float, default=0.3, help="chance of each lesion (0.3)")
    ap.add_argument("--images-per-patient", type=int, default=1)
    ap.add_argument("--labels", default=",".join(PHANTOM_LABELS), help="comma-separated subset")
    args = ap.parse_args(argv)
    labels = tuple(s.strip() for s in args.labels.split(",") if s.strip())
    try:
        path = write_phantom_dataset(args.out, args.n, size=args.size, seed=args.seed,
                                     labels=labels, p_lesion=args.p_lesion,
                                     images_per_patient=args.images_per_patient)
    except ValueError as exc:
        ap.error(str(exc))
    table = read_label_file(path)
    counts = ", ".join(f"{lb} {int(c)}" for lb, c in zip(labels, table.y.sum(0), strict=True))
    sys.stdout.write(f"wrote {len(table)} phantoms to {path} (positives: {counts})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
