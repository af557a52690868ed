"""How close imported packages score to their sources (the README's "Imported weights: how
close to the source").

For arnoweng/CheXNet, reproduce-chexnet (its 2018 legacy checkpoint) and torchxrayvision
(densenet121-res224-nih), a seeded model shaped as the source's own is saved as the source saved
its release file, imported by ``chexnet import`` with no flags, and compared on NIH images with
the source's forward on the source's own preprocessing and test-time augmentation
(tests/training/package/fidelity.py; the test suite runs the same on 2-4 images). Not a timing
benchmark: it prints accuracy figures.

    python benchmarks/import_fidelity.py [--images 20] [--sources arnoweng,torchxrayvision]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._machine import print_facts  # noqa: E402
from tests.training.package.fidelity import build_sources, import_all, measure  # noqa: E402

NIH = ROOT.parent / "shared" / "data" / "nih14-sample" / "images"
SOURCES = ("arnoweng", "reproduce-chexnet", "torchxrayvision")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20, help="NIH images per source (default 20)")
    ap.add_argument("--sources", default=",".join(SOURCES), help="comma-separated subset")
    ap.add_argument("--nih", type=Path, default=NIH, help="folder of NIH PNGs")
    args = ap.parse_args(argv)
    which = tuple(s for s in args.sources.split(",") if s)
    images = sorted(args.nih.glob("*.png"))
    if not images:
        ap.error(f"no PNG images in {args.nih}")
    step = max(1, len(images) // args.images)
    images = images[::step][: args.images]
    print_facts("import fidelity", ["torch", "torchvision", "onnxruntime", "onnxruntime-gpu",
                                     "scikit-image"])
    with tempfile.TemporaryDirectory() as tmp:
        sources = build_sources(Path(tmp), images[:2], which)
        import_all(sources, Path(tmp))
        print("\n| source | images | conversion max abs dp | end-to-end max abs dp | "
              "CAM max rel. diff | TTA | preprocessing |")
        print("|---|---|---|---|---|---|---|")
        for key in which:
            f = measure(sources[key], images)
            print(f"| {f.source} | {f.n_images} | {f.conversion:.1e} | {f.end_to_end:.1e} | "
                  f"{f.cam_conversion:.1e} | {f.tta} | {f.preprocessing} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
