"""chexnet.inference: load chest X-rays, run a model package in ONNX Runtime, map CAMs.

Imports no Qt, no torch (import-linter contracts in pyproject.toml, checked by the tests).
The names below are loaded on first use, so importing a light subpackage (``io``) never loads
ONNX Runtime. The layers, top to bottom (see docs/architecture.md): ``cli`` > ``screen`` >
``render`` > ``scoring`` > ``package`` > ``io`` > ``preprocessing`` / ``errors`` / ``atomic_file``.
"""

from chexnet.inference.facade import lazy_facade

__getattr__, __dir__, __all__ = lazy_facade(__name__, {
    "CHESTXRAY14_LABELS": "package.card", "ModelCard": "package.card",
    "attach_card": "package.card",
    "Engine": "scoring.engine",
    "ChexnetError": "errors", "ChexnetInputError": "errors", "ModelPackageError": "errors",
    "Image": "io.image", "ImageMetadata": "io.image", "Window": "io.image",
    "GateDecision": "scoring.intended_use", "check_intended_use": "scoring.intended_use",
    "Finding": "scoring.prediction", "ModelId": "scoring.prediction",
    "Prediction": "scoring.prediction",
    "CropBox": "preprocessing", "PreprocessSpec": "preprocessing", "preprocess": "preprocessing",
    "Instance": "io.study", "Series": "io.study", "Study": "io.study",
    "scan": "io.study", "load_image": "io.image_file", "open_image_file": "io.image_file",
    "ImageFile": "io.image_file",
})
