"""chexnet.inference.io: read chest X-ray files (DICOM, PNG, JPEG), refusing bad ones by name.

The public API (loaded on first use, so importing this package loads neither pydicom nor
Pillow, let alone ONNX Runtime):

* :func:`load_image` (a file -> :class:`Image`); :func:`open_image_file` (a file -> an
  :class:`ImageFile`, its DICOM header parsed once, then ``.load()`` and ``.header_rows()``);
* :func:`scan` (files and folders -> :class:`Study` / :class:`Series` / :class:`Instance`,
  in a :class:`ScanResult`), :func:`iter_files`;
* :class:`Image`, :class:`ImageMetadata`, :class:`Window`; :data:`DEFAULT_MAX_PIXELS`.

``header_rows`` and ``sniff`` are functions of the modules of the same name (not re-exported:
the name would hide the module): ``from chexnet.inference.io.header_rows import header_rows``.
"""

from chexnet.inference.facade import lazy_facade

__getattr__, __dir__, __all__ = lazy_facade(__name__, {
    "load_image": "image_file", "open_image_file": "image_file", "ImageFile": "image_file",
    "scan": "study", "iter_files": "study", "ScanResult": "study", "Study": "study",
    "Series": "study", "Instance": "study",
    "Image": "image", "ImageMetadata": "image", "Window": "image",
    "DEFAULT_MAX_PIXELS": "dicom_reader",
})
