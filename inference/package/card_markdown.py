"""A model card for humans: Markdown rendered from the card inside a package.

``python -m chexnet.inference.package.card_markdown PKG > docs/model-card.md`` (the tests check
that the
bundled model's page is current).
"""

from __future__ import annotations

import sys

from chexnet.inference.package.card import DEMO_NOTICE, ModelCard
from chexnet.inference.package.verify import open_package


def _fmt(value: object) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _esc(text: object) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|"))


def card_markdown(card: ModelCard, sha256: str, file_name: str) -> str:
    lines = [f"# Model card: {_esc(card.name)} {_esc(card.version)}", ""]
    if card.demo:
        lines += [f"> **{DEMO_NOTICE}** " + _esc(card.description), ""]
    elif card.description:
        lines += [_esc(card.description), ""]
    p = card.preprocess
    lines += [
        f"- File: `{_esc(file_name)}`, sha256 `{sha256}`",
        f"- Architecture: {_esc(card.arch)}; {len(card.labels)} labels; created {card.created}",
        f"- Input: {p.channels} channel(s), shorter side resized to {p.resize} px, centre crop "
        f"{p.size} px, mean {list(p.mean)}, std {[round(s, 4) for s in p.std]}",
        f"- Operating thresholds: {_esc(card.threshold_rule)}",
        f"- Test-time augmentation assumed by the thresholds: {_esc(card.tta)}", ""]
    data = card.training_data or {}
    if data:
        lines += ["## Training data", "", f"- Source: `{_esc(data.get('source', '–'))}`",
                  f"- Split rule: {_esc(data.get('split_rule', '–'))}"]
        for split in ("train", "val", "test"):
            if split in data:
                lines.append(f"- {split}: {data[split]['images']} images of "
                             f"{data[split]['patients']} patients")
        lines.append("")
    command = card.extra.get("train_command")
    if command:
        lines += ["## Reproduce", "", "```", _esc(command), "```", ""]
    val = card.validation_metrics.get("auroc", {})
    test = card.extra.get("test_metrics", {})
    per_test = test.get("per_class", {})
    lines += ["## Metrics", "",
              "| Finding | threshold | validation AUROC | test AUROC (95% CI) | test positives |",
              "|---|---|---|---|---|"]
    for lb in card.labels:
        t = per_test.get(lb, {})
        ci = t.get("auroc_ci") or [None, None]
        test_auc = (f"{_fmt(t.get('auroc'))} ({_fmt(ci[0])}–{_fmt(ci[1])})"
                    if t.get("auroc") is not None else "–")
        lines.append(f"| {_esc(lb)} | {card.threshold(lb):.3f} | {_fmt(val.get(lb))} | "
                     f"{test_auc} | {_fmt(t.get('n_positive'))} |")
    if test:
        ci = test.get("mean_auroc_ci") or [None, None]
        lines += ["", f"Mean test AUROC {_fmt(test.get('mean_auroc'))} "
                      f"({_fmt(ci[0])}–{_fmt(ci[1])}) on {test.get('n_images')} images of "
                      f"{test.get('n_patients')} patients; {_esc(test.get('ci_method', ''))}."]
    lines.append("")
    return "\n".join(lines + _site_lines(card) + _ood_lines(card))


def _site_lines(card: ModelCard) -> list[str]:
    """The operating points a site chose with ``chexnet tune``: rule, sample, and per class
    what they measured there (patient-level bootstrap 95% CIs)."""
    site = card.extra.get("site_tuning")
    if not site:
        return []
    sample = site.get("sample", {})
    source = site.get("source", {})
    lines = ["## Site tuning", "",
             f"- {_esc(site.get('date'))}: rule `{_esc(site.get('rule'))}` on "
             f"{sample.get('n_images')} local images of {sample.get('n_patients')} patients "
             f"(labels `{_esc(sample.get('labels_file'))}`, sha256 "
             f"`{_esc(sample.get('labels_sha256'))}`)",
             f"- From {_esc(source.get('name'))} {_esc(source.get('version'))} (sha256 "
             f"`{_esc(source.get('sha256'))}`); {_esc(site.get('confidence_intervals'))}", "",
             "| Finding | threshold | sensitivity (95% CI) | specificity (95% CI) | positives |",
             "|---|---|---|---|---|"]
    for label, e in (site.get("classes") or {}).items():
        if e.get("kept"):
            lines.append(f"| {_esc(label)} | – | {_esc(e['kept'])} | | {e.get('n_positive')} |")
            continue
        sens = e.get("sensitivity_ci") or [None, None]
        spec = e.get("specificity_ci") or [None, None]
        lines.append(f"| {_esc(label)} | {_fmt(e.get('threshold'))} | "
                     f"{_fmt(e.get('sensitivity'))} ({_fmt(sens[0])}–{_fmt(sens[1])}) | "
                     f"{_fmt(e.get('specificity'))} ({_fmt(spec[0])}–{_fmt(spec[1])}) | "
                     f"{e.get('n_positive')} |")
    return [*lines, ""]


def _ood_lines(card: ModelCard) -> list[str]:
    """The out-of-distribution check: how it was made, its limit and its measured rates."""
    ood = card.ood
    if ood is None:
        return ["## Out-of-distribution check", "",
                "None: this package scores any image, chest radiograph or not.", ""]
    lines = ["## Out-of-distribution check", "",
             f"- Score: {_esc(ood.get('method', ood.get('score', '–')))} "
             f"(feature tensor `{_esc(ood.get('feature_tensor', '–'))}`, "
             f"{ood.get('feature_dim', '–')} features); {_esc(ood.get('citation', ''))}",
             f"- Reference images: {ood.get('n_reference', '–')} "
             f"({_esc(ood.get('reference_data', '–'))}); covariance "
             f"{_esc(ood.get('covariance', '–'))}",
             f"- Limit: {_fmt(float(ood['threshold']))}, {_esc(ood.get('threshold_rule', ''))}; "
             "an image scoring above it is not analysed", ""]
    rates = ood.get("rates") or []
    if rates:
        lines += ["| Images | should be | n | rejected by the check | rate | median score | "
                  "not analysed by the whole pipeline (by the header/pixel gate first) |",
                  "|---|---|---|---|---|---|---|"]
        kinds = {"in": "analysed", "out": "rejected", "info": "(informational)"}
        for r in rates:
            pipeline = (f"{r['not_analysed_pipeline']} ({r.get('refused_by_gate_first', 0)})"
                        if "not_analysed_pipeline" in r else "–")
            lines.append(f"| {_esc(r.get('set'))} | {kinds.get(r.get('kind'), '–')} | "
                         f"{r.get('n')} | {r.get('rejected')} | {r.get('rate', 0):.1%} | "
                         f"{r.get('median_score', '–')} | {pipeline} |")
        lines += ["", "The check alone: the graph's score of the centre crop, the gate bypassed. "
                  "The whole pipeline: `chexnet predict` (the intended-use gate, with its pixel "
                  "checks, then the check).", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m chexnet.inference.package.card_markdown PACKAGE.onnx\n")
        return 2
    package = open_package(args[0])
    sys.stdout.write(card_markdown(package.card, package.sha256, package.path.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
