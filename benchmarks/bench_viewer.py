"""Viewer responsiveness on this machine, measured headless (QT_QPA_PLATFORM=offscreen).

1. Open to findings: RG1_J2KR (1955x1841 JPEG 2000 lossless CR, pydicom-data) opened in the
   viewer until its findings are on screen (``MainWindow.findings_shown``), against the
   engine's own ``load_image`` + ``Engine.predict`` of that file, interleaved, same process,
   same bundled model, engine already loaded on both sides. Target: ratio <= 1.5.
2. Slider redraws: the threshold and opacity sliders moved in steps, each step followed by a
   synchronous repaint of the canvas (what a drag does); frames per second. Target >= 30.
3. Memory: 50 studies opened one after another (RG1_J2KR, RG1_UNCR and NIH PNGs when
   ../shared is present, copied under distinct names), resident memory after each; flat means
   the last ten are within a few MB of the first ten after warm-up.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--repeats N] [--studies N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _machine
import psutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pydicom.data import get_testdata_file
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from chexnet.app.main_window import MainWindow
from chexnet.app.model.settings import ViewerSettings
from chexnet.inference import load_image

OPEN_TARGET, FPS_TARGET = 1.5, 30.0
NIH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nih14-sample" / "images"


def wait_for(signal, timeout_s: float = 120.0) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)


def open_and_wait(window: MainWindow, path: Path) -> None:
    loop = QEventLoop()
    window.findings_shown.connect(loop.quit)
    window.gave_up.connect(loop.quit)
    window.open_paths([path])
    loop.exec()
    window.findings_shown.disconnect(loop.quit)
    window.gave_up.disconnect(loop.quit)


def slider_fps(app: QApplication, window: MainWindow, name: str, steps: int = 120) -> float:
    """Move the slider widget one step at a time and let the event loop paint each step (one
    pass of pending events and paints, as a drag gives); the heat map's paint calls are
    counted so a step that painted nothing cannot pass for a frame."""
    slider = getattr(window.controls, name)
    values = [5 + round(90 * (i % 60) / 59) for i in range(steps)]
    overlay = window.canvas.overlay
    painted = []
    original = overlay.paint

    def counting_paint(*a):
        painted.append(1)
        return original(*a)

    overlay.paint = counting_paint
    app.processEvents()
    t0 = time.perf_counter()
    for v in values:
        slider.setValue(v if v != slider.value() else v + 1)
        app.processEvents()
    elapsed = time.perf_counter() - t0
    overlay.paint = original
    if len(painted) < steps:
        raise RuntimeError(f"{name}: only {len(painted)} paints for {steps} slider steps")
    return steps / elapsed


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed opens per side")
    parser.add_argument("--studies", type=int, default=50, help="studies for the memory run")
    args = parser.parse_args(argv)
    rg1_j2kr = Path(get_testdata_file("RG1_J2KR.dcm"))
    rg1_uncr = Path(get_testdata_file("RG1_UNCR.dcm"))
    _machine.print_facts("viewer responsiveness (offscreen)",
                         ["PySide6-Essentials", "pyqtgraph", "onnxruntime-gpu",
                          "pylibjpeg-openjpeg"])
    _machine.report_other_load("before the run")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        settings = ViewerSettings(QSettings(str(Path(tmp) / "v.ini"), QSettings.Format.IniFormat))
        window = MainWindow(settings=settings)
        window.resize(1400, 900)
        window.show()
        wait_for(window.session.engine_ready)
        engine = window.session.engine

        def engine_side():
            engine.predict([load_image(rg1_j2kr)])

        def viewer_side():
            open_and_wait(window, rg1_j2kr)

        viewer_ms, engine_ms = _machine.interleaved([viewer_side, engine_side],
                                                    repeats=args.repeats, warmup=1)
        ratio = _machine.paired_ratio(viewer_ms, engine_ms)
        print(f"\n1. open RG1_J2KR to findings shown: viewer {_machine.median(viewer_ms):.0f} ms, "
              f"engine load+predict {_machine.median(engine_ms):.0f} ms -> ratio {ratio:.2f} "
              f"(target <= {OPEN_TARGET}: {'met' if ratio <= OPEN_TARGET else 'MISSED'})")

        fps = {name: slider_fps(app, window, name) for name in ("threshold", "opacity")}
        for name, value in fps.items():
            verdict = "met" if value >= FPS_TARGET else "MISSED"
            print(f"2. {name} slider on RG1 (heat map shown): {value:.0f} redraws/s "
                  f"(target >= {FPS_TARGET:.0f}: {verdict})")

        sources = [rg1_j2kr, rg1_uncr] + (sorted(NIH.glob("*.png"))[:8] if NIH.is_dir() else [])
        folder = Path(tmp) / "studies"
        folder.mkdir()
        rss = []
        for i in range(args.studies):
            src = sources[i % len(sources)]
            dst = folder / f"study{i:03d}{src.suffix}"
            shutil.copy(src, dst)
            open_and_wait(window, dst)
            app.processEvents()
            rss.append(rss_mb())
        # the first pass over the sources warms caches and the allocator (a step up while the
        # first of each kind of file is opened); flat means no growth after that
        warm = min(2 * len(sources), max(args.studies - 10, 0))
        first, last = rss[warm:warm + 10], rss[-10:]
        growth = _machine.median(last) - _machine.median(first)
        print(f"3. memory over {args.studies} studies: RSS after study {warm + 1}-{warm + 10} "
              f"median "
              f"{_machine.median(first):.0f} MB, last 10 median {_machine.median(last):.0f} MB "
              f"(growth {growth:+.0f} MB; max {max(rss):.0f} MB)")
        print("   RSS per study: " + " ".join(f"{v:.0f}" for v in rss))
        window.close()
    _machine.report_other_load("after the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
