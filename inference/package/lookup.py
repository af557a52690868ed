"""Where model packages live: the bundled ones and the user's own folder (registry.py).

The one rule for which model runs (every command, the viewer): ``--model`` if given, else the
user's default (``chexnet models default NAME``), else the bundled default. ``--model SPEC``
resolves, in this order: an existing file path; a name registered with ``chexnet models add``;
another package file in the user models folder; a bundled package name.
:func:`resolve_model` returns the package verified (:func:`~.verify.open_package`: registered
sha256, external data inside its folder, card and graph), ready for
:class:`~chexnet.inference.scoring.engine.Engine`, which does not check it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

from chexnet.inference.errors import ChexnetError, ChexnetInputError, ModelPackageError
from chexnet.inference.package.card import ModelCard
from chexnet.inference.package.hashing import file_sha256
from chexnet.inference.package.registry import (
    load_default_name,
    load_registry,
    save_default_name,
    user_models_dir,
)
from chexnet.inference.package.verify import VerifiedPackage, open_package

__all__ = ["DEFAULT_MODEL_FILE", "SAMPLE_STUDY_FILE", "ModelListing", "bundled_models_dir",
           "default_model_name", "list_models", "resolve_model", "sample_study_path",
           "set_default_model", "user_models_dir"]

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


#: How a package was chosen, as every output says it.
BY_OPTION, BY_USER_DEFAULT, BY_BUNDLED_DEFAULT = "--model", "user default", "bundled default"


def resolve_model(spec: str | Path | None) -> VerifiedPackage:
    """The one rule every command and the viewer follow: ``--model`` (a path or a package
    name) if given, else the user's default (``chexnet models default NAME``), else the bundled
    default. Returns the package verified, ``chosen_by`` saying which of the three chose it.

    For a ``spec``: an existing file path wins, then user package names (registered first),
    then bundled names.
    """
    if spec is not None:
        return replace(_find(spec), chosen_by=BY_OPTION)
    name = load_default_name()
    if name is not None:
        try:
            return replace(_find(name), chosen_by=BY_USER_DEFAULT)
        except ModelPackageError as err:
            raise ModelPackageError(err.path, f"your default model {name!r} cannot be used: "
                                              f"{_reason(err)}",
                                    "choose another with `chexnet models default NAME`, or go "
                                    "back to the bundled one with `chexnet models default "
                                    "--clear`") from err
    default = bundled_models_dir() / DEFAULT_MODEL_FILE
    if default.is_file():
        return replace(open_package(default), chosen_by=BY_BUNDLED_DEFAULT)
    raise ModelPackageError(
        None, "no default model package is installed with this copy of chexnet",
        "pass --model PATH to a package made by `chexnet export`, or a name from "
        "`chexnet models` (see the README)")


def _find(spec: str | Path) -> VerifiedPackage:
    path = Path(spec).expanduser()
    if path.is_file():
        return open_package(path)
    for packages in (_user_packages(), _bundled_packages()):
        if str(spec) in packages:
            return open_package(packages[str(spec)])
    names = ", ".join(sorted({*_user_packages(), *_bundled_packages()})) or "none installed"
    raise ModelPackageError(path, "no such model package file or name",
                            f"known names: {names}; add one with `chexnet models add PKG`")


def set_default_model(name: str | None) -> VerifiedPackage | None:
    """Make the package ``name`` (a user or bundled package name, not a path: register a file
    with ``chexnet models add`` first) the user's default; None clears it. Returns the new
    default package, verified, or None when cleared."""
    if name is None:
        save_default_name(None)
        return None
    if name not in _user_packages() and name not in _bundled_packages():
        known = ", ".join(sorted({*_user_packages(), *_bundled_packages()})) or "none installed"
        raise ModelPackageError(None, f"no model package named {name!r}",
                                f"known names: {known}; register a file first with `chexnet "
                                "models add PKG --name NAME`")
    package = _find(name)  # refuses a broken package before it becomes the default
    save_default_name(name)
    return replace(package, chosen_by=BY_USER_DEFAULT)


def default_model_name() -> tuple[str | None, str]:
    """(the name of the package used when no ``--model`` is given, how it was chosen)."""
    name = load_default_name()
    if name is not None:
        return name, BY_USER_DEFAULT
    default = bundled_models_dir() / DEFAULT_MODEL_FILE
    return (default.stem if default.is_file() else None), BY_BUNDLED_DEFAULT


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
