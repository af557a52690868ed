"""``report.html``: the worklist a radiologist opens from the output folder.

Rendered with Jinja2 with autoescaping on, so every string that comes from a file (paths,
reasons, and patient data when ``--include-phi`` asks for it) is HTML-escaped. Images are
small JPEGs in ``thumbs/`` referenced by relative paths: the folder can be moved or zipped and
the report still opens.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import jinja2

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.screen.prior_columns import PriorInfo
from chexnet.inference.screen.results import PHI_COLUMNS, RunModel, ScreenRow
from chexnet.inference.status import SCREEN_STATUSES

REPORT_NAME = "report.html"
_TEMPLATES = Path(__file__).with_name("templates")


def priority_text(mode: str) -> str:
    if mode == "max-above-threshold":
        return ("highest probability among findings at or above their operating point; images "
                "with none follow, by abnormal score (highest finding probability)")
    if mode == "abnormal":
        return "abnormal score (highest finding probability)"
    if mode == "new":
        return ("images with a finding new since the patient's prior first (above its operating "
                "point now, not before); then " + priority_text("max-above-threshold"))
    return f"probability of {mode}"


def counts_of(rows: Sequence[ScreenRow]) -> dict[str, int]:
    c = Counter(r.status for r in rows)
    return {"total": len(rows), **{s.value: c.get(s, 0) for s in SCREEN_STATUSES}}


def render_report(rows: Sequence[ScreenRow], model: RunModel, out_dir: Path, *, mode: str,
                  include_phi: bool, threshold_rule: str = "", card_description: str = "",
                  run_text: str = "", shard: str = "", tta: str = "none") -> Path:
    thresholds = dict(zip(model.labels, model.thresholds, strict=True))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("screen_report.html.j2").render(
        model=model, card_description=card_description, demo_notice=DEMO_NOTICE,
        threshold_rule=threshold_rule,
        counts=counts_of(rows), priority_text=priority_text(mode), run=run_text, shard=shard,
        written=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        include_phi=include_phi, tta=tta,
        rows=[_view(r, out_dir, include_phi, thresholds) for r in rows])
    target = out_dir / REPORT_NAME
    write_atomic(target, html)
    return target


def _view(r: ScreenRow, out_dir: Path, include_phi: bool, thresholds: dict[str, float]
          ) -> dict:
    probs = r.probabilities or {}
    top = max(probs.items(), key=lambda kv: kv[1]) if probs else None
    return {
        "rank": r.rank, "path": r.path, "status": r.status.value,
        "status_text": r.status.text, "reason": r.reason,
        "warnings": r.warnings, "duplicate_of": r.duplicate_of, "study_uid": r.uids.study,
        "thumb": _relative(r.thumb_path, out_dir), "cam": _relative(r.cam_path, out_dir),
        "cam_finding": r.cam_finding or "",
        "above": [{"label": lb, "p": probs[lb], "t": thresholds[lb]}
                  for lb in r.findings_above_threshold],
        "top": f"{top[0]} {top[1]:.2f}" if top else "",
        "abnormal": r.abnormal_score, "priority": r.priority,
        "phi": [(col.replace("_", " "), (r.phi or {}).get(key, ""))
                for key, col in PHI_COLUMNS] if include_phi else [],
        "prior": _prior_view(r, out_dir, include_phi),
    }


def _prior_view(r: ScreenRow, out_dir: Path, include_phi: bool) -> dict | None:
    """The prior's images and what changed; its date only with --include-phi (else the
    interval)."""
    p = r.prior
    if p is None:
        return None
    if not p.path:
        return {"reason": p.reason, "path": ""}
    changes = sorted((p.deltas or {}).items(), key=lambda kv: -abs(kv[1]))[:3]
    cam = _relative(out_dir / p.cam if p.cam else None, out_dir)
    return {"reason": "", "path": p.path, "caption": prior_caption(p, include_phi),
            "thumb": _relative(out_dir / p.thumb if p.thumb else None, out_dir),
            "cam": cam, "cam_finding": p.cam_finding or "",
            "cam_label": _cam_label(p) if cam else "", "new": p.new, "resolved": p.resolved,
            "changes": [{"label": lb, "delta": d} for lb, d in changes]}


def prior_caption(p: PriorInfo, include_phi: bool) -> str:
    """"prior: 2019-03-04 · 491 days earlier" (the date: --include-phi only, else "prior: 491
    days earlier"); PNG datasets "prior: 1 follow-up earlier" ("prior: follow-up 1 · 1
    follow-up earlier" with --include-phi); "prior" when nothing is known."""
    parts = [p.date if include_phi else "", _interval(p)]
    parts = [part for part in parts if part]
    return "prior: " + " · ".join(parts) if parts else "prior"


def _interval(p: PriorInfo) -> str:
    for n, unit in ((p.interval_days, "day"), (p.interval_follow_ups, "follow-up")):
        if n is not None:
            return f"{n} {unit}{'' if n == 1 else 's'} earlier"
    return ""


def _cam_label(p: PriorInfo) -> str:
    if p.cam_own:  # a journal written before CAM grids were kept
        return f"heat map: {p.cam_finding} (its own top finding)"
    return f"heat map: {p.cam_finding}"


def _relative(path: Path | None, out_dir: Path) -> str:
    if path is None or not path.is_file():
        return ""
    return path.relative_to(out_dir).as_posix()
