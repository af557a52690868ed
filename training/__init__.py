"""chexnet.training: torch code that produces model packages, and their evaluation.

Subpackages: ``data`` (label files, patient splits, image cache, phantoms), ``fit`` (CAM model,
training loop, run folder), ``package`` (export and import of model packages), ``evaluation``
(``chexnet eval``, torch-free), ``reports`` (labels mined from free-text reports), ``cli``.

Never imported by chexnet.app; chexnet.inference reaches its `export` and `eval` commands only
through the `chexnet.commands` entry points, and they import torch only when they run.
"""
