"""torchxrayvision's DenseNet-121 releases: weights name -> file, output labels, op_threshs.

Facts carried from torchxrayvision's ``models.py`` ``model_urls`` (github.com/mlmed/
torchxrayvision, commit f4087a0b0d0cdc6a5877fb5456965b6d29adb1e5): the release files hold the
weights only; the library supplies, per weights name, which of the 18 outputs the release
trained (an empty label: not trained, op_threshs NaN) and the operating points. Torch-free, so
the command line can offer the names. ``chexnet models get`` passes these names as the variant.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NAN = math.nan
SOURCE = ("torchxrayvision models.py model_urls (github.com/mlmed/torchxrayvision @ "
          "f4087a0b0d0cdc6a5877fb5456965b6d29adb1e5)")
#: torchxrayvision's default 18 pathologies, in its output order. The first 14 are
#: ChestX-ray14's labels, spelt as NIH spells them; the last 4 have no ChestX-ray14 equivalent.
XRV_PATHOLOGIES = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
    "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
    "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)
_SUFFIX = "-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"
_CHEX_LIKE = (1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1)


@dataclass(frozen=True)
class XrvRelease:
    weights: str  # torchxrayvision's weights name, e.g. "densenet121-res224-nih"
    file: str  # the release file's name (the basename of its weights_url)
    used: tuple[int, ...]  # 1: the release trained this output
    op_threshs: tuple[float, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(lb if u else "" for lb, u in zip(XRV_PATHOLOGIES, self.used, strict=True))


def _r(name: str, prefix: str, used: tuple[int, ...], op: tuple[float, ...]) -> XrvRelease:
    return XrvRelease(f"densenet121-res224-{name}", prefix + _SUFFIX, used, op)


RELEASES = {r.weights: r for r in (
    _r("all", "nih-pc-chex-mimic_ch-google-openi-kaggle", (1,) * 18, (
        0.07422872, 0.038290843, 0.09814756, 0.0098118475, 0.023601074, 0.0022490358,
        0.010060724, 0.103246614, 0.056810737, 0.026791653, 0.050318155, 0.023985857,
        0.01939503, 0.042889766, 0.053369623, 0.035975814, 0.20204692, 0.05015312)),
    _r("nih", "nih", (1,) * 14 + (0,) * 4, (
        0.039117552, 0.0034529066, 0.11396341, 0.0057298196, 0.00045666535, 0.0018880932,
        0.012037827, 0.038744126, 0.0037213727, 0.014730946, 0.016149804, 0.054241467,
        0.037198864, 0.0004403434, NAN, NAN, NAN, NAN)),
    _r("pc", "pc", (1,) * 14 + (0, 1, 0, 0), (
        0.031012505, 0.013347598, 0.081435576, 0.001262615, 0.002587246, 0.0035944257,
        0.0023071, 0.055412333, 0.044385884, 0.042766232, 0.043258056, 0.037629247,
        0.005658899, 0.0091741895, NAN, 0.026507627, NAN, NAN)),
    _r("chex", "chex", _CHEX_LIKE, (
        0.1988969, 0.05710573, NAN, 0.0531293, 0.1435217, NAN, NAN, 0.27212676, 0.07749717,
        NAN, 0.19712369, NAN, NAN, NAN, 0.09932402, 0.09273402, 0.3270967, 0.10888247)),
    _r("rsna", "kaggle", (0,) * 8 + (1,) + (0,) * 7 + (1, 0), (
        NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0.13486601, NAN, NAN, NAN, NAN, NAN, NAN, NAN,
        0.13511065, NAN)),
    _r("mimic_nb", "mimic_nb", _CHEX_LIKE, (
        0.08558747, 0.011884617, NAN, 0.0040595434, 0.010733786, NAN, NAN, 0.118761964,
        0.022924708, NAN, 0.06358637, NAN, NAN, NAN, 0.022143636, 0.017476924, 0.1258702,
        0.014020768)),
    _r("mimic_ch", "mimic_ch", _CHEX_LIKE, (
        0.09121389, 0.010573786, NAN, 0.005023008, 0.003698257, NAN, NAN, 0.08001232,
        0.037242252, NAN, 0.05006329, NAN, NAN, NAN, 0.019866971, 0.03823637, 0.11303808,
        0.0069147074)),
)}
#: torchxrayvision's short aliases ("nih" for "densenet121-res224-nih").
ALIASES = {w.rsplit("-", 1)[1]: w for w in RELEASES}


def find_release(variant: str | None, file_name: str) -> XrvRelease | None:
    """The release named by ``variant`` (a weights name or its alias; a ValueError when
    unknown), else the one whose release file name or weights name ``file_name`` carries."""
    if variant:
        key = ALIASES.get(variant, variant)
        if key not in RELEASES:
            raise ValueError(f"unknown torchxrayvision variant {variant!r}; choose one of "
                             f"{', '.join(RELEASES)}")
        return RELEASES[key]
    for rel in RELEASES.values():
        if file_name == rel.file:
            return rel
    found = [r for r in RELEASES.values()
             if re.search(rf"(^|[^a-z_]){re.escape(r.weights)}([^a-z_]|$)", file_name)]
    return found[0] if len(found) == 1 else None
