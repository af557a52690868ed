"""chexnet.inference: load chest X-rays, run a model package in ONNX Runtime, map CAMs.

Imports no Qt, no torch (an import-linter contract in pyproject.toml, checked by the tests).
"""

from .card import CHESTXRAY14_LABELS, ModelCard, attach_card
from .engine import Engine
from .errors import ChexnetError, ChexnetInputError, ModelPackageError
from .image import Image, ImageMetadata, Window
from .intended_use import GateDecision, check_intended_use
from .prediction import Finding, ModelId, Prediction
from .preprocess import CropBox, PreprocessSpec, preprocess
from .study import Instance, Series, Study, load_image, scan

__all__ = [
    "CHESTXRAY14_LABELS", "ChexnetError", "ChexnetInputError", "CropBox", "Engine", "Finding",
    "GateDecision", "Image", "ImageMetadata", "Instance", "ModelCard", "ModelId",
    "ModelPackageError", "Prediction", "PreprocessSpec", "Series", "Study", "Window",
    "attach_card", "check_intended_use", "load_image", "preprocess", "scan",
]
