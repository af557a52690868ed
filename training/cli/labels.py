"""``chexnet labels-from-reports``: training labels mined from free-text reports, in two steps.

Registered as a ``chexnet`` subcommand through the ``chexnet.commands`` entry point. Step 1 is
:mod:`chexnet.training.reports.mining`, step 2 :mod:`chexnet.training.reports.label_map`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from chexnet.inference.cli.common import UsageError, positive_int
from chexnet.training.reports.report_files import ReportTable, read_reports

if TYPE_CHECKING:  # an annotation only: the module itself loads when the command runs
    from chexnet.training.reports.mining import Mining

EPILOG = """\
--auto labels every report in one step, by mention-level assertion: the report is cut into
sentences that keep lists together, the findings are found by a vocabulary (the 14 ChestX-ray14
labels and `normal`, English and Chinese terms; --vocabulary FILE adds a hospital's own: a CSV
with columns label,term[,regex]), and each mention is present, absent or uncertain by
NegEx/ConText-style cues and their scope ("no A, B or C", "cannot exclude", 未见, 不除外, "but"
ends a scope). It writes into --out:
  labels.csv             path[, patient_id], one column per label: 1 present, 0 absent or not
                         named, -1 uncertain (--uncertain as-positive|as-negative writes 1|0);
                         `normal` is 1 when no finding is present or uncertain
  unlabelled.csv         reports that name nothing the vocabulary knows (unknown, not normal)
  unmatched_clauses.csv  clusters of the sentences the vocabulary did not cover, largest first:
                         read it to find words to add with --vocabulary
chexnet-train reads the -1 values with --uncertain ignore|ones|zeros (default ignore).

Step 1 clusters the report clauses (the hospital CAD paper's method, made assertion-aware):
each report's diagnosis is split into sentences (。；.;!? and line breaks) and then at commas,
except inside an open negation ("No consolidation, effusion or pneumothorax" stays whole; a
Chinese ，always splits), digits are removed and anonymisation tokens (XXXX, ___, [**...**])
masked; identical clauses are counted once; each clause falls into an assertion group (finding,
uncertain, negated, normal, other: by the --auto vocabulary and cues) and the clauses of each
group are compared by normalised edit distance (rapidfuzz) and grouped by k-medoids (FasterPAM;
k given and shared out over the groups, or searched in each group's share of --k-range by
silhouette, warm-started), so negated and positive clauses never share a cluster. It writes
into --out:
  clusters.csv     the paper's Table I: medoid clause, size, images covered and their share,
                   "single" (images where it is the only cluster), cumulative share, examples
  label_map.csv    one row per cluster with its assertion group; EDIT its `label` column
                   (pre-filled with a suggestion from the vocabulary: the finding of a
                   `finding` cluster, `normal` for `negated`/`normal` ones, none for
                   `uncertain`; clusters given the same label merge) and its `ignore` column
                   (1 = leave the cluster out; an empty label is also left out)
  clauses.csv      every distinct clause with its count and cluster
  clustering.json  k, silhouettes, medoids, the reports file's sha256
and prints the largest --top clusters and the share of images they cover together. The CSVs are
UTF-8 with a BOM, so Excel shows Chinese text; the edited label map may be saved back as UTF-8
or GBK/GB18030 (Excel's "CSV" on a Chinese Windows).

Step 2 (--apply-map) writes labels.csv in chexnet-train's generic layout: `path` (relative to
labels.csv), `patient_id` when the reports have a patient column, one 0/1 column per label.
`normal` is 1 only when the report maps to `normal` and to no finding (a finding wins). Images
whose clauses map to no label are left out of labels.csv and listed with the reason in
unlabelled.csv (unknown is not normal). Clauses step 1 never saw (the reports file changed) join
the cluster of their nearest medoid.

With more than --max-unique distinct clauses, the most frequent --max-unique are clustered (the
distance matrix is n^2 float32: 10,000 -> 400 MB) and the others join their nearest medoid.
With more than --select-unique, k is chosen by silhouette on the --select-unique most frequent
(a sub-matrix), then FasterPAM runs once at that k on all clustered clauses.

The reports CSV: one row per image; an image column (path, relative to the CSV, or
SOPInstanceUID with --images DIR in step 2); a diagnosis (or report) column; optional findings
and patient_id columns. UTF-8 or GB18030 (--encoding for others).

examples:
  chexnet labels-from-reports reports.csv --out labels/ --auto
  chexnet labels-from-reports reports.csv --out labels/ --auto --vocabulary our_words.csv
  chexnet labels-from-reports reports.csv --out labels/                  # k by silhouette, 5:40
  chexnet labels-from-reports reports.csv --out labels/ --k 12 --top 10 --min-size 100
  # edit labels/label_map.csv, then:
  chexnet labels-from-reports reports.csv --out labels/ --apply-map labels/label_map.csv
  chexnet labels-from-reports reports.csv --out labels/ --apply-map labels/label_map.csv \\
      --images /data/dicoms/                                             # SOPInstanceUID column
  chexnet-train labels/labels.csv --labels abnormal --out runs/abnormal   # abnormal = not normal
  chexnet-train labels/labels.csv --out runs/multi-label              # every finding (normal: none)
"""


def _k_range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH such as 5:40, got {text!r}") from None
    if not 2 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"need 2 <= LOW <= HIGH, got {text!r}")
    return lo, hi


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("labels-from-reports", help="mine training labels from free-text reports",
                       description="Cluster report clauses into candidate labels (step 1), then "
                                   "turn the edited label map into labels.csv for chexnet-train "
                                   "(step 2, --apply-map).", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", type=Path, metavar="REPORTS.csv", help="one row per image")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    ks = p.add_mutually_exclusive_group()
    ks.add_argument("--k", type=positive_int, help="number of clusters")
    ks.add_argument("--k-range", type=_k_range, default=(5, 40), metavar="LOW:HIGH",
                    help="choose k in this range by silhouette (default 5:40)")
    p.add_argument("--top", type=positive_int, default=10, help="clusters to print (default 10)")
    p.add_argument("--min-size", type=int, default=0, metavar="IMAGES",
                   help="clusters covering fewer images start with ignore=1 in label_map.csv")
    p.add_argument("--max-unique", type=positive_int, default=10_000,
                   help="most distinct clauses clustered directly (default 10000)")
    p.add_argument("--select-unique", type=positive_int, default=3_000,
                   help="with more distinct clauses, k is chosen on this many most frequent "
                        "ones, then FasterPAM runs once on all (default 3000)")
    p.add_argument("--seed", type=int, default=0, help="k-medoids seed (default 0)")
    p.add_argument("--encoding", help="the CSV's encoding (default: UTF-8, else GB18030)")
    p.add_argument("--text-column", help="the column to mine (default: diagnosis, else report)")
    p.add_argument("--apply-map", type=Path, metavar="MAP",
                   help="step 2: the edited label_map.csv -> DIR/labels.csv")
    p.add_argument("--images", type=Path, metavar="DIR",
                   help="step 2 or --auto with a SOPInstanceUID column: folder of the DICOMs")
    p.add_argument("--auto", action="store_true",
                   help="one step: labels by mention-level assertion (see below)")
    p.add_argument("--vocabulary", type=Path, metavar="FILE",
                   help="CSV (label,term[,regex]) adding terms to the built-in vocabulary")
    p.add_argument("--uncertain", choices=("keep", "as-positive", "as-negative"),
                   default="keep", help="--auto: write uncertain findings as -1 (keep, "
                                        "default), 1 or 0")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    reports = read_reports(args.reports, args.encoding, args.text_column)
    if args.auto and args.apply_map is not None:
        raise UsageError("--auto labels the reports in one step; --apply-map is step 2 of the "
                         "clustering workflow: give one of them")
    if reports.ref_kind == "uid" and args.images is None and (args.auto or args.apply_map):
        raise UsageError(f"{reports.source} names images by SOPInstanceUID: give the DICOM "
                         "folder with --images DIR")
    if args.auto:
        return _auto(args, reports)
    if args.apply_map is not None:
        return _apply(args, reports)
    # Imported here, not at the top: `chexnet` registers this command on every run, and the
    # clustering's rapidfuzz and kmedoids (the train extra) must load only when it runs.
    from chexnet.training.reports.findings import load_vocabulary
    from chexnet.training.reports.mining import mine_clusters, write_clusters

    m = mine_clusters(reports, args.k, args.k_range, args.max_unique, args.seed,
                      args.select_unique, load_vocabulary(args.vocabulary))
    write_clusters(m, args.out, args.min_size)
    _print_clusters(args, m)
    return 0


def _print_clusters(args: argparse.Namespace, m: Mining) -> None:
    from chexnet.training.reports.mining import MIXED_DISTANCE  # kmedoids: deferred, as in run

    c, reports = m.clustering, m.reports
    how = "given" if args.k else f"best silhouette in {args.k_range[0]}:{args.k_range[1]}"
    print(f"{len(reports)} reports ({reports.text_column!r}, {reports.encoding}): "
          f"{m.clauses.n_occurrences} clauses, {len(m.clauses)} distinct; k={c.k} ({how}, "
          f"silhouette {c.silhouette:.3f})")
    if not c.clustered.all():
        print(f"  {int((~c.clustered).sum())} rare distinct clauses joined their nearest medoid "
              f"(--max-unique {args.max_unique})")
    print(f"largest {min(args.top, c.k)} of {c.k} clusters (images, share, cumulative share):")
    for r in m.rows[:args.top]:
        hint = f"  -> {r.suggestion}" if r.suggestion else ""
        print(f"  {r.cluster:>3}  {r.images:>6}  {r.share:6.1%}  {r.cumulative_share:6.1%}  "
              f"{r.medoid}{hint}")
    mixed = m.mixed_rows()
    for r in mixed[:args.top]:
        print(f"  check cluster {r.cluster} ({r.medoid}): {r.far_share:.0%} of its clauses "
              f"are > {MIXED_DISTANCE} from the medoid, e.g. {r.farthest!r}; a larger --k "
              "may split it")
    if len(mixed) > args.top:
        print(f"  ... and {len(mixed) - args.top} more clusters like these (clusters.csv: "
              "far_share, farthest_clause)")
    top = m.rows[min(args.top, c.k) - 1].cumulative_share
    print(f"the top {min(args.top, c.k)} clusters cover {top:.1%} of the images")
    print(f"wrote {args.out}/clusters.csv, label_map.csv, clauses.csv, clustering.json; edit "
          f"label_map.csv, then add --apply-map {args.out / 'label_map.csv'}")


def _apply(args: argparse.Namespace, reports: ReportTable) -> int:
    # rapidfuzz (nearest medoids for unseen clauses): deferred, as in run
    from chexnet.training.reports.label_map import (
        label_counts,
        label_reports,
        read_clause_clusters,
    )

    clusters = read_clause_clusters(args.out)
    if not clusters.made_from(reports):
        print(f"note: {reports.source} differs from the file step 1 clustered; clauses step 1 "
              "did not see join their nearest medoid")
    from chexnet.training.reports.findings import load_vocabulary

    result, written = label_reports(reports, clusters, args.apply_map, args.out, args.images,
                                    load_vocabulary(args.vocabulary))
    print(f"{len(result.paths)} of {len(reports)} images labelled with {len(result.labels)} "
          f"labels; {len(result.unlabelled)} left out (see {written['unlabelled.csv']})")
    if result.unseen_clauses:
        print(f"  {result.unseen_clauses} clauses were new and joined their nearest medoid")
    if result.normal_overridden:
        print(f"  {result.normal_overridden} reports said normal and named a finding: "
              "labelled with the finding only")
    print("  label  images  single")
    for label, n, single in label_counts(result):
        print(f"  {label}  {n}  {single}")
    if not reports.has_patients:
        print("  no patient column: chexnet-train will treat each image as its own patient "
              "(add patient_id to split by patient)")
    print(f"wrote {written['labels.csv']}")
    return 0


def _auto(args: argparse.Namespace, reports: ReportTable) -> int:
    from chexnet.training.reports.auto import auto_label, value_counts, write_auto
    from chexnet.training.reports.findings import load_vocabulary

    vocab = load_vocabulary(args.vocabulary)
    result = auto_label(reports, vocab, args.out, args.uncertain, args.images)
    written = write_auto(result, args.out, reports.has_patients, args.seed)
    images = result.images
    print(f"{len(images.paths)} of {len(reports)} reports labelled with {len(images.labels)} "
          f"labels ({len(vocab.terms)} vocabulary terms); {len(images.unlabelled)} name "
          f"nothing the vocabulary knows (see {written['unlabelled.csv']})")
    how = {"keep": "kept as -1", "as-positive": "written as 1", "as-negative": "written as 0"}
    print(f"  {result.uncertain} uncertain label values, {how[args.uncertain]}")
    print("  label  present  uncertain  absent")
    for label, pos, unc, neg in value_counts(result):
        print(f"  {label}  {pos}  {unc}  {neg}")
    print(f"  {len(result.unmatched)} distinct sentences named no vocabulary term: "
          f"{written['unmatched_clauses.csv']} clusters them, largest first")
    print(f"wrote {written['labels.csv']}")
    return 0
