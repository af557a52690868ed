"""The worklist's prior columns: each analysed image's most recent analysed prior and the change.

Built from journal records only (like every worklist column), so a resumed run ends with the
same columns. Records hold keyed identities (:mod:`chexnet.inference.priors.keys`): matching
uses the keys, intervals the shifted dates; the real date is given back only for
``--include-phi``. Images of files given with ``--priors`` are candidates, never rows.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.package.card import is_normal_label
from chexnet.inference.priors.compare import changes
from chexnet.inference.priors.keys import KEY_FILE, PatientKeys
from chexnet.inference.priors.timeline import PriorSearch, Timelines
from chexnet.inference.screen.discovery import ScreenConfigError
from chexnet.inference.screen.prior_heatmaps import PriorHeatmap, planned
from chexnet.inference.status import Status

PRIOR_ROLE = "prior"  # a journal record's "role" for a file given with --priors
NOT_ANALYSED = "not analysed"
NO_IDENTITY = "no identity recorded (screened before prior matching: rescreen with --fresh)"
PRIOR_NOT_ANALYSED = "no analysed earlier study of this patient"


@dataclass(frozen=True)
class PriorInfo:
    """One row's prior columns ("" / None where there is no prior; ``reason`` then says why)."""

    patient_key: str = ""
    path: str = ""  # the prior's file, relative to the output folder
    date: str = ""  # its study date (or "follow-up N"): --include-phi only
    interval_days: int | None = None
    interval_follow_ups: int | None = None  # PNG datasets: follow-up number now minus then
    reason: str = ""
    deltas: dict[str, float] | None = None
    new: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    thumb: str | None = None  # the prior's report images (journal paths, in the folder)
    cam: str | None = None  # its heat map of ``cam_finding``, the current row's finding...
    cam_finding: str | None = None
    cam_own: bool = False  # ...or, from a journal written before CAM grids, its own top one
    #: the heat map to draw (``cam``), for the run that writes the report (prior_heatmaps)
    heatmap: PriorHeatmap | None = field(default=None, compare=False, repr=False)


def folder_keys(out_dir: Path) -> PatientKeys:
    """The output folder's patient keys (created on first use); a damaged key file is a
    :class:`ScreenConfigError` (the run cannot match patients with the earlier rows)."""
    try:
        return PatientKeys.in_folder(out_dir)
    except ValueError as err:
        raise ScreenConfigError(f"{err}") from None


def has_identities(records: Iterable[dict]) -> bool:
    return any("identity" in r for r in records)


def prior_infos(records: Sequence[dict], labels: Sequence[str], thresholds: Sequence[float],
                out_dir: Path) -> dict[str, PriorInfo]:
    """Journal path -> prior columns, for every record that is not a ``--priors`` file."""
    if not has_identities(records) or not (out_dir / KEY_FILE).is_file():
        return {}
    keys = folder_keys(out_dir)
    analysed = {r["path"]: r for r in records
                if r.get("status") == Status.OK and r.get("probabilities") is not None
                and r.get("identity")}
    identities = {p: keys.identity(r["identity"]) for p, r in analysed.items()}
    studies: dict[str, list[str]] = defaultdict(list)
    for path, ident in identities.items():
        studies[ident.study_uid or f"file:{path}"].append(path)
    lines = Timelines((Path(min(paths)), identities[min(paths)], paths)
                      for paths in studies.values())
    limits = dict(zip(labels, thresholds, strict=True))
    labels = tuple(labels)
    pairs: list[tuple[dict, dict, PriorSearch, str]] = []  # (row, prior, search, patient key)
    patient_keys: dict[tuple[str, str] | None, str] = {}
    infos = {}
    for r in records:
        if r.get("role") == PRIOR_ROLE:
            continue
        ident = identities.get(r["path"]) or (keys.identity(r["identity"]) if r.get("identity")
                                               else None)
        key = "" if ident is None else patient_keys.get(ident.patient_key) \
            or patient_keys.setdefault(ident.patient_key, keys.patient_key(ident))
        if r["path"] not in analysed:
            reason = NO_IDENTITY if ident is None and r.get("status") == Status.OK \
                else NOT_ANALYSED
            infos[r["path"]] = PriorInfo(patient_key=key, reason=reason)
            continue
        search = lines.search(r["path"])
        if search.latest is None:
            infos[r["path"]] = PriorInfo(patient_key=key, reason=search.reason or "")
        else:
            pairs.append((r, analysed[str(search.latest.path)], search, key))
    infos.update(_compared(pairs, labels, limits, keys, _Relative(out_dir)))
    return infos


def _compared(pairs: list, labels: tuple[str, ...], limits: dict[str, float],
              keys: PatientKeys, relative: _Relative) -> dict[str, PriorInfo]:
    """The rows with a prior: every pair compared in one pass (:func:`changes`)."""
    if not pairs:
        return {}
    ch = changes(labels, np.array([r["probabilities"] for r, *_ in pairs], dtype=np.float64),
                 np.array([p["probabilities"] for _, p, *_ in pairs], dtype=np.float64), limits)
    deltas = ch.delta.tolist()
    infos = {}
    for k, (r, prior, search, key) in enumerate(pairs):
        match = search.latest
        finding = r.get("cam_finding") or _top_finding(r["probabilities"], labels)
        heatmap = planned(prior, finding, labels)
        if not ch.order[k]:
            infos[r["path"]] = PriorInfo(patient_key=key, reason="the prior shares no finding")
            continue
        infos[r["path"]] = PriorInfo(
            patient_key=key, path=relative(str(match.path)),
            date=keys.real_date(match.identity), interval_days=search.interval_days(),
            interval_follow_ups=_follow_ups(search),
            deltas={labels[i]: deltas[k][i] for i in ch.order[k]}, new=ch.new[k],
            resolved=ch.resolved[k], thumb=prior.get("thumb"),
            cam=heatmap.name if heatmap else prior.get("cam"),
            cam_finding=finding if heatmap else prior.get("cam_finding"),
            cam_own=heatmap is None and bool(prior.get("cam")), heatmap=heatmap)
    return infos


def _top_finding(probabilities: Sequence[float], labels: tuple[str, ...]) -> str | None:
    """The row's heat-map finding when its record names none (no thumbnail): its top one."""
    found = [i for i, lb in enumerate(labels) if not is_normal_label(lb)]
    return labels[max(found, key=lambda i: probabilities[i])] if found else None  # first of ties


def _follow_ups(search: PriorSearch) -> int | None:
    """How many follow-ups earlier the prior is, where the order is by follow-up number."""
    now, then = search.identity, search.latest.identity if search.latest else None
    if now is None or then is None or now.when is not None or then.when is not None \
            or now.order is None or then.order is None:
        return None
    return now.order - then.order


class _Relative:
    """Paths relative to the output folder, POSIX style (one relpath per folder, not per file:
    7,000 relpath calls cost 0.4 s)."""

    def __init__(self, out_dir: Path) -> None:
        self.out = os.path.abspath(out_dir)
        self.folders: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        folder, name = os.path.split(path)
        if folder not in self.folders:
            self.folders[folder] = Path(os.path.relpath(folder, self.out)).as_posix()
        rel = self.folders[folder]
        return name if rel == "." else f"{rel}/{name}"
