"""``chexnet eval``: metrics (numpy + scikit-learn), inputs, radiologist and CAM comparisons,
report.md and figures. Never imports torch.

Entry points: :func:`.evaluate.evaluate` with :class:`.evaluate.EvalOptions`; the metrics
themselves are in :mod:`.metrics` (training and export share them).
"""
