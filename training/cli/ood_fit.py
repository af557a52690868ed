"""``chexnet-train ood-fit``: give a model package an out-of-distribution check.

The work is in :mod:`chexnet.training.package.ood_fit` (statistics, threshold, checked write)
and :mod:`chexnet.training.package.ood_graph` (the graph surgery).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chexnet.inference.cli.common import positive_int
from chexnet.inference.errors import ChexnetError

EPILOG = """\
What it does: runs the package's own preprocessing and graph over the reference images (the
model's TRAINING images: the check asks "is this like what the model learnt from?"), pools its
last feature map (the one its CAMs are made from), fits a Gaussian with a shrunk covariance
(OAS, Oracle Approximating Shrinkage, by default) and adds to the graph an output `ood_score`:
the Mahalanobis distance of an image's pooled features to that Gaussian (Lee et al. 2018).
The limit is the --percentile
of the reference images' cross-fitted scores (each scored by statistics fitted without it), so
about (100 - percentile)% of new images like the references are refused. `chexnet predict`,
`chexnet screen` and the viewer then report an image above the limit as not analysed: "does not
look like a chest radiograph this model knows". Probabilities and CAMs are unchanged (checked).

reference images (--images):
  a chexnet-train data set (NIH release folder or label CSV) with --split train: the images of
      that split, chosen by chexnet-train's own split code (give the --seed and fractions the
      model was trained with; the defaults are chexnet-train's)
  a folder: every .png/.jpg/.jpeg/.dcm file in it (recursively)
  a .txt file: one image path per line (relative to the list)

examples:
  chexnet-train ood-fit --model model.onnx --images /data/ChestX-ray14 --split train \\
      --out model-ood.onnx
  chexnet-train ood-fit --model model.onnx --images train_images/ --out model-ood.onnx \\
      --percentile 99
then: python benchmarks/ood_rates.py --model model-ood.onnx --write-card   (measured rates)
"""


def build_parser() -> argparse.ArgumentParser:
    from chexnet.training.package.ood_fit import DEFAULT_FOLDS, DEFAULT_PERCENTILE, ESTIMATORS

    p = argparse.ArgumentParser(
        prog="chexnet-train ood-fit", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Add an out-of-distribution check (Mahalanobis distance on the model's own "
                    "features) to a model package, fitted on its training images.")
    p.add_argument("--model", type=Path, required=True, help="the model package (.onnx)")
    p.add_argument("--images", type=Path, required=True, metavar="DATA_DIR_OR_LIST",
                   help="reference (training) images: see below")
    p.add_argument("--out", type=Path, required=True,
                   help="the new package (.onnx; may be --model itself: written atomically)")
    p.add_argument("--split", metavar="SPLIT",
                   help="with a chexnet-train data set: the split(s) to fit on, e.g. train")
    p.add_argument("--seed", type=int, default=0, help="chexnet-train's split seed (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--percentile", type=float, default=DEFAULT_PERCENTILE,
                   help=f"the limit is this percentile of the reference images' cross-fitted "
                        f"scores (default {DEFAULT_PERCENTILE})")
    p.add_argument("--estimator", default="oas",
                   help=f"covariance estimate: {', '.join(ESTIMATORS)}, or pca-K (the top K "
                        "principal components) (default oas: Oracle Approximating Shrinkage)")
    p.add_argument("--folds", type=positive_int, default=DEFAULT_FOLDS,
                   help=f"cross-fitting folds for the limit (default {DEFAULT_FOLDS})")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--threads", type=positive_int, metavar="N", help="ONNX Runtime CPU threads")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(message)s")
    from chexnet.training.package.ood_fit import fit_ood_package
    from chexnet.training.package.ood_reference import reference_paths

    try:
        paths, described = reference_paths(args.images, args.split, seed=args.seed,
                                           val_fraction=args.val_fraction,
                                           test_fraction=args.test_fraction)
        fit = fit_ood_package(args.model, paths, args.out, reference_data=described,
                              estimator=args.estimator, percentile=args.percentile,
                              folds=args.folds, batch_size=args.batch_size,
                              threads=args.threads)
    except (ValueError, FileNotFoundError, ChexnetError) as err:
        print(f"chexnet-train ood-fit: error: {err}", file=sys.stderr)
        return 2
    ood = fit.card.ood
    for line in fit.skipped:
        print(f"  skipped {line}", file=sys.stderr)
    print(f"wrote {fit.path}: out-of-distribution limit {ood['threshold']:.2f} "
          f"({ood['threshold_rule']}); {fit.n_reference} reference images, "
          f"{len(fit.skipped)} skipped; covariance {ood['covariance']}; probs and cams "
          f"unchanged (max |diff| {max(fit.max_abs_diff_probs, fit.max_abs_diff_cams):.1e})")
    return 0
