"""Export a trained model to a chexnet model package and prove it matches torch.

Following timm's ``utils/onnx.py`` habit: export, run ``onnx.checker``, then run the file in ONNX
Runtime beside torch on the same inputs and refuse to report success unless they agree.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from chexnet.inference.card import CAMS_NAME, INPUT_NAME, PROBS_NAME, ModelCard, attach_card
from chexnet.inference.engine import Engine

from .cam_model import CamClassifier, ExportWrapper

log = logging.getLogger(__name__)

#: Largest accepted |probs_onnx - probs_torch| (the issue's contract).
PROBS_TOLERANCE = 1e-4
OPSET = 17


class ExportMismatchError(RuntimeError):
    """ONNX Runtime disagrees with torch on the exported graph."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff_probs: float
    max_abs_diff_cams: float
    n_inputs: int


def export_package(model: CamClassifier, card: ModelCard, out: str | Path,
                   check_inputs: np.ndarray | None = None) -> ExportReport:
    """Write ``model`` with ``card`` to ``out`` (.onnx) and verify it against torch.

    ``check_inputs`` are preprocessed images [N, C, S, S]; random ones are used when omitted
    (pass real images: they exercise realistic activation ranges).
    """
    out = Path(out)
    spec = card.preprocess
    model = model.eval().float().cpu()
    if check_inputs is None:
        check_inputs = np.random.default_rng(0).standard_normal(
            (2, spec.channels, spec.size, spec.size)).astype(np.float32)
    wrapper = ExportWrapper(model).eval()
    dummy = torch.from_numpy(np.ascontiguousarray(check_inputs[:1]))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.no_grad():
            torch.onnx.export(wrapper, (dummy,), str(raw), input_names=[INPUT_NAME],
                              output_names=[PROBS_NAME, CAMS_NAME], opset_version=OPSET,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, PROBS_NAME: {0: "batch"},
                                            CAMS_NAME: {0: "batch"}},
                              dynamo=False)
        proto = onnx.load(str(raw))
    proto.producer_name = "chexnet"
    proto.doc_string = f"{card.name} {card.version}: {card.arch}, {len(card.labels)} labels"
    attach_card(proto, card)
    onnx.checker.check_model(proto, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".part")
    onnx.save(proto, str(tmp_out))
    try:
        report = _verify(wrapper, tmp_out, check_inputs)
    except Exception:
        tmp_out.unlink(missing_ok=True)
        raise
    tmp_out.replace(out)
    report = ExportReport(out, report.max_abs_diff_probs, report.max_abs_diff_cams,
                          report.n_inputs)
    log.info("exported %s: max |probs diff| %.2e, max |cams diff| %.2e on %d inputs",
             out, report.max_abs_diff_probs, report.max_abs_diff_cams, report.n_inputs)
    return report


def _verify(wrapper: ExportWrapper, path: Path, inputs: np.ndarray) -> ExportReport:
    engine = Engine(path, device="cpu")  # also validates the card against the graph
    got = engine.run(inputs)
    with torch.no_grad():
        p, c = wrapper(torch.from_numpy(np.ascontiguousarray(inputs)))
    dp = float(np.max(np.abs(got.probs - p.numpy())))
    dc = float(np.max(np.abs(got.cams - c.numpy())))
    scale = float(np.max(np.abs(c.numpy()))) or 1.0
    if dp > PROBS_TOLERANCE or dc > 1e-3 * scale:
        raise ExportMismatchError(
            f"{path.name}: ONNX Runtime and torch disagree (max |probs diff| {dp:.2e}, "
            f"limit {PROBS_TOLERANCE:.0e}; max |cams diff| {dc:.2e})")
    return ExportReport(path, dp, dc, len(inputs))
