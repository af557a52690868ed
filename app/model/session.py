"""What the viewer has open, and the background jobs that fill it -- no widgets here.

``StudySession`` owns the opened studies (flattened into reading order: study, series,
instance), a small cache of decoded images (the current one and its neighbours; older ones are
dropped so memory stays flat however many studies are opened), the predictions, and the model
engine. Every job is tagged with the *generation* (bumped on every open) and the item index; a
result from an older generation is dropped.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from chexnet.app.workers import JobRunner
from chexnet.inference.io.file_guard import guarded_file
from chexnet.inference.io.image import Image, Window, robust_window
from chexnet.inference.io.study import Instance, ScanResult, first_to_read, scan
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.package.verify import VerifiedPackage
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prediction import Prediction

log = logging.getLogger(__name__)

IMAGE_CACHE_SIZE = 3
THUMB_SIDE = 96
MAX_THUMBNAILS = 200


@dataclass(frozen=True)
class Preset:
    name: str
    window: Window | None  # None: the file's own pipeline (its VOI LUT or first window)


@dataclass
class LoadedImage:
    """An image decoded for viewing, with what the window needs computed off the GUI thread."""

    image: Image
    header: list[tuple[str, str, str]]
    presets: list[Preset]
    thumbnail: np.ndarray
    value_range: tuple[float, float]


@dataclass
class Item:
    instance: Instance
    study_index: int
    series_index: int
    caption: str


@dataclass
class OpenResult:
    scan: ScanResult
    items: list[Item] = field(default_factory=list)
    first: int = 0  # the item shown first (io.study.first_to_read)


def thumbnail(display_u8: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """A small 8-bit copy, longest side ``side`` (nearest sampling: a thumbnail, not a read)."""
    h, w = display_u8.shape
    step = max(1, int(np.ceil(max(h, w) / side)))
    return np.ascontiguousarray(display_u8[::step, ::step])


def window_presets(image: Image) -> tuple[list[Preset], tuple[float, float]]:
    """The file's own windows, an automatic percentile window, the full range."""
    values = image.modality_values()
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    presets = []
    if image.voi_lut is not None:
        presets.append(Preset("File VOI LUT", None))
    for i, w in enumerate(image.windows):
        label = w.explanation or f"File window {i + 1}"
        presets.append(Preset(f"{label} (C {w.center:g} / W {w.width:g})", w))
    if not presets:
        presets.append(Preset("Default", None))
    auto = robust_window(values)
    presets.append(Preset(f"Auto 0.5-99.5 % (C {auto.center:.0f} / W {auto.width:.0f})", auto))
    full = Window(center=(lo + hi) / 2.0, width=max(hi - lo, 1.0), function="LINEAR_EXACT",
                  explanation="full range")
    presets.append(Preset(f"Full range ({lo:g} .. {hi:g})", full))
    return presets, (lo, hi)


def _load(instance: Instance, min_size: int | None = None) -> Image:
    return instance.load(min_size=min_size)


def load_for_view(instance: Instance) -> LoadedImage:
    """Decode one image and all the window shows (on a worker), in the per-file guard."""
    with guarded_file(instance.path):
        image = _load(instance)
        display = image.display_u8()  # cached on the image: the first paint costs nothing
        presets, value_range = window_presets(image)
        rows = instance.header_rows()
    return LoadedImage(image, rows, presets, thumbnail(display), value_range)


def open_paths(paths: list[Path]) -> OpenResult:
    """Scan files/folders into studies, flattened in reading order (runs on a worker)."""
    result = scan(paths)
    items = []
    for si, study in enumerate(result.studies):
        for ri, series in enumerate(study.series):
            for inst in series.instances:
                bits = [inst.view_position or inst.kind.upper()]
                if series.number is not None:
                    bits.append(f"S{series.number}")
                if inst.instance_number is not None:
                    bits.append(f"#{inst.instance_number}")
                caption = " ".join(bits) + f"\n{inst.path.name}"
                items.append(Item(inst, si, ri, caption))
    return OpenResult(result, items, first_to_read([item.instance for item in items]))


class StudySession(QObject):
    """The open studies, their decoded images and predictions, and the model engine; every
    result arrives by signal on the GUI thread."""

    opened = Signal(object)              # OpenResult
    image_ready = Signal(int, object)    # index, LoadedImage
    thumbnail_ready = Signal(int, object)
    prediction_ready = Signal(int, object)  # index, Prediction
    engine_ready = Signal(object)        # Engine
    # what went wrong, one signal per kind (the message names the file and what to do)
    open_failed = Signal(str)
    image_failed = Signal(str)
    model_failed = Signal(str)
    predict_failed = Signal(str)

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.generation = 0
        self.items: list[Item] = []
        self.engine: Engine | None = None
        self._engine_generation = 0
        self._images: OrderedDict[int, LoadedImage] = OrderedDict()
        self._loading: set[int] = set()
        self._predictions: dict[int, Prediction] = {}
        self._predicting: set[int] = set()

    # --- model ------------------------------------------------------------------------------
    def load_model(self, spec: str | Path | VerifiedPackage | None, device: str = "auto",
                   chosen_by: str | None = None) -> None:
        """``spec`` as ``resolve_model`` finds it; ``chosen_by`` overrides how it was chosen."""
        self._engine_generation += 1
        self.runner.start(self._engine_generation, _make_engine, spec, device, chosen_by,
                          on_result=self._engine_loaded, on_error=self._engine_failed)

    def _engine_loaded(self, token, engine: Engine) -> None:
        if token != self._engine_generation:
            return
        self.engine = engine
        self._predictions.clear()
        self._predicting.clear()
        self.engine_ready.emit(engine)

    def _engine_failed(self, token, message: str) -> None:
        if token == self._engine_generation:
            self.model_failed.emit(message)

    # --- opening ------------------------------------------------------------------------------
    def open(self, paths: list[str | Path]) -> None:
        self.generation += 1
        self.items = []
        self._images.clear()
        self._loading.clear()
        self._predictions.clear()
        self._predicting.clear()
        self.runner.start(self.generation, open_paths, [Path(p) for p in paths],
                          on_result=self._opened, on_error=self._open_failed)

    def abandon(self) -> None:
        """The window is closing: whatever still runs for the open studies is now stale."""
        self.generation += 1

    def _opened(self, token, result: OpenResult) -> None:
        if token != self.generation:
            return
        self.items = result.items
        if not result.items:
            reasons = [str(err) for err in result.scan.skipped]
            self.open_failed.emit("; ".join(reasons) if reasons else
                                  "nothing to show: no DICOM, PNG or JPEG image in what was "
                                  "opened")
            return
        self.opened.emit(result)

    def _open_failed(self, token, message: str) -> None:
        if token == self.generation:
            self.open_failed.emit(message)

    # --- images -------------------------------------------------------------------------------
    def image(self, index: int) -> LoadedImage | None:
        loaded = self._images.get(index)
        if loaded is not None:
            self._images.move_to_end(index)
        return loaded

    def request_image(self, index: int) -> None:
        if not 0 <= index < len(self.items) or index in self._loading:
            return
        if index in self._images:
            self.image_ready.emit(index, self.image(index))
            return
        self._loading.add(index)
        self.runner.start((self.generation, index), load_for_view, self.items[index].instance,
                          on_result=self._image_loaded, on_error=self._image_failed)

    def _image_loaded(self, token, loaded: LoadedImage) -> None:
        generation, index = token
        if generation != self.generation:
            return
        self._loading.discard(index)
        self._images[index] = loaded
        while len(self._images) > IMAGE_CACHE_SIZE:
            self._images.popitem(last=False)
        self.thumbnail_ready.emit(index, loaded.thumbnail)
        self.image_ready.emit(index, loaded)

    def _image_failed(self, token, message: str) -> None:
        generation, index = token
        if generation != self.generation:
            return
        self._loading.discard(index)
        self.image_failed.emit(message)

    def request_thumbnails(self) -> None:
        """Thumbnails of the other images, one job each, after the first image is up."""
        for index, item in enumerate(self.items[:MAX_THUMBNAILS]):
            if index not in self._images:
                self.runner.start((self.generation, index), _thumbnail_of, item.instance,
                                  on_result=self._thumb_loaded)

    def _thumb_loaded(self, token, thumb: np.ndarray) -> None:
        generation, index = token
        if generation == self.generation:
            self.thumbnail_ready.emit(index, thumb)

    # --- predictions --------------------------------------------------------------------------
    def prediction(self, index: int) -> Prediction | None:
        return self._predictions.get(index)

    def request_prediction(self, index: int) -> None:
        loaded = self._images.get(index)
        if self.engine is None or loaded is None or index in self._predicting:
            return
        if index in self._predictions:
            self.prediction_ready.emit(index, self._predictions[index])
            return
        self._predicting.add(index)
        self.runner.start((self.generation, self._engine_generation, index), _predict,
                          self.engine, loaded.image,
                          on_result=self._predicted, on_error=self._predict_failed)

    def rerun(self) -> None:
        self._predictions.clear()
        self._predicting.clear()

    def _predicted(self, token, pred: Prediction) -> None:
        generation, engine_generation, index = token
        self._predicting.discard(index)
        if generation != self.generation or engine_generation != self._engine_generation:
            return
        self._predictions[index] = pred
        self.prediction_ready.emit(index, pred)

    def _predict_failed(self, token, message: str) -> None:
        generation, engine_generation, index = token
        self._predicting.discard(index)
        if generation == self.generation and engine_generation == self._engine_generation:
            self.predict_failed.emit(message)


def _make_engine(spec: str | Path | VerifiedPackage | None, device: str,
                 chosen_by: str | None) -> Engine:
    package = spec if isinstance(spec, VerifiedPackage) else resolve_model(spec)
    if chosen_by:
        package = replace(package, chosen_by=chosen_by)
    return Engine(package, device=device, batch_size=1)


def _predict(engine: Engine, image: Image) -> Prediction:
    return engine.predict([image])[0]


def _thumbnail_of(instance: Instance) -> np.ndarray:  # JPEG 2000: a reduced decode suffices
    with guarded_file(instance.path):
        return thumbnail(_load(instance, min_size=2 * THUMB_SIDE).display_u8(cache=False))
