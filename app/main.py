"""``chexnet-viewer``: open chest X-ray studies, read the model's findings and heat maps.

Also the headless path used for documentation and tests: ``--screenshot OUT.png`` opens the
input, runs the model, shows the top finding's heat map, saves the window and exits (works
with ``QT_QPA_PLATFORM=offscreen``). Qt and the engine are imported inside the functions that
need them, so ``--help`` and usage errors answer without loading either.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EPILOG = """\
examples:
  chexnet-viewer                               start empty; File > Open, or drop files on it
  chexnet-viewer study.dcm                     one DICOM (or PNG/JPEG)
  chexnet-viewer /data/study_folder            a folder is a study: series and thumbnails
  chexnet-viewer --sample                      the bundled sample: a real CR chest PA (DICOM)
  chexnet-viewer cxr.png --model my-model      another model package (path or registered name)
  QT_QPA_PLATFORM=offscreen chexnet-viewer --sample --screenshot view.png
                                               render headless and save the window

keys: 1-5 window presets, right-drag window/level, wheel or +/- zoom, Z actual pixels/fit,
space fit, I invert, H/V flip, R rotate, C heat map on/off, Left/Right image, Up/Down series.
Settings (last folder, recent files, overlay colour map/opacity/threshold, window preset,
model) persist between runs.
"""

SCREENSHOT_TIMEOUT_S = 300


def build_parser() -> argparse.ArgumentParser:
    from chexnet.inference.scoring.engine import DEVICES
    p = argparse.ArgumentParser(
        prog="chexnet-viewer", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Desktop chest X-ray reader: DICOM/PNG/JPEG studies, the 14 ChestX-ray14 "
                    "findings ranked by a local CheXNet model, class activation maps.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    p.add_argument("--sample", action="store_true", help="open the bundled sample study")
    p.add_argument("--model", metavar="PKG",
                   help="model package: .onnx path or a name from `chexnet models` "
                        "(default: the last one used, else the bundled model)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="execution device (default: auto = TensorRT, CUDA, then CPU)")
    p.add_argument("--screenshot", metavar="OUT.png", type=Path,
                   help="open PATH, run the model, show the top finding's heat map, save the "
                        "window as PNG and exit (exit 1 if no findings could be shown)")
    p.add_argument("--finding", metavar="NAME", help="with --screenshot: show this finding's "
                                                     "heat map instead of the top one")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s")
    paths = [Path(p) for p in args.paths]
    if args.sample:
        from chexnet.inference.package.lookup import sample_study_path
        paths.append(sample_study_path())
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"chexnet-viewer: {missing[0]}: no such file or folder", file=sys.stderr)
        return 2
    if args.screenshot is not None and not paths:
        print("chexnet-viewer: --screenshot needs a PATH (or --sample)", file=sys.stderr)
        return 2

    from PySide6.QtWidgets import QApplication

    from chexnet.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("chexnet-viewer")
    app.setOrganizationName("chexnet")
    window = MainWindow(model=args.model, device=args.device)
    window.show()
    if paths:
        window.open_paths(paths)
    if args.screenshot is None:
        return app.exec()
    return run_screenshot(app, window, args.screenshot, args.finding)


def run_screenshot(app, window, out: Path, finding: str | None) -> int:
    """Wait for findings (or a failure), then save the window and quit."""
    from PySide6.QtCore import QTimer

    outcome = {"code": 1}

    def save_and_quit(code: int) -> None:
        outcome["code"] = code
        app.processEvents()
        out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(out), "PNG"):
            print(f"chexnet-viewer: could not write {out}", file=sys.stderr)
            outcome["code"] = 1
        window.close()
        app.quit()

    def shown(_index: int) -> None:
        if finding:
            if finding not in window.session.prediction(window.nav.index).labels:
                print(f"chexnet-viewer: the model has no finding {finding!r}", file=sys.stderr)
            else:
                window.state.finding = finding
        QTimer.singleShot(300, lambda: save_and_quit(0))

    def failed(message: str) -> None:
        print(f"chexnet-viewer: {message}", file=sys.stderr)
        QTimer.singleShot(300, lambda: save_and_quit(1))

    window.findings_shown.connect(shown)
    window.gave_up.connect(failed)
    QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, lambda: save_and_quit(1))
    app.exec()
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main())
