"""``chexnet-viewer``: open chest X-ray studies, read the model's findings and heat maps.

Also the headless path used for documentation and tests: ``--screenshot OUT.png`` opens the
input, runs the model, shows the top finding's heat map, saves the window and exits (works
with ``QT_QPA_PLATFORM=offscreen``); it starts from the defaults and the flags, never from the
settings of an interactive session, and writes none. Qt and the engine are imported inside the
functions that need them, so ``--help`` and usage errors answer without loading either.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chexnet.app.qt_platform import EXIT_NO_PLATFORM, library_hint, platform_guard
from chexnet.inference.cli.common import unit_interval

EXIT_USAGE = 2

EPILOG = """\
examples:
  chexnet-viewer                               start empty; File > Open, or drop files on it
  chexnet-viewer study.dcm                     one DICOM (or PNG/JPEG)
  chexnet-viewer /data/study_folder            a folder is a study: series and thumbnails
  chexnet-viewer --sample                      the bundled sample: a real CR chest PA (DICOM)
  chexnet-viewer cxr.png --model my-model      another model package (path or registered name)
  chexnet-viewer cxr.png --finding "pleural thickening" --threshold 0.3 --window auto
                                               this finding's heat map, cut at 0.3, auto window
  QT_QPA_PLATFORM=offscreen chexnet-viewer --sample --screenshot view.png
                                               render headless and save the window
  chexnet-viewer --pacs ORTHANC@pacs.example.org:4242 --accession A123
                                               retrieve this study from PACS (C-GET) and read
                                               it (File > Open from PACS… searches)

keys: 1-5 window presets, right-drag window/level, wheel or +/- zoom, Z actual pixels/fit,
space fit, I invert, H/V flip, R rotate, C heat map on/off, Left/Right image, Up/Down series.
Settings (last folder, recent files, overlay colour map/opacity/threshold, window preset)
persist between runs; --threshold, --opacity, --window and --finding apply to their run only.
--screenshot starts from the defaults (and the flags) and writes no settings.
The model: --model, else your default (`chexnet models default NAME`), else the bundled one;
the findings panel says which.
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
                        "(default: your default, `chexnet models default NAME`, else the "
                        "bundled model)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="execution device (default: auto = TensorRT, CUDA, then CPU)")
    p.add_argument("--screenshot", metavar="OUT.png", type=Path,
                   help="open PATH, run the model, show the top finding's heat map, save the "
                        "window as PNG and exit (exit 1 if no findings could be shown)")
    p.add_argument("--finding", metavar="NAME",
                   help="show this finding's heat map instead of the top one (case and "
                        "separators as you like: 'pleural thickening'); exit 2 if the model has "
                        "no such finding")
    p.add_argument("--threshold", type=unit_interval, metavar="T",
                   help="heat map threshold, 0..1: CAM values below it (each map scaled 0..1) "
                        "are transparent (default: the remembered one; with --screenshot 0.5)")
    p.add_argument("--opacity", type=unit_interval, metavar="O",
                   help="heat map opacity, 0..1 (default: the remembered one; with "
                        "--screenshot 0.45)")
    p.add_argument("--window", type=window_flag, metavar="W",
                   help="window preset the images start at: file (the file's own window or "
                        "VOI LUT), auto (0.5-99.5 percentile), full (the whole range), or a "
                        "preset number 1-5 as the keys choose it (default: the remembered kind; "
                        "with --screenshot file)")
    p.add_argument("--pacs", metavar="NODE",
                   help="retrieve the study of --accession from this PACS and open it: "
                        "AE@host:port (C-FIND, C-GET) or a DICOMweb URL")
    p.add_argument("--accession", metavar="A", help="the accession number (with --pacs)")
    p.add_argument("--calling-ae", metavar="AE",
                   help="our AE title, as the PACS knows it (with --pacs; default CHEXNET)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    return p


def window_flag(text: str) -> str:
    from chexnet.app.model.window_level import window_choice

    try:
        return window_choice(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def usage_error(message: str) -> int:
    print(f"chexnet-viewer: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def checked_model(finding: str, spec: str | None):
    """``--finding`` against the model that will run: the package, resolved once (the window
    does not resolve it again); a usage error's text when the model has no such finding; None
    when the model cannot be opened (the window says why, as without --finding)."""
    from chexnet.inference.errors import ChexnetError
    from chexnet.inference.package.card import match_finding, unknown_finding_message
    from chexnet.inference.package.lookup import resolve_model

    try:
        package = resolve_model(spec)
    except ChexnetError:
        return None
    labels = package.card.labels
    return package if match_finding(finding, labels) else unknown_finding_message(finding, labels)


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
        return usage_error(f"{missing[0]}: no such file or folder")
    pacs = None
    if args.pacs or args.accession:
        from chexnet.inference.pacs.node import PacsNode
        if not (args.pacs and args.accession):
            return usage_error("--pacs and --accession go together")
        try:
            pacs = PacsNode.parse(args.pacs, args.calling_ae)
        except ValueError as err:
            return usage_error(f"--pacs: {err}")
    if args.screenshot is not None and not paths and pacs is None:
        return usage_error("--screenshot needs a PATH (or --sample, or --pacs)")
    model = args.model
    if args.finding:
        checked = checked_model(args.finding, args.model)
        if isinstance(checked, str):
            return usage_error(checked)
        model = checked or args.model
    try:
        from PySide6.QtWidgets import QApplication

        from chexnet.app.main_window import MainWindow
    except ImportError as err:
        hint = library_hint(str(err))
        if hint is None:
            raise
        print(hint, file=sys.stderr)
        return EXIT_NO_PLATFORM
    from chexnet.app.model.settings import MemoryStore, StartOptions, ViewerSettings

    with platform_guard():
        app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("chexnet-viewer")
    app.setOrganizationName("chexnet")
    headless = args.screenshot is not None
    start = StartOptions(args.threshold, args.opacity, args.finding, args.window)
    window = MainWindow(settings=ViewerSettings(MemoryStore()) if headless else None,
                        model=model, device=args.device, start=start)
    window.show()
    if paths:
        window.open_paths(paths)
    elif pacs is not None:
        window.commands.open_accession(pacs, args.accession)
    if not headless:
        return app.exec()
    return run_screenshot(app, window, args.screenshot)


def run_screenshot(app, window, out: Path) -> int:
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
