"""``chexnet-train``: train a CheXNet-style model into a run folder (then ``chexnet export``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chexnet.inference.cli.common import positive_int
from chexnet.training.fit.cam_model import ARCHS
from chexnet.training.fit.config import (
    BALANCE_MODES,
    PRECISIONS,
    UNCERTAIN_POLICIES,
    TrainConfig,
    default_workers,
)
from chexnet.training.fit.run_training import resume_training, start_training

EPILOG = """\
data layouts:
  NIH release folder: images/ (or images_001..012/images/), Data_Entry_2017[_v2020].csv,
      train_val_list.txt, test_list.txt. Test = the official list; validation is split from
      train_val by patient. Without train_val_list.txt, all images are split by patient.
  generic CSV: image path (PNG/JPEG/DICOM, relative to the CSV) + one 0/1 column per label,
      optional patient_id and split (train/val/test) columns; -1 = uncertain (see --uncertain;
      single-label training counts it as not that label).

examples:
  chexnet-train /data/ChestX-ray14 --init imagenet:densenet121-a639ec97.pth --out runs/chexnet
  chexnet-train feedback.csv --init run:runs/chexnet --epochs 3 --lr 1e-4 --out runs/site
  chexnet-train /data/ChestX-ray14 --labels Pneumonia --balance pos_weight
  chexnet-train my_labels.csv --labels abnormal --arch resnet101 --epochs 20
  chexnet-train my_labels.csv --task single-label --arch vgg16_bn --min-per-class 380 \\
      --normal-fraction 0.219
      the hospital CAD paper's single-disease task (vgg16_bn: plain vgg16 does not learn
      from scratch)
  chexnet-train --resume runs/chexnet          continue an interrupted run (Ctrl-C saves one)
  chexnet-train --resume runs/chexnet --threads 4     ... on 4 CPU threads (a shared machine)
  torchrun --nproc_per_node 4 -m chexnet.training.cli.train /data/ChestX-ray14 ...   (multi-GPU)
  then: chexnet export runs/chexnet --out model.onnx

subcommands:
  chexnet-train ood-fit --model PKG --images DATA --split train --out NEW.onnx
      add an out-of-distribution check fitted on the training images (see ood-fit --help)

tasks:
  multi-label (default): one sigmoid per label, BCE (CheXNet). A `normal` (or "No Finding")
      column is the absence of findings, not a label: it is not trained.
  single-label: only images carrying exactly one label, softmax + cross-entropy; a `normal`
      column is a class like any other; without one (NIH), images with no finding ("No
      Finding") become the class "No Finding". The exported package's probabilities sum to 1
      (softmax in the graph); its card says task single-label.
  --labels abnormal: abnormal vs normal (with a `normal` column: not normal; else any finding).
resampling (training split only; validation/test never): --min-per-class N draws each smaller
  class up to N images per epoch; --max-normal M or --normal-fraction F down-samples the
  normal class (a fresh subset each epoch). Seeded: the same seed draws the same epochs.
speed: every epoch logs its training images/s, and a warning when an epoch runs at under a
  third of the first one's (other processes on the CPUs, most often): --threads N limits this
  run's CPU threads. The preprocessed image cache is built once per data set and image size in
  the user's cache folder ($CHEXNET_HOME/cache when CHEXNET_HOME is set); the log says where.
"""


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="chexnet-train", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a CheXNet-style model. Defaults follow the CheXNet paper:\n"
                    "DenseNet-121, 224 px, Adam lr 1e-3, batch 16, lr/10 on plateau,\n"
                    "best validation loss kept.")
    p.add_argument("data", nargs="?", type=Path, help="NIH release folder or generic CSV")
    p.add_argument("--out", type=Path, help="run folder (default runs/<time>-<arch>)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in RUN")
    p.add_argument("--labels", default=d.labels,
                   help="'all' (default), a comma-separated subset, 'Pneumonia', or 'abnormal'")
    p.add_argument("--arch", choices=ARCHS, default=d.arch,
                   help=f"backbone (default {d.arch}); for VGG-16 take vgg16_bn: plain vgg16 "
                        "(no batch norm) does not learn from scratch")
    p.add_argument("--init", metavar="imagenet:PATH|run:RUN_DIR",
                   help="start from a local torchvision ImageNet weights file (never "
                        "downloaded), or fine-tune another run's best.pt (its head is kept "
                        "when the labels are the same)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--workers", type=int, default=None,
                   help=f"data loader processes (default {d.workers}; with --threads N: N - 1, "
                        f"at most {d.workers})")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for torch's computation (default: torch's, one per core); "
                        "lower it when other processes share the CPUs. With --resume it "
                        "replaces the run's")
    p.add_argument("--balance", choices=BALANCE_MODES, default=d.balance,
                   help="positive-class weighting in the loss, or minority oversampling")
    p.add_argument("--uncertain", choices=UNCERTAIN_POLICIES, default=d.uncertain,
                   help="-1 (uncertain) labels in a generic CSV (labels-from-reports --auto): "
                        "ignore = left out of the loss (default), ones = positive, zeros = "
                        "negative (the CheXpert paper's U-Ignore, U-Ones, U-Zeros)")
    p.add_argument("--task", choices=("multi-label", "single-label"), default=d.task,
                   help="multi-label (sigmoid per label, default) or single-label (softmax over "
                        "images carrying exactly one label)")
    p.add_argument("--min-per-class", type=positive_int, metavar="N",
                   help="resample: each class gets at least N training draws per epoch (the "
                        "paper used 380); default off")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--max-normal", type=positive_int, metavar="M",
                      help="resample: at most M normal training images per epoch")
    norm.add_argument("--normal-fraction", type=float, metavar="F",
                      help="resample: normal images make up F of each epoch (the paper: 0.219)")
    p.add_argument("--size", type=int, default=d.size, help="model input size (crop)")
    p.add_argument("--resize", type=int, help="shorter side before the centre crop "
                                              "(default: = --size)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--test-fraction", type=float, default=d.test_fraction,
                   help="used only when the data has no official or explicit test split")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--no-amp", action="store_true", help="train in fp32 on CUDA")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="autocast dtype (default auto: bf16 AMP on CUDA where supported, else "
                        "fp16 with a gradient scaler; fp32 on the CPU)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (the first steps compile: minutes)")
    p.add_argument("--cache-dir", type=Path,
                   help="folder of the preprocessed image cache (default: the user's cache "
                        "folder, e.g. ~/.cache/chexnet/training-images; "
                        "$CHEXNET_HOME/cache/training-images when CHEXNET_HOME is set)")
    p.add_argument("--allow-missing", action="store_true",
                   help="skip missing images, up to 1%% of the list or 10 (listed in the run's "
                        "missing_images.txt)")
    p.add_argument("--max-steps-per-epoch", type=int, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["ood-fit"]:
        from chexnet.training.cli.ood_fit import main as ood_fit

        return ood_fit(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = ["chexnet-train", *argv]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(message)s")
    if args.resume is None and args.data is None:
        parser.error("give the data (NIH folder or CSV), or --resume RUN")
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("chexnet-train: interrupted; the last finished epoch is saved. Continue with "
              "`chexnet-train --resume RUN`.", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"chexnet-train: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError | FileNotFoundError) else 1


def _run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        outcome = resume_training(args.resume, cache_dir=args.cache_dir,
                                  allow_missing=args.allow_missing, threads=args.threads)
    else:
        workers = args.workers if args.workers is not None else default_workers(args.threads)
        config = TrainConfig(
            arch=args.arch, labels=args.labels, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, workers=workers, balance=args.balance,
            init=args.init, size=args.size, resize=args.resize or args.size, seed=args.seed,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction,
            device=args.device, amp=not args.no_amp, max_steps_per_epoch=args.max_steps_per_epoch,
            task=args.task, min_per_class=args.min_per_class, max_normal=args.max_normal,
            normal_fraction=args.normal_fraction, threads=args.threads,
            precision=args.precision, compile=args.compile, uncertain=args.uncertain)
        outcome = start_training(config, args.data, args.out, cache_dir=args.cache_dir,
                                 allow_missing=args.allow_missing,
                                 command_line=args.command_line)
    if outcome.rank == 0:
        summary = outcome.summary
        print(f"chexnet-train: {summary['status']}; best validation loss "
              f"{summary['best']['val_loss']:.4f} at epoch {summary['best']['epoch']}. "
              f"Export with: chexnet export {outcome.run.path} --out model.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
