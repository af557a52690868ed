"""Does every backbone learn? DenseNet-121, ResNet-101 and VGG-16 on the same phantoms.

Each backbone goes through the user's path: ``chexnet-train`` (from scratch: no ImageNet
weights are downloaded) -> ``chexnet export`` (checked against torch) -> ``chexnet eval`` of the
package through the engine on the run's held-out test split. Printed per backbone: test AUROC
per label, the mean, CAM pointing-game hit rate, training seconds and images/s, export seconds.

Same phantoms, splits, seed, epochs and learning rate for all backbones, run one after another
in one process. Phantoms (``chexnet.training.data.phantom``): nodule, mass, effusion, pneumothorax,
cardiomegaly at known places.

Run from the repository root: ``python benchmarks/bench_backbones.py`` (defaults: 400 phantoms
at 128 px, 5 epochs; about 1 to 10 minutes per backbone on 2 CPU cores, VGG-16 the slowest).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _machine

ARCHS = ("densenet121", "resnet101", "vgg16")


def run_backbone(arch: str, labels_csv: Path, work: Path, args) -> dict:
    from chexnet.inference.cli.main import main as chexnet
    from chexnet.training.cli import train as train_cli

    run = work / f"run-{arch}"
    train_args = [str(labels_csv), "--out", str(run), "--arch", arch, "--size", str(args.size),
                  "--epochs", str(args.epochs), "--workers", "0", "--val-fraction", "0.15",
                  "--test-fraction", "0.25", "--seed", str(args.seed), "--lr", str(args.lr),
                  "--batch-size", str(args.batch_size)]
    quiet = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(quiet):
        rc = train_cli.main(train_args)
    train_s = time.perf_counter() - t0
    if rc != 0:
        return {"arch": arch, "error": f"chexnet-train exit {rc}"}
    package = work / f"{arch}.onnx"
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(quiet):
        rc = chexnet(["export", str(run), "--out", str(package)])
    export_s = time.perf_counter() - t0
    if rc != 0:
        return {"arch": arch, "error": f"chexnet export exit {rc}"}
    out = work / f"eval-{arch}"
    with contextlib.redirect_stdout(quiet):
        rc = chexnet(["eval", "--model", str(package), "--data", str(labels_csv.parent),
                      "--labels", str(labels_csv), "--images",
                      str(run / "splits" / "test_list.txt"), "--bbox",
                      str(labels_csv.parent / "bbox.csv"), "--bootstrap", "200",
                      "--out", str(out)])
    if rc != 0:
        return {"arch": arch, "error": f"chexnet eval exit {rc}"}
    m = json.loads((out / "metrics.json").read_text())
    epochs = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return {"arch": arch, "train_s": train_s, "export_s": export_s,
            "images_per_s": sum(e["train_images_per_s"] for e in epochs) / len(epochs),
            "best_epoch": json.loads((run / "run.json").read_text())["best"]["epoch"],
            "n_test": m["n_images"], "mean_auroc": m["mean_auroc"],
            "auroc": {lb: e["auroc"] for lb, e in m["per_class"].items()},
            "auroc_ci": {lb: e["auroc_ci"] for lb, e in m["per_class"].items()},
            "pointing": m.get("pointing_game", {}).get("hit_rate")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default=",".join(ARCHS))
    ap.add_argument("--n", type=int, default=400, help="phantoms (default 400)")
    ap.add_argument("--size", type=int, default=128, help="pixels (default 128)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    import torch

    from chexnet.training.data.phantom import PHANTOM_LABELS, write_phantom_dataset

    _machine.print_facts("bench_backbones: each backbone trained from scratch on phantoms",
                         ["torch", "torchvision", "onnxruntime-gpu"],
                         [("torch threads", str(torch.get_num_threads())),
                          ("phantoms", f"{args.n} at {args.size} px, labels "
                                       f"{', '.join(PHANTOM_LABELS)}"),
                          ("recipe", f"{args.epochs} epochs, Adam lr {args.lr:g}, batch "
                                     f"{args.batch_size}, seed {args.seed}, no pretraining")])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        labels_csv = write_phantom_dataset(work / "ph", args.n, size=args.size, seed=args.seed)
        for arch in args.archs.split(","):
            res = run_backbone(arch.strip(), labels_csv, work, args)
            results.append(res)
            if "error" in res:
                print(f"{arch}: {res['error']}")
                continue
            print(f"{arch}: trained in {res['train_s']:.0f} s ({res['images_per_s']:.1f} "
                  f"images/s, best epoch {res['best_epoch']}), exported in "
                  f"{res['export_s']:.0f} s", flush=True)
    ok = [r for r in results if "error" not in r]
    if ok:
        labels = list(ok[0]["auroc"])
        width = max(len(lb) for lb in [*labels, "pointing game"]) + 2
        print(f"\nheld-out test AUROC ({ok[0]['n_test']} phantoms; 95% CI from 200 "
              "patient-level bootstrap resamples)")
        print("label".ljust(width) + "".join(r["arch"].rjust(22) for r in ok))
        for lb in labels:
            cells = []
            for r in ok:
                auc, ci = r["auroc"][lb], r["auroc_ci"][lb]
                cells.append(("n/a" if auc is None else f"{auc:.2f}" + (
                    f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else "")).rjust(22))
            print(lb.ljust(width) + "".join(cells))
        print("mean".ljust(width) + "".join(f"{r['mean_auroc']:.3f}".rjust(22) for r in ok))
        print("pointing game".ljust(width) + "".join(
            ("n/a" if r["pointing"] is None else f"{r['pointing']:.2f}").rjust(22) for r in ok))
        print("train seconds".ljust(width) + "".join(f"{r['train_s']:.0f}".rjust(22) for r in ok))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
