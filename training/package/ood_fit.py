"""Fit a package's out-of-distribution check on its reference (training) images.

Steps (``chexnet-train ood-fit``): run the package's own preprocessing and graph over the
reference images and take the pooled feature map (:mod:`.ood_graph`); estimate their mean and a
shrunk covariance; score every reference image *cross-fitted* (by statistics fitted on the
other folds: an image scored by statistics it helped fit lies closer than a new image of the
same kind, markedly so with a few hundred images in 1024 dimensions); set the limit at a stated
percentile of those scores; write the graph with ``ood_score`` and the card's ``ood`` entry.
The new package's probs and cams must equal the old one's (the surgery only adds nodes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from chexnet.inference.errors import ChexnetError
from chexnet.inference.io.image_file import load_image
from chexnet.inference.package.card import INPUT_NAME, OOD_NAME, ModelCard, attach_card
from chexnet.inference.package.verify import open_package
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prepare import prepare_input
from chexnet.training.package.export import save_checked
from chexnet.training.package.graph_check_inputs import first_model_inputs
from chexnet.training.package.ood_graph import (
    POOLED_NAME,
    add_ood_score,
    find_feature_map,
    with_pooled_features,
)

log = logging.getLogger(__name__)

ESTIMATORS = ("oas", "ledoit-wolf", "empirical")
DEFAULT_PERCENTILE = 99.5
DEFAULT_FOLDS = 5
CITATION = ("Lee, Lee, Lee, Shin 2018: A simple unified framework for detecting "
            "out-of-distribution samples and adversarial attacks (NeurIPS)")


@dataclass(frozen=True)
class Gaussian:
    """Mean and whitening factor (precision = W W^T) of the reference features."""

    mean: np.ndarray  # [K]
    whitening: np.ndarray  # [K, k]
    covariance: str  # estimator, e.g. "ledoit-wolf (shrinkage 0.31)"

    def distance(self, features: np.ndarray) -> np.ndarray:
        """The Mahalanobis distance (not squared) of each row, in float64."""
        return np.linalg.norm((np.asarray(features, np.float64) - self.mean) @ self.whitening,
                              axis=1)


def fit_gaussian(features: np.ndarray, estimator: str = "oas") -> Gaussian:
    """``oas`` (Chen et al. 2010, Oracle Approximating Shrinkage; the default: on the bundled
    model's training images it refused as few held-out training images as Ledoit-Wolf, 1%, and
    more out-of-distribution ones, docs/decisions.md), ``ledoit-wolf``: sklearn's shrunk
    covariance estimates; ``empirical``: the
    sample covariance (singular with fewer images than features: for comparison only);
    ``pca-K``: the top K principal components, whitened (the residual is ignored)."""
    from sklearn.covariance import OAS, EmpiricalCovariance, LedoitWolf

    x = np.asarray(features, np.float64)
    mean = x.mean(axis=0)
    if estimator.startswith("pca-"):
        k = int(estimator[4:])
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = s[:k] ** 2 / max(len(x) - 1, 1)
        return Gaussian(mean, vt[:k].T / np.sqrt(np.maximum(var, 1e-12)), estimator)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)} or pca-K, "
                         f"not {estimator!r}")
    fitted = {"ledoit-wolf": LedoitWolf, "oas": OAS, "empirical": EmpiricalCovariance}[
        estimator]().fit(x)
    cov = fitted.covariance_
    cov = (cov + cov.T) / 2 + np.eye(len(cov)) * 1e-9 * np.trace(cov) / len(cov)
    precision = np.linalg.inv(cov)
    whitening = np.linalg.cholesky((precision + precision.T) / 2)
    shrinkage = getattr(fitted, "shrinkage_", None)
    name = estimator if shrinkage is None else f"{estimator} (shrinkage {shrinkage:.3f})"
    return Gaussian(mean, whitening, name)


def cross_fitted_scores(features: np.ndarray, estimator: str = "oas",
                        folds: int = DEFAULT_FOLDS, seed: int = 0) -> np.ndarray:
    """Each row's distance under statistics fitted on the other folds (seeded folds)."""
    n = len(features)
    if folds < 2 or n < 2 * folds:
        raise ValueError(f"{n} reference images are too few for {folds}-fold cross-fitting "
                         "(give more images or fewer --folds)")
    fold = np.random.default_rng(seed).permutation(n) % folds
    scores = np.empty(n)
    for f in range(folds):
        scores[fold == f] = fit_gaussian(features[fold != f], estimator).distance(
            features[fold == f])
    return scores


class FeatureExtractor:
    """The package's graph with its pooled feature map as an extra output, in ONNX Runtime."""

    def __init__(self, package: str | Path, threads: int | None = None) -> None:
        self.package = open_package(package)
        model = onnx.load(str(self.package.path))
        self.feature_map = find_feature_map(model)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            with_pooled_features(model, self.feature_map).SerializeToString(), options,
            providers=["CPUExecutionProvider"])

    def features(self, inputs: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Pooled features [N, K] of preprocessed model inputs [N, C, S, S]."""
        step = 1 if self.package.fixed_batch else batch_size
        return np.concatenate([
            self.session.run([POOLED_NAME], {INPUT_NAME: np.ascontiguousarray(
                inputs[i:i + step], np.float32)})[0] for i in range(0, len(inputs), step)])

    def image_features(self, paths: Iterable[Path], batch_size: int = 8
                       ) -> tuple[np.ndarray, list[str]]:
        """Pooled features of image files through the package's own preprocessing (centre
        crop), and what was skipped (unreadable, or refused by the intended-use gate)."""
        rows, skipped, pending = [], [], []
        for path in paths:
            try:
                prepared = prepare_input(load_image(path), self.package.card.preprocess)
            except (ChexnetError, OSError, ValueError) as err:
                skipped.append(f"{path}: {err}")
                continue
            if not prepared.analyse:
                skipped.append(f"{path}: {'; '.join(prepared.reasons)}")
                continue
            pending.append(prepared.model_input())
            if len(pending) >= batch_size:
                rows.append(self.features(np.concatenate(pending), batch_size))
                pending = []
        if pending:
            rows.append(self.features(np.concatenate(pending), batch_size))
        if not rows:
            raise ValueError("no reference image could be read and analysed")
        return np.concatenate(rows), skipped


@dataclass(frozen=True)
class OodFit:
    path: Path
    card: ModelCard
    n_reference: int
    skipped: tuple[str, ...]
    max_abs_diff_probs: float
    max_abs_diff_cams: float


def ood_entry(features: np.ndarray, gaussian: Gaussian, feature_map: str, *,
              estimator: str, percentile: float, folds: int, reference_data: str) -> dict:
    """The card's ``ood`` entry (schema: :class:`~chexnet.inference.package.card.ModelCard`)."""
    scores = cross_fitted_scores(features, estimator, folds)
    threshold = float(np.percentile(scores, percentile))
    in_sample = gaussian.distance(features)
    return {
        "method": "Mahalanobis distance of the globally average-pooled last feature map to the "
                  "reference images' Gaussian (one mean, shrunk covariance)",
        "score": "mahalanobis_distance", "citation": CITATION,
        "feature_tensor": feature_map, "feature_dim": int(features.shape[1]),
        "n_reference": len(features), "reference_data": reference_data,
        "covariance": gaussian.covariance, "percentile": percentile,
        "threshold": round(threshold, 4),
        "threshold_rule": f"the {percentile:g}th percentile of the {len(features)} reference "
                          f"images' {folds}-fold cross-fitted scores (each image scored by "
                          "statistics fitted without it; centre crop)",
        "reference_scores": {"cross_fitted_median": round(float(np.median(scores)), 3),
                             "in_sample_median": round(float(np.median(in_sample)), 3),
                             "cross_fitted_rejected": int((scores > threshold).sum())},
        "rates": [],
    }


def fit_ood_package(package: str | Path, images: Sequence[Path], out: str | Path, *,
                    reference_data: str, estimator: str = "oas",
                    percentile: float = DEFAULT_PERCENTILE, folds: int = DEFAULT_FOLDS,
                    batch_size: int = 8, threads: int | None = None) -> OodFit:
    """Fit the check on ``images`` and write ``package`` + check to ``out`` (atomically, only
    once ONNX Runtime gives the same probs and cams as the original on a few references)."""
    if not 50 <= percentile < 100:
        raise ValueError(f"percentile must be in [50, 100), not {percentile}")
    extractor = FeatureExtractor(package, threads)
    features, skipped = extractor.image_features(images, batch_size)
    log.info("pooled features of %d reference images (%d skipped)", len(features), len(skipped))
    gaussian = fit_gaussian(features, estimator)
    entry = ood_entry(features, gaussian, extractor.feature_map, estimator=estimator,
                      percentile=percentile, folds=folds, reference_data=reference_data)
    card = replace(extractor.package.card, ood=entry)
    proto = add_ood_score(onnx.load(str(extractor.package.path)), gaussian.mean,
                          gaussian.whitening, extractor.feature_map)
    attach_card(proto, card)
    onnx.checker.check_model(proto)
    check = first_model_inputs(images, extractor.package.card.preprocess)
    diffs = save_checked(proto, Path(out),
                         lambda staged: compare_outputs(extractor.package.path, staged, check,
                                                        gaussian))
    return OodFit(Path(out), card, len(features), tuple(skipped), *diffs)


def compare_outputs(old: Path, new: Path, inputs: np.ndarray, gaussian: Gaussian
                    ) -> tuple[float, float]:
    """Max |probs| and |cams| differences between two packages on ``inputs``; raise unless
    they are equal within 1e-6 and the new graph's ``ood_score`` is the numpy distance."""
    a, b = Engine(old, device="cpu"), Engine(new, device="cpu")
    x, y = a.run(inputs), b.run(inputs)
    dp = float(np.max(np.abs(x.probs - y.probs)))
    dc = float(np.max(np.abs(x.cams - y.cams)))
    if dp > 1e-6 or dc > 1e-6 or y.ood is None:
        raise RuntimeError(f"{new.name}: the surgery changed the model's outputs (max |probs "
                           f"diff| {dp:.1e}, |cams diff| {dc:.1e}) or added no {OOD_NAME}")
    expected = gaussian.distance(FeatureExtractor(old).features(inputs))
    if not np.allclose(y.ood, expected, rtol=1e-3, atol=1e-3):
        raise RuntimeError(f"{new.name}: graph {OOD_NAME} {y.ood} != numpy {expected}")
    return dp, dc


def with_ood_check(proto: onnx.ModelProto, inputs: np.ndarray, *, reference_data: str,
                   estimator: str = "oas", percentile: float = DEFAULT_PERCENTILE,
                   folds: int = DEFAULT_FOLDS) -> tuple[onnx.ModelProto, dict]:
    """A fresh export's graph plus the check fitted on ``inputs`` (the reference images'
    preprocessed model inputs [N, C, S, S]), and the card's ``ood`` entry."""
    feature_map = find_feature_map(proto)
    session = ort.InferenceSession(with_pooled_features(proto, feature_map).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    features = np.concatenate([session.run([POOLED_NAME], {INPUT_NAME: np.ascontiguousarray(
        inputs[i:i + 8], np.float32)})[0] for i in range(0, len(inputs), 8)])
    gaussian = fit_gaussian(features, estimator)
    entry = ood_entry(features, gaussian, feature_map, estimator=estimator,
                      percentile=percentile, folds=folds, reference_data=reference_data)
    return add_ood_score(proto, gaussian.mean, gaussian.whitening, feature_map), entry
