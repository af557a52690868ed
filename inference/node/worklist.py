"""The node's combined worklist: ``DIR/results.csv`` (every screened image of every study, ranked
together, the same columns as ``chexnet screen``'s CSV) and ``DIR/report.html`` (one line per
study, most urgent first, linking to the study's own report).

Why rebuilt from the journals each time rather than appended to: the journals are the truth
(each study's ``results/<study>/results.jsonl``), so the combined files can be deleted or lost
at any moment and come back whole at the next screening; the cost is reading every journal,
milliseconds for thousands of rows. Both files are written atomically.
"""

from __future__ import annotations

import html
import logging
from dataclasses import replace
from pathlib import Path

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.node.spool import NodeFolders
from chexnet.inference.screen.discovery import ScreenConfigError
from chexnet.inference.screen.journal import JOURNAL_NAME
from chexnet.inference.screen.pipeline import read_worklist
from chexnet.inference.screen.report import REPORT_NAME, counts_of
from chexnet.inference.screen.results import RunModel, ScreenRow, csv_text

log = logging.getLogger(__name__)

CSV_NAME, INDEX_NAME = "results.csv", "report.html"


def study_worklists(folders: NodeFolders) -> tuple[RunModel | None,
                                                  list[tuple[str, list[ScreenRow]]]]:
    """(the model of the first study, [(study key, its rows)]) for every screened study that
    shares the first study's findings."""
    studies: list[tuple[str, list[ScreenRow]]] = []
    first: RunModel | None = None
    if not folders.results.is_dir():
        return None, studies
    for folder in sorted(p for p in folders.results.iterdir() if p.is_dir()):
        try:
            model, study_rows = read_worklist(folder)
        except ScreenConfigError:  # no journal yet (a study whose first run is under way)
            continue
        if first is None:
            first = model
        if tuple(model.labels) != tuple(first.labels):  # other findings: cannot share columns
            log.warning("study %s was screened by a model with other findings; it is in its "
                        "own results folder only", folder.name[:8])
            continue
        studies.append((folder.name, study_rows))
    return first, studies


def read_node_worklist(root: str | Path) -> tuple[RunModel, list[ScreenRow]]:
    """Every screened image of every study in a ``chexnet listen`` output folder, ranked
    together (the viewer's worklist opens such a folder and re-reads it as studies arrive)."""
    model, studies = study_worklists(NodeFolders(Path(root)))
    if model is None:
        raise ScreenConfigError(f"{root}: no study has been screened in this folder yet")
    rows = [r for _key, study_rows in studies for r in study_rows]
    return model, [replace(r, rank=i)
                   for i, r in enumerate(sorted(rows, key=ScreenRow.sort_key), 1)]


def is_node_folder(path: str | Path) -> bool:
    """Whether ``path`` is a ``chexnet listen`` output folder (results per study)."""
    folders = NodeFolders(Path(path))
    return folders.results.is_dir() and not (Path(path) / JOURNAL_NAME).exists()


def rebuild_worklist(folders: NodeFolders) -> int:
    """Write the combined CSV and the study index; returns the number of rows."""
    model, studies = study_worklists(folders)
    rows = [r for _key, study_rows in studies for r in study_rows]
    ranked = [replace(r, rank=i) for i, r in enumerate(sorted(rows, key=ScreenRow.sort_key), 1)]
    labels = list(model.labels) if model is not None else []
    write_atomic(folders.root / CSV_NAME, csv_text(ranked, labels, False))
    write_atomic(folders.root / INDEX_NAME, index_html(studies))
    return len(ranked)


def index_html(studies: list[tuple[str, list[ScreenRow]]]) -> str:
    """One table row per study, the study with the most urgent image first."""
    def urgency(item: tuple[str, list[ScreenRow]]) -> tuple:
        return min((r.sort_key() for r in item[1]), default=(9,))

    lines = []
    for key, rows in sorted(studies, key=urgency):
        c = counts_of(rows)
        top = rows[0] if rows else None
        finding = html.escape(", ".join(top.findings_above_threshold)) if top else ""
        link = html.escape(f"results/{key}/{REPORT_NAME}")
        lines.append(f"<tr><td><a href=\"{link}\">{html.escape(key[:12])}</a></td>"
                     f"<td>{c['total']}</td><td>{c['ok']}</td><td>{c['not_analysed']}</td>"
                     f"<td>{c['error']}</td><td>{finding}</td></tr>")
    body = "\n".join(lines) or "<tr><td colspan=\"6\">no study screened yet</td></tr>"
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>chexnet listen: "
            "studies</title>\n<style>body{font-family:sans-serif}td,th{padding:2px 8px;"
            "text-align:left}</style></head><body>\n<h1>Studies received and screened</h1>\n"
            "<p>Most urgent first. Each study's worklist, with images and heat maps, opens "
            "from its link; every image of every study is in results.csv.</p>\n<table>\n"
            "<tr><th>study</th><th>images</th><th>analysed</th><th>not analysed</th>"
            "<th>errors</th><th>findings above threshold (first image)</th></tr>\n"
            f"{body}\n</table></body></html>\n")
