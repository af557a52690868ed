"""``chexnet-train``: train a CheXNet-style model into a run folder (then ``chexnet export``)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

EPILOG = """\
data layouts:
  NIH release folder: images/ (or images_001..012/images/), Data_Entry_2017[_v2020].csv,
      train_val_list.txt, test_list.txt. Test = the official list; validation is split from
      train_val by patient. Without train_val_list.txt, all images are split by patient.
  generic CSV: image path (PNG/JPEG/DICOM, relative to the CSV) + one 0/1 column per label,
      optional patient_id and split (train/val/test) columns.

examples:
  chexnet-train /data/ChestX-ray14 --init imagenet:densenet121-a639ec97.pth --out runs/chexnet
  chexnet-train /data/ChestX-ray14 --labels Pneumonia --balance pos_weight
  chexnet-train my_labels.csv --labels abnormal --arch resnet101 --epochs 20
  chexnet-train my_labels.csv --task single-label --arch vgg16 --min-per-class 380 \
      --normal-fraction 0.219        the hospital CAD paper's single-disease task
  chexnet-train --resume runs/chexnet          continue an interrupted run (Ctrl-C saves one)
  torchrun --nproc_per_node 4 -m chexnet.training.cli.train /data/ChestX-ray14 ...   (multi-GPU)
  then: chexnet export runs/chexnet --out model.onnx

tasks:
  multi-label (default): one sigmoid per label, BCE (CheXNet).
  single-label: only images carrying exactly one label, softmax + cross-entropy; a `normal`
      column is a class like any other; without one (NIH), images with no finding ("No
      Finding") become the class "No Finding". The exported package's probabilities sum to 1
      (softmax in the graph); its card says task single-label.
  --labels abnormal: abnormal vs normal (with a `normal` column: not normal; else any finding).
resampling (training split only; validation/test never): --min-per-class N draws each smaller
  class up to N images per epoch; --max-normal M or --normal-fraction F down-samples the
  normal class (a fresh subset each epoch). Seeded: the same seed draws the same epochs.
"""


def build_parser() -> argparse.ArgumentParser:
    from chexnet.training.fit.cam_model import ARCHS
    from chexnet.training.fit.train import BALANCE_MODES, TrainConfig

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
    p.add_argument("--arch", choices=ARCHS, default=d.arch)
    p.add_argument("--init", metavar="imagenet:PATH",
                   help="start from a local torchvision ImageNet weights file (never downloaded)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--workers", type=int, default=d.workers, help="data loader processes")
    p.add_argument("--balance", choices=BALANCE_MODES, default=d.balance,
                   help="positive-class weighting in the loss, or minority oversampling")
    p.add_argument("--task", choices=("multi-label", "single-label"), default=d.task,
                   help="multi-label (sigmoid per label, default) or single-label (softmax over "
                        "images carrying exactly one label)")
    p.add_argument("--min-per-class", type=_positive, metavar="N",
                   help="resample: each class gets at least N training draws per epoch (the "
                        "paper used 380); default off")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--max-normal", type=_positive, metavar="M",
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
    p.add_argument("--cache-dir", type=Path, help="preprocessed image cache (default: "
                                                  "<data folder>/.chexnet-cache)")
    p.add_argument("--allow-missing", action="store_true",
                   help="skip missing images, up to 1%% of the list or 10 (listed in the run's "
                        "missing_images.txt)")
    p.add_argument("--max-steps-per-epoch", type=int, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
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
    from chexnet.training.data.cache import build_cache
    from chexnet.training.data.dataset import load_dataset
    from chexnet.training.fit.run_folder import RunFolder
    from chexnet.training.fit.train import TrainConfig, check_config, init_distributed, train

    rank, world = init_distributed()
    if world > 1 and args.resume is None and args.out is None:
        raise ValueError("under torchrun, give --out (every process must use the same folder)")
    if args.resume is not None:
        run = RunFolder(args.resume)
        if not (run.path / "run.json").is_file():
            raise FileNotFoundError(f"{run.path}: not a run folder (no run.json)")
        info = run.info
        config = TrainConfig(**info["config"])
        data = Path(info["data_path"])
    else:
        config = TrainConfig(
            arch=args.arch, labels=args.labels, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, workers=args.workers, balance=args.balance,
            init=args.init, size=args.size, resize=args.resize or args.size, seed=args.seed,
            val_fraction=args.val_fraction, test_fraction=args.test_fraction,
            device=args.device, amp=not args.no_amp, max_steps_per_epoch=args.max_steps_per_epoch,
            task=args.task, min_per_class=args.min_per_class, max_normal=args.max_normal,
            normal_fraction=args.normal_fraction)
        check_config(config)
        if config.init and not config.init.startswith("imagenet:"):
            raise ValueError(f"--init {config.init}: expected imagenet:PATH")
        if config.init:  # fail before any data work, with the message on where to put it
            from chexnet.training.fit.cam_model import check_init_file

            check_init_file(config.arch, Path(config.init.split(":", 1)[1]))
        data = args.data
        out = args.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.arch}"
        if rank == 0:
            if (out / "run.json").is_file():
                raise ValueError(f"{out}: already holds a run; use --resume {out} or another "
                                 "--out")
            out.mkdir(parents=True, exist_ok=True)
    run_dir = args.resume or out
    splits = load_dataset(data, labels=config.labels, val_fraction=config.val_fraction,
                          test_fraction=config.test_fraction, seed=config.seed,
                          allow_missing=getattr(args, "allow_missing", False),
                          report_dir=run_dir, task=config.task)
    cache_dir = args.cache_dir or ((data if data.is_dir() else data.parent) / ".chexnet-cache")
    paths = [Path(p) for p in splits.table.paths]
    # Under torchrun, process 0 writes the run folder and builds the cache; the others wait,
    # then open both.
    if rank == 0 and args.resume is None:
        RunFolder.create(out, config.to_dict(), splits, args.command_line,
                         data_path=Path(data))
    if rank == 0:
        build_cache(paths, config.spec(), cache_dir, workers=config.workers, report_dir=run_dir)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    run = RunFolder(run_dir)
    cache = build_cache(paths, config.spec(), cache_dir, workers=config.workers,
                        report_dir=run_dir)
    summary = train(config, splits, cache, run)
    if rank == 0:
        print(f"chexnet-train: {summary['status']}; best validation loss "
              f"{summary['best']['val_loss']:.4f} at epoch {summary['best']['epoch']}. "
              f"Export with: chexnet export {run.path} --out model.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
