"""What persists between runs: last folder, recent files, overlay look, window preset, the
configured PACS nodes (File > Open from PACS…).

QSettings (native store per platform: an INI file under ~/.config/chexnet on Linux). Tests
point it at a temporary folder with ``QSettings.setPath``. The model is not among them: it
follows the rule every command follows (``--model``, else the user's default, else the bundled
one); a ``model/spec`` key left by an older viewer is ignored. ``--screenshot`` runs on a
:class:`MemoryStore`: the defaults, and nothing written. Command-line flags
(:class:`StartOptions`) apply to their run only and are not remembered.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings

from chexnet.app.model.pacs import SavedNode, nodes_from_json, nodes_to_json
from chexnet.app.model.view_state import COLOUR_MAPS, ViewState

MAX_RECENT = 10
ORGANISATION, APPLICATION = "chexnet", "chexnet-viewer"


@dataclass(frozen=True)
class StartOptions:
    """What the command line sets for this run (None: the remembered value, or the default)."""

    threshold: float | None = None
    opacity: float | None = None
    finding: str | None = None  # as typed: matched to the model's labels once it is loaded
    window: str | None = None   # a window_level.window_choice


class MemoryStore:
    """A stand-in for QSettings that starts empty and writes nothing anywhere."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def value(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def setValue(self, key: str, value: object) -> None:  # QSettings' name
        self.values[key] = value

    def sync(self) -> None:
        pass


class ViewerSettings:
    """Typed access to the persisted values; out-of-range or unknown stored values read as
    the defaults (a hand-edited INI file cannot break the viewer)."""

    def __init__(self, store: QSettings | MemoryStore | None = None) -> None:
        self.store = store or QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                                        ORGANISATION, APPLICATION)

    def _get(self, key: str, default, kind):
        value = self.store.value(key, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            return default

    @property
    def last_folder(self) -> str:
        return self._get("paths/last_folder", "", str)

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self.store.setValue("paths/last_folder", value)

    @property
    def recent(self) -> list[str]:
        value = self.store.value("paths/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent if p != path]
        self.store.setValue("paths/recent", items[:MAX_RECENT])

    @property
    def threshold(self) -> float:
        return min(1.0, max(0.0, self._get("overlay/threshold", 0.5, float)))

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.store.setValue("overlay/threshold", float(value))

    @property
    def opacity(self) -> float:
        return min(1.0, max(0.0, self._get("overlay/opacity", 0.45, float)))

    @opacity.setter
    def opacity(self, value: float) -> None:
        self.store.setValue("overlay/opacity", float(value))

    @property
    def colour_map(self) -> str:
        name = self._get("overlay/colour_map", "jet", str)
        return name if name in COLOUR_MAPS else "jet"

    @colour_map.setter
    def colour_map(self, value: str) -> None:
        self.store.setValue("overlay/colour_map", value)

    @property
    def window_preset(self) -> str:
        """Which preset a newly opened image starts with: 'file', 'auto' or 'full'."""
        value = self._get("display/window_preset", "file", str)
        return value if value in ("file", "auto", "full") else "file"

    @window_preset.setter
    def window_preset(self, value: str) -> None:
        self.store.setValue("display/window_preset", value)

    @property
    def reader_id(self) -> str:
        """Who gives feedback (recorded with each event); "" until the reader is asked."""
        return self._get("feedback/reader_id", "", str).strip()

    @reader_id.setter
    def reader_id(self, value: str) -> None:
        self.store.setValue("feedback/reader_id", value.strip())

    @property
    def pacs_nodes(self) -> list[SavedNode]:
        return nodes_from_json(self.store.value("pacs/nodes", "[]"))

    @pacs_nodes.setter
    def pacs_nodes(self, nodes: list[SavedNode]) -> None:
        self.store.setValue("pacs/nodes", nodes_to_json(nodes))

    def follow(self, state: ViewState, start: StartOptions | None = None) -> None:
        """Start ``state`` with the remembered overlay look (``start``'s values, where given,
        instead, and not remembered), then remember every change the reader makes."""
        start = start or StartOptions()
        state.threshold = self.threshold if start.threshold is None else start.threshold
        state.opacity = self.opacity if start.opacity is None else start.opacity
        state.colour_map = self.colour_map
        state.threshold_changed.connect(self._keep_threshold)
        state.opacity_changed.connect(self._keep_opacity)
        state.colour_map_changed.connect(self._keep_colour_map)

    def _keep_threshold(self, value: float) -> None:
        self.threshold = value

    def _keep_opacity(self, value: float) -> None:
        self.opacity = value

    def _keep_colour_map(self, value: str) -> None:
        self.colour_map = value

    def sync(self) -> None:
        self.store.sync()
