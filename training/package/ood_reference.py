"""Which images an out-of-distribution check is fitted on: the model's training images.

Given a data set that ``chexnet-train`` reads (an NIH release folder or a label CSV) and a
split, the images are chosen by the very code that split them for training
(:func:`chexnet.training.data.dataset.load_dataset`, same seed and fractions), so the bundled
model's check is fitted on exactly its 294 training images and its validation and test images
stay held out. A plain folder or a list file (one path per line) is taken whole.
"""

from __future__ import annotations

from pathlib import Path

from chexnet.training.data.dataset import SPLIT_NAMES, load_dataset

#: Image files taken from a plain folder (others, and hidden files, are left out).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".dcm", ".dicom"})


def reference_paths(source: str | Path, split: str | None = None, *, seed: int = 0,
                    val_fraction: float = 0.1, test_fraction: float = 0.2
                    ) -> tuple[list[Path], str]:
    """The reference images and a one-line description of them for the card.

    ``split`` (train/val/test, or several joined by "+"): ``source`` is a data set, split as
    ``chexnet-train`` splits it. Without it: a folder (its image files, recursively) or a
    ``.txt`` list (paths relative to the list)."""
    source = Path(source)
    if split is not None:
        names = split.split("+")
        unknown = [s for s in names if s not in SPLIT_NAMES]
        if unknown:
            raise ValueError(f"--split must name {', '.join(SPLIT_NAMES)} (joined by +), "
                             f"not {split!r}")
        splits = load_dataset(source, seed=seed, val_fraction=val_fraction,
                              test_fraction=test_fraction)
        rows = [i for s in names for i in getattr(splits, s)]
        paths = [Path(splits.table.paths[i]) for i in rows]
        return paths, (f"{source.name}: the {split} split ({len(paths)} images; split rule "
                       f"{splits.description})")
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.is_file()
                       and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        what = f"{source.name}: every image file in the folder ({len(paths)})"
    elif source.suffix.lower() == ".txt" and source.is_file():
        lines = [ln.strip() for ln in source.read_text(encoding="utf-8").splitlines()]
        paths = [source.parent / ln for ln in lines if ln and not ln.startswith("#")]
        what = f"{source.name}: the {len(paths)} images it lists"
    else:
        raise ValueError(f"{source}: give a folder of images, a .txt list of image paths, or a "
                         "chexnet-train data set (NIH folder or label CSV) with --split train")
    if not paths:
        raise ValueError(f"{source}: no images found")
    return paths, what
