"""``chexnet import SRC --format FORMAT --out model.onnx``: public weights -> a checked package.

Registered as a ``chexnet`` subcommand through the ``chexnet.commands`` entry point; torch is
imported only when the command runs. The conversion lives in
:mod:`chexnet.training.package.importers`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chexnet.inference.cli.common import UsageError
from chexnet.training.package.formats import FORMATS, TORCHVISION_ARCHS
from chexnet.training.package.sources.xrv_releases import RELEASES

EPILOG = """\
formats:
  arnoweng           arnoweng/CheXNet's model.pth.tar ({"state_dict": ...}, DataParallel
                     DenseNet-121, 14 ChestX-ray14 labels); scored as the source does:
                     Resize 256 + TenCrop 224, averaged (card tta: ten-crop)
  reproduce-chexnet  reproduce-chexnet's `checkpoint` (a whole pickled torchvision DenseNet-121,
                     legacy or zip format; Resize 224 + CenterCrop 224, no TTA)
  torchxrayvision    a torchxrayvision DenseNet-121 release file (a whole pickled model) or
                     state dict: 1 channel in [-1024, 1024], centred square crop, skimage's
                     anti-aliased resize to 224. Labels and op_threshs come from the release
                     (--variant, or found from the file name); outputs the release did not
                     train are dropped. --labels (18 entries, empty = unused output) overrides
  torchvision        a plain torchvision densenet121/resnet101 state dict (--arch) whose last
                     layer has one output per --labels entry

Files are only read with restricted unpicklers (torch.load(weights_only=True) for zip files,
chexnet's own for torch's legacy format): a file that needs unpickling anything beyond tensors
and layer classes (read as inert stand-ins) is refused (unpickling can run arbitrary code).
The package is reloaded in ONNX Runtime and compared with torch; import fails unless
max |probs difference| <= 1e-4. Packages are marked demo unless --no-demo.

examples:
  chexnet import model.pth.tar --format arnoweng --out chexnet-arnoweng.onnx
  chexnet import nih-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt \\
      --format torchxrayvision --out xrv-nih.onnx
  chexnet import weights.pt --format torchxrayvision --variant densenet121-res224-chex \\
      --out xrv-chex.onnx
  chexnet import weights.pt --format torchvision --arch resnet101 --labels A,B,C --out m.onnx
"""


def _torchvision_arch(text: str) -> str:
    if text in TORCHVISION_ARCHS:
        return text
    if text.startswith("vgg16"):
        raise argparse.ArgumentTypeError(
            f"{text} cannot be imported: torchvision's VGG-16 classifier is a 3-layer MLP on "
            "flattened 7x7 features, but class activation maps need global average pooling "
            "followed by a single linear layer; train one with chexnet-train --arch vgg16_bn")
    raise argparse.ArgumentTypeError(f"{text!r}: choose {' or '.join(TORCHVISION_ARCHS)}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="convert public CheXNet weights into a model package",
                       description="Convert public CheXNet-style weights (arnoweng, "
                                   "reproduce-chexnet, torchxrayvision, torchvision) into a "
                                   "model package checked against torch.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, metavar="SRC", help="the weights file")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                   help="layout of SRC (see below)")
    p.add_argument("--out", type=Path, required=True, help="output .onnx path")
    p.add_argument("--labels", default=None,
                   help="comma-separated label names in output order (required for "
                        "torchvision; 18 entries, empty allowed, for torchxrayvision)")
    p.add_argument("--arch", default="densenet121", type=_torchvision_arch,
                   metavar="{" + ",".join(TORCHVISION_ARCHS) + "}",
                   help="backbone for --format torchvision (default densenet121). VGG-16 "
                        "cannot be imported: its classifier is not the global average pooling "
                        "+ linear head that class activation maps need")
    p.add_argument("--variant", choices=tuple(RELEASES), metavar="WEIGHTS",
                   help="torchxrayvision release (its weights name: " + ", ".join(RELEASES)
                   + "); default: found from the file name")
    p.add_argument("--name", help="package name (default imported-<format>)")
    p.add_argument("--version", default="imported", help="package version (default imported)")
    p.add_argument("--description", default="", help="free text prepended to the card's")
    p.add_argument("--no-demo", action="store_true",
                   help="mark the package as not a demo (the default marks it demo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401  (only to name what is missing, before any work)
    except ImportError as err:
        raise UsageError("`chexnet import` needs torch: pip install 'chexnet[train]'") from err
    # Imported here, not at the top: `chexnet` registers this command on every run, and torch
    # (which the conversion imports) must load only when the import runs.
    from chexnet.training.evaluation.markdown import plural
    from chexnet.training.package.export import ExportMismatchError
    from chexnet.training.package.importers import ImportOptions, import_weights

    labels = None
    if args.labels is not None:
        labels = tuple(s.strip() for s in args.labels.split(","))
    opts = ImportOptions(fmt=args.fmt, labels=labels, arch=args.arch, name=args.name,
                         version=args.version, demo=not args.no_demo,
                         description=args.description, variant=args.variant)
    try:
        report, card = import_weights(args.source, args.out, opts)
    except (FileNotFoundError, ValueError, ExportMismatchError) as err:
        raise UsageError(str(err)) from err
    print(f"wrote {report.path}: {card.name} {card.version} from {args.source.name} "
          f"({args.fmt}), {plural(len(card.labels), 'label')}, tta {card.tta}, demo={card.demo}; "
          "ONNX Runtime vs torch: "
          f"max |probs diff| {report.max_abs_diff_probs:.1e} (limit 1e-4)")
    return 0
