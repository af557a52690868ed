"""labels-from-reports at the hospital CAD paper's scale: 16,000 generated reports, per stage.

Two corpora from ``chexnet.training.reports.corpus`` (planted diseases, Chinese and English):
``plain`` (the tests' settings: variant wordings + 15% typos) and ``free-text`` (location /
degree prefixes, hedges, several typos per clause: many more distinct clauses, like a real
PACS export). For each, the stages of ``mine_clusters`` are timed: split, dedup, distance
matrix, the k search (FasterPAM + silhouette for every k of --k-range, on the --select-unique
most frequent clauses), FasterPAM and silhouette at the chosen k on all clustered clauses,
nearest-medoid assignment of the clauses above --max-unique, and the Table I rows; plus the
adjusted Rand index and purity of the clusters against the planted groups.

The k search is timed warm-started (the default) and, with ``--cold``, as it was before
(every k from BUILD), on the same clauses in the same run.

Then the English corpus with planted truth (:mod:`chexnet.training.reports.realistic`): F1 per
ChestX-ray14 finding (present vs not) and time for ``--auto`` (assertion labelling, labels.csv,
unmatched_clauses.csv), and for the clustering path (assertion-aware clauses clustered per
group, the label map as suggested from the vocabulary, no human edits, then step 2), plus the
uncertain-class F1 and the count of ruled-out findings labelled present.

Side by side in the same run, two baselines the design avoids:
- rapidfuzz ``cdist`` vs a pure-Python dynamic programme on the same 150 x 150 clause pairs
  (ms per 1000 pairs, ratio);
- the distance matrix over every clause occurrence instead of the distinct clauses: its size,
  and its time projected from the measured time per pair (not run: it does not fit in memory).

    python benchmarks/bench_report_labels.py [--n 16000] [--k-range 5:40] [--max-unique 10000]
        [--select-unique 3000] [--cold] [--parts distance,plain,free-text,realistic]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import _machine
import numpy as np
import psutil
from sklearn.metrics import adjusted_rand_score, f1_score

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.reports.auto import auto_label, write_auto
from chexnet.training.reports.clauses import dedup_clauses, split_clauses
from chexnet.training.reports.cluster import (
    choose_sample,
    cluster_clauses,
    distance_matrix,
    search_k,
)
from chexnet.training.reports.corpus import generate_corpus, textbook_levenshtein
from chexnet.training.reports.findings import builtin_vocabulary
from chexnet.training.reports.label_map import ClauseClusters, apply_label_map
from chexnet.training.reports.mining import cluster_table, mine_clusters, order_by_images
from chexnet.training.reports.realistic import generate_realistic, write_realistic_csv
from chexnet.training.reports.report_files import read_reports

CORPORA = {"plain": {"typo_rate": 0.15, "variety": 0.0},
           "free-text": {"typo_rate": 0.5, "variety": 1.0}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Time labels-from-reports' stages on 16,000 "
                                            "generated reports; compare with naive baselines.")
    p.add_argument("--n", type=int, default=16_000, help="reports per corpus (default 16000)")
    p.add_argument("--k-range", default="5:40", help="k tried by silhouette (default 5:40)")
    p.add_argument("--max-unique", type=int, default=10_000,
                   help="distinct clauses clustered directly (default 10000)")
    p.add_argument("--select-unique", type=int, default=3_000,
                   help="distinct clauses the k search runs on (default 3000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parts", default="distance,plain,free-text,realistic",
                   help="comma-separated parts to run (default: all)")
    p.add_argument("--cold", action="store_true",
                   help="also time the k search as before (every k from BUILD): minutes")
    return p.parse_args(argv)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def purity(truth, labels, counts) -> float:
    by: dict[int, Counter] = {}
    for t, lab, n in zip(truth, labels, counts, strict=True):
        by.setdefault(int(lab), Counter())[t] += n
    return sum(max(c.values()) for c in by.values()) / sum(counts)


def bench_corpus(name: str, settings: dict, args: argparse.Namespace) -> None:
    corpus = generate_corpus(args.n, seed=args.seed, **settings)
    print(f"\n-- corpus {name!r}: {args.n} reports, {settings}")
    _, t_split = timed(lambda: [split_clauses(r) for r in corpus.reports])
    u, t_dedup = timed(dedup_clauses, corpus.reports)  # split + count, as the command does
    n = min(len(u), args.max_unique)
    print(f"clauses: {u.n_occurrences} occurrences, {len(u)} distinct, {n} clustered directly "
          f"(--max-unique {args.max_unique}); k searched on "
          f"{min(n, args.select_unique)} (--select-unique {args.select_unique})")
    lo, hi = (int(x) for x in args.k_range.split(":"))
    rss0 = psutil.Process().memory_info().rss
    c, t_cluster = timed(cluster_clauses, u.texts, u.counts, k_range=(lo, hi),
                         max_unique=args.max_unique, seed=args.seed,
                         select_unique=args.select_unique)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    c = order_by_images(c, u)
    rows, t_table = timed(cluster_table, u, c)
    print(f"  {'split (alone)':<34} {t_split:8.2f} s")
    print(f"  {'split + dedup':<34} {t_dedup:8.2f} s")
    for stage, t in c.timings.items():
        print(f"  {stage:<34} {t:8.2f} s")
    print(f"  {'Table I rows + suggestions':<34} {t_table:8.2f} s")
    total = t_dedup + t_cluster + t_table
    print(f"  {'total (dedup .. Table I)':<34} {total:8.2f} s")
    print(f"matrix {n}^2: {n * n * 4 / 2**20:.0f} MiB float32 (RSS before {rss0 / 2**20:.0f} "
          f"MiB, process peak so far {peak / 2**20:.0f} MiB)")
    top = rows[min(9, c.k - 1)].cumulative_share
    print(f"k by silhouette = {c.k} of {lo}:{hi} (silhouette {c.silhouette:.3f}); the top 10 "
          f"clusters cover {top:.1%} of the images")
    if args.cold:
        top = choose_sample(list(u.counts), min(n, args.select_unique))
        d = distance_matrix([u.texts[i] for i in top])
        warm, t_warm = timed(search_k, d, lo, min(hi, len(top) - 1), args.seed, "warm")
        cold, t_cold = timed(search_k, d, lo, min(hi, len(top) - 1), args.seed, "full")
        bw, bc = (max(r, key=lambda kk, r=r: r[kk][0]) for r in (warm, cold))
        diff = max(abs(warm[kk][0] - cold[kk][0]) for kk in warm)
        print(f"k search {lo}:{hi} on {len(top)} clauses: warm {t_warm:.1f} s (best k {bw}), "
              f"cold {t_cold:.1f} s (best k {bc}); cold/warm {t_cold / t_warm:.1f}x; max "
              f"|silhouette diff| {diff:.3f}")
    truth = [corpus.clause_group.get(t, "mixed") for t in u.texts]
    occ = np.repeat(np.arange(len(u)), u.counts)
    ari_unique = adjusted_rand_score(truth, c.labels)
    ari_occ = adjusted_rand_score(np.asarray(truth)[occ], c.labels[occ])
    print(f"vs planted groups ({len(corpus.groups())}): ARI {ari_unique:.3f} (distinct clauses), "
          f"{ari_occ:.3f} (occurrences); purity {purity(truth, c.labels, list(u.counts)):.3f}")
    per_pair = c.timings["distance matrix"] / (n * n)
    occ_n = u.n_occurrences
    searched = min(n, args.select_unique)
    pam = c.timings.get("k search: FasterPAM", 0.0) * (occ_n / searched) ** 2
    print(f"without dedup: {occ_n}^2 matrix = {occ_n * occ_n * 4 / 2**30:.1f} GiB float32, "
          f"projected {per_pair * occ_n * occ_n:.0f} s for the distances "
          f"({(occ_n / n) ** 2:.0f}x the pairs) and ~{pam / 60:.0f} min for the k search "
          "(FasterPAM's swaps scale with n^2; not run)")


def naive_matrix(texts: list[str]) -> np.ndarray:
    """Normalised edit distances, one pair at a time in pure Python (the naive baseline)."""
    return np.array([[textbook_levenshtein(a, b) / max(len(a), len(b), 1) for b in texts]
                     for a in texts])


def bench_distance(args: argparse.Namespace) -> None:
    corpus = generate_corpus(2000, seed=args.seed, typo_rate=0.5, variety=1.0)
    texts = list(dedup_clauses(corpus.reports).texts[:150])
    pairs = len(texts) ** 2
    times = _machine.interleaved([lambda: distance_matrix(texts), lambda: naive_matrix(texts)],
                                 repeats=3, warmup=1, per_call=pairs / 1000, budget_s=60)
    fast, naive = (_machine.median(t) for t in times)
    check = distance_matrix(texts[:20])
    ref = naive_matrix(texts[:20])
    print(f"\n-- edit distances, {len(texts)} x {len(texts)} clauses, ms per 1000 pairs "
          f"(median of {len(times[0])})")
    print(f"  rapidfuzz cdist {fast:.4f}   pure-Python DP {naive:.2f}   naive/rapidfuzz "
          f"{naive / fast:.0f}x   paired {_machine.paired_ratio(times[1], times[0]):.0f}x   "
          f"max |diff| {np.abs(check - ref).max():.1e}")


def f1_table(truth: list[dict[str, int]], pred: list[dict[str, int]]) -> dict[str, float]:
    """F1 of 'present' (1) per ChestX-ray14 finding."""
    return {lb: f1_score([t[lb] == 1 for t in truth], [p.get(lb, 0) == 1 for p in pred],
                         zero_division=0.0) for lb in CHESTXRAY14_LABELS}


def bench_realistic(args: argparse.Namespace) -> None:
    corpus = generate_realistic(args.n, seed=args.seed + 1)
    print(f"\n-- realistic English corpus: {args.n} reports with planted truth "
          f"(chexnet.training.reports.realistic, seed {args.seed + 1})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reports = read_reports(write_realistic_csv(corpus, tmp / "reports.csv"))
        vocab = builtin_vocabulary()
        t0 = time.perf_counter()
        auto = auto_label(reports, vocab, tmp / "auto")
        t_label = time.perf_counter() - t0
        write_auto(auto, tmp / "auto", True, args.seed)
        t_auto = time.perf_counter() - t0
        index = {Path(p).name: i for i, p in enumerate(auto.images.paths)}
        labels = auto.images.labels
        pred = []
        for i in range(len(corpus.reports)):
            row = index.get(f"img_{i:05d}.png")
            pred.append({} if row is None else dict(zip(labels, map(int, auto.images.y[row]),
                                                        strict=True)))
        f_auto = f1_table(list(corpus.truth), pred)
        unc_t = [t[lb] == -1 for t in corpus.truth for lb in CHESTXRAY14_LABELS]
        unc_p = [p.get(lb, 0) == -1 for p in pred for lb in CHESTXRAY14_LABELS]
        ruled = sum(len(r) for r in corpus.ruled_out)
        wrong = sum(p.get(lb, 0) == 1 for p, r in zip(pred, corpus.ruled_out, strict=True)
                    for lb in r)

        t0 = time.perf_counter()
        lo, hi = (int(x) for x in args.k_range.split(":"))
        m = mine_clusters(reports, k_range=(lo, hi), max_unique=args.max_unique,
                          seed=args.seed, select_unique=args.select_unique, vocab=vocab)
        t_mine = time.perf_counter() - t0
        mapping = {r.cluster: r.suggestion for r in m.rows if r.suggestion}
        clusters = ClauseClusters({t: int(c) for t, c in zip(m.clauses.texts,
                                                             m.clustering.labels, strict=True)},
                                  [m.clauses.texts[j] for j in m.clustering.medoids], None)
        applied = apply_label_map(reports, clusters, mapping, tmp / "mined")
        t_cluster = time.perf_counter() - t0
        index = {Path(p).name: i for i, p in enumerate(applied.paths)}
        pred_c = []
        for i in range(len(corpus.reports)):
            row = index.get(f"img_{i:05d}.png")
            pred_c.append({} if row is None else dict(zip(applied.labels, map(
                int, applied.y[row]), strict=True)))
        f_cluster = f1_table(list(corpus.truth), pred_c)
        wrong_c = sum(p.get(lb, 0) == 1 for p, r in zip(pred_c, corpus.ruled_out, strict=True)
                      for lb in r)
    print(f"  --auto: {t_label:.1f} s labelling ({t_label / args.n * 1000:.2f} ms/report), "
          f"{t_auto:.1f} s with labels.csv and unmatched_clauses.csv; "
          f"{len(auto.images.unlabelled)} reports unlabelled, {len(auto.unmatched)} distinct "
          "unmatched sentences")
    print(f"  clustering path: {t_mine:.1f} s step 1 ({len(m.clauses)} distinct clauses, "
          f"k={m.clustering.k} over {len(m.clustering.groups)} assertion groups), "
          f"{t_cluster:.1f} s with step 2 (suggested map, {len(mapping)} of {m.clustering.k} "
          "clusters named, no edits)")
    print(f"  {'finding':<20} {'positives':>9} {'F1 --auto':>10} {'F1 clusters':>12}")
    for lb in CHESTXRAY14_LABELS:
        n_pos = sum(t[lb] == 1 for t in corpus.truth)
        print(f"  {lb:<20} {n_pos:>9} {f_auto[lb]:>10.3f} {f_cluster[lb]:>12.3f}")
    print(f"  {'macro':<20} {'':>9} {np.mean(list(f_auto.values())):>10.3f} "
          f"{np.mean(list(f_cluster.values())):>12.3f}")
    print(f"  uncertain (-1) F1 over all findings: {f1_score(unc_t, unc_p):.3f} (--auto)")
    print(f"  ruled-out findings labelled present: {wrong} of {ruled} (--auto), {wrong_c} "
          "(clustering path)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _machine.print_facts("labels-from-reports", ("rapidfuzz", "kmedoids", "numpy"))
    _machine.report_other_load("before")
    parts = set(args.parts.split(","))
    if "distance" in parts:
        bench_distance(args)
    for name, settings in CORPORA.items():
        if name in parts:
            bench_corpus(name, settings, args)
    if "realistic" in parts:
        bench_realistic(args)
    _machine.report_other_load("after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
