"""torchxrayvision DenseNet-121 weights (``--format torchxrayvision``).

The release files (legacy format) pickle the whole ``xrv.models.DenseNet`` and carry no
``op_threshs``: torchxrayvision's code supplies labels and operating points per weights name
(:mod:`.xrv_releases`). The release is found from ``variant`` or the file's name; a state dict
saved with its own ``op_threshs`` buffer works too. By default only the outputs the release
trained are kept (the others have an empty label and a NaN operating point).

Preprocessing as torchxrayvision's documented pipeline: 8-bit image scaled to [-1024, 1024]
(``xrv.datasets.normalize(img, 255)``), one channel, ``XRayCenterCrop`` (centred square) then
``XRayResizer(224)`` (skimage, linear, anti-aliased). No test-time augmentation. The package
outputs plain sigmoid probabilities (what ``apply_sigmoid=True`` gives); torchxrayvision's
``op_norm`` recalibration is not applied: its op_threshs are the card's thresholds instead,
which makes the same decisions.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import nn

from chexnet.inference.preprocessing import XRV_PREPROCESS
from chexnet.training.package.legacy_pickle import ModuleStub
from chexnet.training.package.safe_load import (
    XRV_WHOLE_GLOBALS,
    ImportFormatError,
    module_state,
    safe_torch_load,
)
from chexnet.training.package.sources.common import (
    NO_THRESHOLDS_RULE,
    Converted,
    as_state_dict,
    check_labels,
    densenet,
    fix_densenet_keys,
    keep_outputs,
)
from chexnet.training.package.sources.xrv_releases import (
    RELEASES,
    SOURCE,
    XRV_PATHOLOGIES,
    find_release,
)


def torchxrayvision(src: Path, labels: tuple[str, ...] | None,
                    variant: str | None) -> Converted:
    what = "a torchxrayvision DenseNet-121 (1 channel, 18 outputs)"
    try:
        release = find_release(variant, src.name)
    except ValueError as err:
        raise ImportFormatError(f"--variant: {err}") from None
    obj = safe_torch_load(src, XRV_WHOLE_GLOBALS)
    if isinstance(obj, nn.Module | ModuleStub):  # a released file: the whole pickled model
        obj = fix_densenet_keys(module_state(obj))
    state = as_state_dict(obj, src, "torchxrayvision")
    file_op = state.pop("op_threshs", None)
    model = densenet(state, src, what, in_channels=1)
    n_out = model.classifier.out_features
    if release is not None:
        full = labels or release.labels
        op = list(release.op_threshs)
        origin = f"the published op_threshs of {release.weights} ({SOURCE})"
    elif file_op is not None:
        full = labels or XRV_PATHOLOGIES
        op = file_op.double().flatten().tolist()
        origin = "torchxrayvision's op_threshs (per-output operating points shipped with the " \
                 "weights)"
    elif labels:
        full, op, origin = labels, [math.nan] * n_out, ""
    else:
        raise ImportFormatError(
            f"{src}: which torchxrayvision release is it? The file carries no op_threshs and "
            "its name names no release: give --variant (one of " + ", ".join(RELEASES)
            + "), or --labels (18 entries, empty = unused output)")
    check_labels(full, n_out, src, given=bool(labels))
    if len(op) != len(full):
        raise ImportFormatError(f"{src}: op_threshs has {len(op)} entries, the classifier "
                                f"{len(full)} outputs")
    keep = [i for i, lb in enumerate(full) if lb and (labels or math.isfinite(op[i]))]
    if not keep:
        raise ImportFormatError("--labels: every entry is empty; nothing to import")
    keep_outputs(model, keep)
    kept = tuple(full[i] for i in keep)
    thresholds = {full[i]: float(op[i]) for i in keep if math.isfinite(op[i])}
    rule = (origin + ("" if len(thresholds) == len(kept) else
                      "; labels without a finite op_threshs use 0.5")) if thresholds else \
        NO_THRESHOLDS_RULE
    name = release.weights if release else "unnamed weights"
    return Converted(
        model, kept, XRV_PREPROCESS, thresholds,
        f"Imported from torchxrayvision DenseNet-121 {name} (format torchxrayvision): "
        "1-channel input scaled to [-1024, 1024], centred square crop resized to 224 with "
        "skimage's anti-aliased linear resize (reproduced in numpy), no test-time augmentation. "
        "The package outputs plain sigmoid probabilities (torchxrayvision's op_norm "
        "recalibration is not applied); op_threshs are the card's thresholds. Outputs kept: "
        f"{len(kept)} of {n_out} (dropped: not trained by this release or an empty label).",
        rule=rule, extra={"xrv_weights": release.weights} if release else None)
