"""Where model packages live: the bundled ones and the user's own folder (registry.py).

``--model SPEC`` resolves, in this order: an existing file path; a name registered with
``chexnet models add``; another package file in the user models folder; a bundled package name.
:func:`resolve_model` returns the package verified (:func:`~.verify.open_package`: registered
sha256, external data inside its folder, card and graph), ready for
:class:`~chexnet.inference.scoring.engine.Engine`, which does not check it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from chexnet.inference.errors import ChexnetError, ChexnetInputError, ModelPackageError
from chexnet.inference.package.card import ModelCard
from chexnet.inference.package.hashing import file_sha256
from chexnet.inference.package.registry import load_registry, user_models_dir
from chexnet.inference.package.verify import VerifiedPackage, open_package

__all__ = ["DEFAULT_MODEL_FILE", "SAMPLE_STUDY_FILE", "ModelListing", "bundled_models_dir",
           "list_models", "resolve_model", "sample_study_path", "user_models_dir"]

DEFAULT_MODEL_FILE = "default.onnx"
SAMPLE_STUDY_FILE = "RG1_J2KR.dcm"


def bundled_models_dir() -> Path:
    return Path(str(resources.files("chexnet.resources") / "models"))


def sample_study_path() -> Path:
    """The bundled sample study: a real CR chest PA radiograph from pydicom-data (MIT)."""
    path = Path(str(resources.files("chexnet.resources") / "sample" / SAMPLE_STUDY_FILE))
    if not path.is_file():
        raise ChexnetInputError(path, "the bundled sample study is missing from this "
                                      "installation", "reinstall chexnet")
    return path


def _user_packages(registry: dict | None = None) -> dict[str, Path]:
    """Registered names first, then other package files dropped into the user folder."""
    registry = load_registry() if registry is None else registry
    found = {name: e.path for name, e in registry.items()}
    folder = user_models_dir()
    if folder.is_dir():
        for p in sorted(folder.glob("*.onnx")):
            if p not in found.values():
                found.setdefault(p.stem, p)
    return found


def _bundled_packages() -> dict[str, Path]:
    folder = bundled_models_dir()
    return {p.stem: p for p in sorted(folder.glob("*.onnx"))} if folder.is_dir() else {}


def resolve_model(spec: str | Path | None) -> VerifiedPackage:
    """A verified package from a path, a package name, or ``None`` for the bundled default.

    An existing file path wins, then user package names (registered first), then bundled names.
    """
    if spec is None:
        default = bundled_models_dir() / DEFAULT_MODEL_FILE
        if default.is_file():
            return open_package(default)
        raise ModelPackageError(
            None, "no default model package is installed with this copy of chexnet",
            "pass --model PATH to a package made by `chexnet export`, or a name from "
            "`chexnet models` (see the README)")
    path = Path(spec).expanduser()
    if path.is_file():
        return open_package(path)
    for packages in (_user_packages(), _bundled_packages()):
        if str(spec) in packages:
            return open_package(packages[str(spec)])
    names = ", ".join(sorted({*_user_packages(), *_bundled_packages()})) or "none installed"
    raise ModelPackageError(path, "no such model package file or name",
                            f"known names: {names}; add one with `chexnet models add PKG`")


@dataclass(frozen=True)
class ModelListing:
    """One row of ``chexnet models``; ``problem`` is set for a package that cannot be used."""

    name: str
    source: str  # "bundled" or "user"
    path: str
    registered: str | None = None
    card_name: str | None = None
    version: str | None = None
    sha256: str | None = None
    demo: bool | None = None
    auroc: float | None = None
    problem: str | None = None
    card: ModelCard | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict:
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "card"}
        return {**row, "ok": self.ok}


def _listing(name: str, source: str, path: Path, registered: str | None) -> ModelListing:
    sha = None
    try:
        sha = file_sha256(path)
        card = open_package(path).card
    except ChexnetError as err:
        return ModelListing(name, source, str(path), registered, sha256=sha,
                            problem=_reason(err))
    except Exception as err:  # a listing never crashes on one bad package
        return ModelListing(name, source, str(path), registered, sha256=sha,
                            problem=f"{type(err).__name__}: {err}")
    # Headline: the held-out test mean AUROC where the card has one, else the validation mean.
    mean = (card.extra.get("test_metrics") or {}).get("mean_auroc")
    if mean is None:
        auroc = (card.validation_metrics or {}).get("auroc")
        mean = auroc.get("mean") if isinstance(auroc, dict) else None
    return ModelListing(name, source, str(path), registered, card.name, card.version, sha,
                        bool(card.demo), float(mean) if isinstance(mean, int | float) else None,
                        card=card)


def list_models() -> list[ModelListing]:
    """Bundled then user packages, each read (card, graph, integrity) and marked if broken."""
    rows = [_listing(n, "bundled", p, None) for n, p in _bundled_packages().items()]
    try:
        registry = load_registry()
    except ModelPackageError as err:
        registry = {}
        rows.append(ModelListing("registry.json", "user", str(err.path), problem=_reason(err)))
    for name, path in sorted(_user_packages(registry).items()):
        entry = registry.get(name)
        registered = entry.registered if entry and entry.path == path else None
        if entry is not None and not path.is_file():
            rows.append(ModelListing(name, "user", str(path), registered,
                                     entry.card_name, entry.version, entry.sha256, entry.demo,
                                     problem="its file is missing from the user models folder"))
            continue
        rows.append(_listing(name, "user", path, registered))
    return rows



def _reason(err: Exception) -> str:
    """An error's message without the leading path (the listing shows the path already)."""
    text, path = str(err), getattr(err, "path", None)
    prefix = f"{path}: " if path is not None else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text
