"""Model packages from torch: export with the ONNX Runtime vs torch check, a training run ->
a package with its card, and conversion of public CheXNet weights.

Entry points: :func:`.export.export_package`, :func:`.export_run.export_run` (``chexnet
export``), :func:`.importers.import_weights` / :func:`.importers.convert` (``chexnet import``),
:func:`.safe_load.safe_torch_load`.
"""
