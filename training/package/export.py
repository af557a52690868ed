"""Export a trained model to a chexnet model package and prove it matches torch.

Following timm's ``utils/onnx.py`` habit: export, run ``onnx.checker``, then run the file in ONNX
Runtime beside torch on the same inputs and refuse to report success unless they agree.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnx
import torch

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.package.card import (
    CAMS_NAME,
    CHESTXRAY14_LABELS,
    INPUT_NAME,
    PROBS_NAME,
    ModelCard,
    attach_card,
)
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.inference.scoring.engine import Engine
from chexnet.training.evaluation.markdown import plural
from chexnet.training.fit.cam_model import ARCHS, CamClassifier, ExportWrapper, build_model
from chexnet.training.package.fp16_parity import allowed_precision, measure_fp16_parity

log = logging.getLogger(__name__)
T = TypeVar("T")

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
                   check_inputs: np.ndarray | None = None,
                   ood_inputs: np.ndarray | None = None, ood_reference: str = "") -> ExportReport:
    """Write ``model`` with ``card`` to ``out`` (.onnx) and verify it against torch.

    ``check_inputs`` are preprocessed images [N, C, S, S]; random ones are used when omitted
    (pass real images: they exercise realistic activation ranges). ``ood_inputs``: the
    training images' preprocessed inputs; given, the package gets the out-of-distribution
    check fitted on them (:mod:`.ood_fit`; ``ood_reference`` describes them in the card).
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
        # The TorchScript exporter: it gives a dynamic batch axis from a batch-1 example and
        # ONNX Runtime fuses its graph well. The torch.export-based exporter (default since
        # torch 2.9) specialises the batch dimension to the example's; revisit when it does not.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    message=r".*legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            torch.onnx.export(wrapper, (dummy,), str(raw), input_names=[INPUT_NAME],
                              output_names=[PROBS_NAME, CAMS_NAME], opset_version=OPSET,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, PROBS_NAME: {0: "batch"},
                                            CAMS_NAME: {0: "batch"}},
                              dynamo=False)
        proto = onnx.load(str(raw))
    proto.producer_name = "chexnet"
    proto.doc_string = (f"{card.name} {card.version}: {card.arch}, "
                        f"{plural(len(card.labels), 'label')}")
    if ood_inputs is not None:
        from chexnet.training.package.ood_fit import with_ood_check  # it imports this module

        proto, entry = with_ood_check(proto, ood_inputs, reference_data=ood_reference)
        card = replace(card, ood=entry)
    parity = measure_fp16_parity(proto, check_inputs)
    card = replace(card, precision=allowed_precision(parity), fp16_parity=parity)
    attach_card(proto, card)
    onnx.checker.check_model(proto, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = save_checked(proto, out,
                          lambda staged: verify_export(wrapper, staged, check_inputs))
    report = ExportReport(out, report.max_abs_diff_probs, report.max_abs_diff_cams,
                          report.n_inputs)
    log.info("exported %s: max |probs diff| %.2e, max |cams diff| %.2e on %d inputs; "
             "precision %s (fp16 parity %s)", out, report.max_abs_diff_probs,
             report.max_abs_diff_cams, report.n_inputs, card.precision,
             parity.get("max_abs_diff", "unmeasured"))
    return report


def save_checked(proto: onnx.ModelProto, out: Path, check: Callable[[Path], T]) -> T:
    """Write ``proto`` to ``out`` only if ``check`` accepts it: ``check`` gets the file staged
    in a temporary folder (named ``<out>.part``); then the same bytes replace ``out`` through
    the one atomic writer. A refused or interrupted export leaves ``out`` as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / (out.name + ".part")
        onnx.save(proto, str(staged))
        result = check(staged)
        write_atomic(out, staged.read_bytes())
    return result


def verify_export(wrapper: ExportWrapper, path: Path, inputs: np.ndarray) -> ExportReport:
    """Run the package at ``path`` in ONNX Runtime beside torch on ``inputs``; raise
    :class:`ExportMismatchError` unless they agree within the tolerances."""
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


def untrained_card(arch: str = "densenet121") -> ModelCard:
    """The card of a random-weights package (``main``): says loudly that it means nothing."""
    return ModelCard(
        name=f"untrained-{arch}", version="0.0.0", labels=CHESTXRAY14_LABELS,
        preprocess=PreprocessSpec(), thresholds={}, demo=True, arch=arch,
        description="UNTRAINED: random weights, seed 0. Its scores and heatmaps are meaningless; "
                    "it exists to exercise the pipeline until a trained model is installed.",
        training_data={"images": 0, "note": "none: never trained"})


def main(argv: list[str] | None = None) -> int:
    """``python -m chexnet.training.package.export --untrained densenet121 --out model.onnx``."""
    parser = argparse.ArgumentParser(
        prog="python -m chexnet.training.package.export",
        description="Write an UNTRAINED (random weights) model package, checked against torch, "
                    "to try the pipeline end to end. Its scores mean nothing; the card says so.")
    parser.add_argument("--untrained", choices=ARCHS, required=True, help="backbone")
    parser.add_argument("--out", required=True, type=Path, help="output .onnx path")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    report = export_package(build_model(args.untrained, 14), untrained_card(args.untrained),
                            args.out)
    print(f"wrote {report.path} (ONNX Runtime vs torch: max |probs diff| "  # noqa: T201
          f"{report.max_abs_diff_probs:.1e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
