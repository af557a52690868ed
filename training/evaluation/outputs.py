"""Outputs of ``chexnet eval``: metrics.json, readers.json, report.md and the ROC figures.

Every string that comes from an input file (labels, image names, reader IDs, paths) goes
through :func:`~chexnet.training.evaluation.markdown.md_escape` before it reaches report.md, so
a file cannot inject markup.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from chexnet.training.data.labels import finding_columns
from chexnet.training.evaluation import calibration_report, confusion, metrics, published
from chexnet.training.evaluation import roc_plots as report_plots
from chexnet.training.evaluation import tta_comparison as eval_tta
from chexnet.training.evaluation.markdown import chosen_by_text, md_escape, plural


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(_json_ready(doc), indent=2, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(ci, digits: int = 3) -> str:
    return "–" if not ci else f"{ci[0]:.{digits}f} – {ci[1]:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _rel(path: Path, out: Path) -> str:
    return path.relative_to(out).as_posix()


def write_outputs(out: Path, data, result: dict, readers=None) -> list[Path]:
    """Write figures, metrics.json, readers.json (with ``readers``) and report.md (with the
    test-time augmentation section when ``result`` has one) into ``out``.

    ``data`` is the evaluated set (ids, patients, labels, y, probs); ``readers`` is
    ``(ReaderComparison, probs aligned to it, labels)`` or None."""
    out.mkdir(parents=True, exist_ok=True)
    cols = finding_columns(data.labels)
    abn_y, abn_s = metrics.abnormal_truth_and_score(data.y[:, cols], data.probs[:, cols])
    abn_entry = {"auroc": result["abnormal_auroc"], "auroc_ci": result["abnormal_auroc_ci"],
                 "auroc_reason": result["abnormal_auroc_reason"], "threshold": None}
    figs = report_plots.plot_class_rocs(out / "roc", data.y, data.probs, data.labels,
                                        result["per_class"], (abn_y, abn_s, abn_entry))
    result["figures"] = {k: _rel(p, out) for k, p in figs.items()}
    files = [write_json(out / "metrics.json", result), *figs.values()]
    reader_figs = {}
    if readers is not None:
        comparison, probs, labels = readers
        reader_figs = report_plots.plot_reader_rocs(out / "readers_roc", labels, probs,
                                                    comparison)
        comparison.summary["figures"] = {k: _rel(p, out) for k, p in reader_figs.items()}
        files += [write_json(out / "readers.json", comparison.summary), *reader_figs.values()]
    text = "\n".join(report_lines(result, readers[0].summary if readers else None)) + "\n"
    if "calibration" in result:
        files.append(calibration_report.plot_reliability(out / calibration_report.FIGURE,
                                                         result["calibration"]))
        text += "\n" + "\n".join(calibration_report.report_lines(result["calibration"]))
    if "tta" in result:
        text += "\n" + "\n".join(eval_tta.report_lines(result["tta"]))
    (out / "report.md").write_text(text, encoding="utf-8")
    return [out / "report.md", *files]


def report_lines(m: dict, readers: dict | None = None) -> list[str]:
    """report.md, from the metrics.json document (and readers.json's)."""
    lines = ["# chexnet evaluation report", ""]
    inputs = m.get("inputs", {})
    model = inputs.get("model")
    if model:
        lines.append(f"- Model: {md_escape(model['name'])} {md_escape(model['version'])} "
                     f"(sha256 {md_escape(model['sha256'][:12])}, {md_escape(model['provider'])})"
                     + (f", {chosen_by_text(model['chosen_by'])}" if model.get("chosen_by")
                        else "")
                     + (" — **DEMO model: its scores mean nothing clinically**"
                        if model.get("demo") else ""))
    for key, name in (("predictions", "Predictions"), ("data", "Images"), ("labels", "Labels"),
                      ("readers", "Radiologist reads"), ("bbox", "Boxes")):
        if inputs.get(key):
            lines.append(f"- {name}: {md_escape(inputs[key])}"
                         + (" (found in the --data folder)" if key == "labels"
                            and inputs.get("labels_found_in_data") else ""))
    made_by = inputs.get("predictions_model")
    if made_by:
        lines.append(f"- Predictions made by: model sha256 "
                     f"{', '.join(md_escape(h[:12]) for h in made_by['sha256'])}"
                     + (" — **DEMO model: its scores mean nothing clinically**"
                        if made_by.get("demo") else ""))
    lines += [f"- Images evaluated: {m['n_images']} from {m['n_patients']} patients",
              f"- Thresholds: {md_escape(m.get('thresholds_source', ''))}", ""]
    if m.get("notes"):
        lines += ["## Left out", ""]
        lines += [f"- {md_escape(n)}" for n in m["notes"]]
        lines.append("")
    lines += _auroc_section(m) + _operating_section(m) + _ranking_section(m)
    if m.get("confusion"):
        lines += confusion.report_lines(m["confusion"])
    lines += published.report_lines(m, _table)
    if m.get("pointing_game"):
        lines += _pointing_section(m["pointing_game"])
    if readers:
        lines += _readers_section(readers)
    return lines


def _auroc_section(m: dict) -> list[str]:
    boot = m["bootstrap"]
    rows = [[md_escape(lb), str(e["n_positive"]), str(e["n_negative"]), _f(e["auroc"], 4),
             _ci(e["auroc_ci"], 4) if e["auroc"] is not None else md_escape(e["auroc_reason"])]
            for lb, e in m["per_class"].items()]
    lines = ["## AUROC per class", "",
             f"95% confidence intervals from {boot['n_resamples']} patient-level bootstrap "
             f"resamples (patients drawn with replacement, all their images taken; seed "
             f"{boot['seed']}; percentile method).", ""]
    lines += _table(["Finding", "Positives", "Negatives", "AUROC", "95% CI"], rows)
    lines.append(f"**Mean AUROC: {_f(m['mean_auroc'], 4)}** (95% CI {_ci(m['mean_auroc_ci'], 4)}) "
                 f"over {plural(len(m['mean_auroc_over']), 'class')}.")
    if m["mean_auroc_excluded"]:
        lines.append(" Excluded (AUROC undefined): " + ", ".join(
            f"{md_escape(lb)} ({md_escape(r)})" for lb, r in m["mean_auroc_excluded"].items())
            + ".")
    lines += ["", f"Normal vs abnormal ({m['abnormal_definition']}): AUROC "
              f"{_f(m['abnormal_auroc'], 4)} (95% CI {_ci(m['abnormal_auroc_ci'], 4)}), "
              f"{m['n_abnormal']} abnormal of {m['n_images']} images.", "",
              "![ROC curves of every class](roc_grid.png)", ""]
    figs = m.get("figures", {})
    links = [f"[{md_escape(lb)}]({figs[lb]})" for lb in m["per_class"] if lb in figs]
    lines += ["Per-class ROC curves: " + ", ".join(links) + ".", ""]
    return lines


def _operating_section(m: dict) -> list[str]:
    rows = [[md_escape(lb), _f(e["threshold"]), md_escape(e.get("threshold_rule", "")),
             _f(e["sensitivity"]), _f(e["specificity"]), _f(e["ppv"]), _f(e["f1"]),
             _f(e["top3_sensitivity"])]
            for lb, e in m["per_class"].items()]
    return ["## At the operating thresholds", "",
            "A finding is called when its probability is at least the threshold. Top-3 "
            "sensitivity: the share of the finding's positive images where it is among the "
            "image's 3 most probable findings (normal / No Finding is not a finding: it is not "
            "ranked).", "",
            *_table(["Finding", "Threshold", "Threshold chosen by", "Sensitivity",
                     "Specificity", "PPV", "F1", "Top-3 sensitivity"], rows)]


def _ranking_section(m: dict) -> list[str]:
    top3 = m["top3_sensitivity"]
    return ["## Ranking metrics (hospital CAD paper)", "",
            f"- Per-image average precision: {_f(m['per_image_average_precision'])} over "
            f"{m['per_image_average_precision_n_images']} images with at least one finding "
            "(findings ranked by probability; an image's AP is the mean, over its true "
            "findings, of the true findings ranked at or above it divided by its rank; images "
            "without a finding are left out; normal / No Finding is the absence of findings, "
            "never ranked or counted as one).",
            f"- The same over the {m['per_image_average_precision_multi_label_n_images']} images "
            f"with two or more findings (the paper's multi-disease task): "
            f"{_f(m['per_image_average_precision_multi_label'])}.",
            f"- Top-{top3['k']} sensitivity over all (image, true finding) pairs: "
            f"{_f(top3['overall'])}.", ""]


def _pointing_section(pg: dict) -> list[str]:
    rows = [[md_escape(lb), str(e["n_boxes"]), str(e["hits"]), _f(e["hit_rate"])]
            for lb, e in pg["per_class"].items()]
    skipped = ", ".join(f"{n} ({k.replace('_', ' ')})" for k, n in pg["skipped_boxes"].items()
                        if n) or "none"
    tolerance = pg.get("tolerance_px") or 0
    where = ("inside the radiologist's box" if tolerance <= 0 else
             f"inside the radiologist's box or within {tolerance:g} px of it")
    return ["## Localisation: CAM pointing game", "",
            "A box is hit when the peak of that finding's class activation map, mapped onto "
            f"the image, lies {where}. Overall hit rate "
            f"{_f(pg['hit_rate'])} over {pg['n_boxes']} boxes; boxes skipped: {skipped}.", "",
            *_table(["Finding", "Boxes", "Hits", "Hit rate"], rows)]


def _readers_section(r: dict) -> list[str]:
    boot = r["bootstrap"]
    lines = ["## Radiologists", "",
             f"Truth: {md_escape(r['truth'])}"
             + (f" ({', '.join(md_escape(p) for p in r['panel'])})" if r["panel"] else "")
             + f"; {md_escape(r['majority_rule'])}. Readers compared: "
             + ", ".join(md_escape(x) for x in r["comparison_readers"])
             + f". {r['n_images']} images of {r['n_patients']} patients with both model "
             f"predictions and reads ({r['reader_images_without_predictions']} read images have "
             f"no prediction, {r['evaluated_images_without_reads']} evaluated images have no "
             "reads; both left out here).", ""]
    if r.get("panel_vs_labels"):
        pv = r["panel_vs_labels"]
        lines += [f"The panel's majority agrees with --labels on {pv['agree']} of {pv['total']} "
                  "image-finding pairs.", ""]
    lines += [f"The model's F1 is at its threshold; the CI of (model F1 - mean reader F1) comes "
              f"from {boot['n_resamples']} patient-level bootstrap resamples.", ""]
    rows = []
    for lb, e in r["per_finding"].items():
        first = True
        for reader, s in e["readers"].items():
            rows.append([md_escape(lb) if first else "", f"reader {md_escape(reader)}",
                         str(s["n_positive"]), str(s["ties"]), _f(s["sensitivity"]),
                         _f(s["specificity"]), _f(s["f1"])])
            first = False
        mr, mo = e["mean_reader"], e["model"]
        rows.append(["", "mean reader", "", "", _f(mr["sensitivity"]), _f(mr["specificity"]),
                     _f(mr["f1"])])
        who = "model" if r["mode"] == "panel" else "model, mean over the readers' truths"
        rows.append(["", f"{who} (threshold {e['threshold']:.3g})", "", "",
                     _f(mo["sensitivity"]), _f(mo["specificity"]), _f(mo["f1"])])
    lines += _table(["Finding", "Who", "Positives in truth", "Ties in truth (absent)",
                     "Sensitivity", "Specificity", "F1"], rows)
    rows = [[md_escape(lb), _f(e["mean_reader"]["f1"]), _f(e["model"]["f1"]),
             "–" if e["f1_difference"] is None else f"{e['f1_difference']:+.3f}",
             _ci(e["f1_difference_ci"])] for lb, e in r["per_finding"].items()]
    lines += ["F1, model against readers:", "",
              *_table(["Finding", "Mean reader F1", "Model F1", "Model - readers",
                       "95% CI"], rows)]
    figs = r.get("figures", {})
    links = [f"[{md_escape(lb)}]({figs[lb]})" for lb in r["per_finding"] if lb in figs]
    lines += ["ROC curves with the readers' operating points: " + ", ".join(links) + ".", ""]
    return lines
