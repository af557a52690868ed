"""The fuzz seeds: real radiographs with planted patient data (PHI), built at run time.

DICOMs come from pydicom-data (real CR chest PA and an extremity, native and JPEG 2000), reduced
to 512 x 512 so that a case takes milliseconds (the originals, at 1955 x 1841, with
``full_size``); PNGs from the NIH ChestX-ray14 sample in ``../shared`` (absent: no PNG seeds).
Every seed carries the values of :data:`PHI`, so a message that quotes the file's header or text
chunks is caught by :func:`phi_hits`. Seeds are deterministic (fixed UIDs), so a case is the same
file for the same (seed, index) on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NIH_IMAGES = ROOT.parent / "shared" / "data" / "nih14-sample" / "images"

#: What is planted in every seed (DICOM header keywords; PNG tEXt chunks hold them too).
PHI = {
    "PatientName": "Zyxwvuts^Planted",
    "PatientID": "PHI7731995",
    "PatientBirthDate": "19230417",
    "OtherPatientNames": "Qwertyuiop^Otherplanted",
    "AccessionNumber": "ACC55512",
    "InstitutionName": "Planted General",
    "ReferringPhysicianName": "Drplanted^Referrer",
}
PRIVATE_CREATOR = "FUZZ PRIVATE"
#: Lower-case needles: every planted value and distinctive pieces of them (a mutated file can
#: hold a value cut short or with a byte changed, so pieces are searched for too).
PHI_NEEDLES = tuple(dict.fromkeys(
    [v.lower() for v in PHI.values()]
    + ["zyxwvuts", "zyxwv", "wvuts", "qwertyuiop", "otherplanted", "planted", "drplanted",
       "phi7731995", "7731995", "19230417", "1923-04-17", "acc55512"]))
_UID_ROOT = "1.2.826.0.1.3680043.8.498.7731"


@dataclass(frozen=True)
class BaseFile:
    """A seed file: ``kind`` is ``native`` or ``j2k`` (DICOM) or ``png``."""

    name: str
    kind: str
    path: Path

    @property
    def suffix(self) -> str:
        return ".png" if self.kind == "png" else ".dcm"


def phi_hits(*texts: str) -> tuple[str, ...]:
    """The needles found (case-insensitively) in any of ``texts``."""
    low = "\n".join(t for t in texts if t).lower()
    return tuple(n for n in PHI_NEEDLES if n in low)


def plant_phi(ds) -> None:
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    block = ds.private_block(0x0011, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", PHI["PatientName"])
    block.add_new(0x02, "LO", f"{PHI['PatientID']} {PHI['PatientBirthDate']}")


def _fixed_uids(ds, n: int) -> None:
    ds.StudyInstanceUID = f"{_UID_ROOT}.1"
    ds.SeriesInstanceUID = f"{_UID_ROOT}.2.{n}"
    ds.SOPInstanceUID = f"{_UID_ROOT}.3.{n}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def _reduced(pixels: np.ndarray, side: int = 512) -> np.ndarray:
    step = max(1, min(pixels.shape) // side)
    small = pixels[::step, ::step]
    top, left = (small.shape[0] - side) // 2, (small.shape[1] - side) // 2
    return np.ascontiguousarray(small[top:top + side, left:left + side])


def _dicom_seed(source: str, out: Path, n: int, *, reduce: bool, j2k: bool) -> Path:
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

    ds = pydicom.dcmread(get_testdata_file(source))
    if reduce:
        pixels = _reduced(ds.pixel_array)
        if ds.file_meta.TransferSyntaxUID != ExplicitVRLittleEndian:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
        if j2k:
            ds.compress(JPEG2000Lossless, pixels)
    plant_phi(ds)
    _fixed_uids(ds, n)
    ds.save_as(out, enforce_file_format=True)
    return out


def _png_seeds(out_dir: Path, images: Path, count: int, full_size: bool) -> list[BaseFile]:
    from PIL import Image as PILImage
    from PIL.PngImagePlugin import PngInfo

    sources = sorted(images.glob("*.png"))[:count] if images.is_dir() else []
    seeds = []
    for i, src in enumerate(sources):
        with PILImage.open(src) as im:
            grey = im.convert("L")
        if not full_size:
            grey = grey.resize((512, 512), PILImage.Resampling.BILINEAR)
        info = PngInfo()
        info.add_text("Patient", f"{PHI['PatientName']} {PHI['PatientID']}")
        info.add_text("Comment", f"born {PHI['PatientBirthDate']} {PHI['AccessionNumber']}",
                      zip=True)
        variants = {"L": grey}
        if i == 0:
            variants["P"] = grey.convert("P", palette=PILImage.Palette.ADAPTIVE, colors=64)
            variants["I16"] = PILImage.fromarray(np.asarray(grey).astype(np.uint16) * 257)
        for mode, image in variants.items():
            path = out_dir / f"nih{i}_{mode.lower()}{'_full' if full_size else ''}.png"
            if not path.exists():
                image.save(path, pnginfo=info)
            seeds.append(BaseFile(path.stem, "png", path))
    return seeds


def build_base_files(cache_dir: Path, *, full_size: bool = False, png_count: int = 3,
                     nih_images: Path = NIH_IMAGES) -> dict[str, BaseFile]:
    """The seeds, built into ``cache_dir`` (reused when already there). ``full_size`` adds the
    original-size radiographs (7 MB native, a real JPEG 2000 lossy codestream, a 1024 PNG)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    plan = [("cr_chest", "RG1_UNCI.dcm", "native", True),
            ("cr_chest_j2k", "RG1_UNCI.dcm", "j2k", True),
            ("cr_extremity", "RG3_UNCI.dcm", "native", True)]
    if full_size:
        plan += [("cr_chest_full", "RG1_UNCI.dcm", "native", False),
                 ("cr_chest_j2k_full", "RG1_J2KI.dcm", "j2k", False)]
    seeds = []
    for n, (name, source, kind, reduce) in enumerate(plan):
        path = cache_dir / f"{name}.dcm"
        if not path.exists():
            _dicom_seed(source, path, n, reduce=reduce, j2k=kind == "j2k" and reduce)
        seeds.append(BaseFile(name, kind, path))
    seeds += _png_seeds(cache_dir, nih_images, png_count, full_size=False)
    if full_size:
        seeds += _png_seeds(cache_dir, nih_images, 1, full_size=True)[:1]
    return {s.name: s for s in seeds}
