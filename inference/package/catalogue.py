"""The catalogue of public CheXNet-style releases (``chexnet models get --list``).

The facts live in ``catalogue.json`` beside this module, each with where its source states it;
this module only reads them. Where a file is fetched from: the release's own URL, or, when
``$CHEXNET_MODELS_MIRROR`` is set (a hospital mirror or proxy cache), ``<mirror>/<name>/<file>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.resources import files

from chexnet.inference.errors import ChexnetError

MIRROR_ENV = "CHEXNET_MODELS_MIRROR"
CATALOGUE_FILE = "catalogue.json"


class CatalogueError(ChexnetError):
    """A name that is not in the catalogue, or a catalogue file that cannot be read."""


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    title: str
    source: str
    url: str  # "" = manual download from ``source``
    url_source: str
    file: str
    version: str
    licence: str
    labels: tuple[str, ...]
    input_size: int
    preprocessing: str
    format: str
    variant: str
    auroc: str  # "" = none published
    auroc_where: str
    sha256: str  # "" = not published

    @property
    def published_auroc(self) -> str:
        return self.auroc or "not published"

    @property
    def published_sha256(self) -> str:
        return self.sha256 or "not published"


def load_catalogue() -> dict[str, CatalogueEntry]:
    """Every release in the catalogue, by name, in the file's order."""
    text = files("chexnet.inference.package").joinpath(CATALOGUE_FILE).read_text("utf-8")
    try:
        models = json.loads(text)["models"]
        entries = [CatalogueEntry(**{**m, "labels": tuple(m["labels"])}) for m in models]
    except (ValueError, KeyError, TypeError) as err:
        raise CatalogueError(f"the model catalogue of this chexnet installation is damaged "
                             f"({err}); reinstall chexnet") from err
    return {e.name: e for e in entries}


def catalogue_entry(name: str) -> CatalogueEntry:
    entries = load_catalogue()
    if name not in entries:
        raise CatalogueError(f"{name!r} is not in the model catalogue; known: "
                             f"{', '.join(entries)} (see `chexnet models get --list`)")
    return entries[name]


def download_url(entry: CatalogueEntry, url: str | None = None,
                 mirror: str | None = None) -> str:
    """Where to fetch ``entry``: ``url`` if given, else the mirror (``mirror`` or
    ``$CHEXNET_MODELS_MIRROR``) as ``<mirror>/<name>/<file>``, else the release's own URL.
    Empty when the release has no direct link (manual download)."""
    if url:
        return url
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")
    if mirror:
        return f"{mirror.rstrip('/')}/{entry.name}/{entry.file}"
    return entry.url
