"""labels-from-reports at the hospital CAD paper's scale: 16,000 generated reports, per stage.

Two corpora from ``chexnet.training.reports.corpus`` (planted diseases, Chinese and English):
``plain`` (the tests' settings: variant wordings + 15% typos) and ``free-text`` (location /
degree prefixes, hedges, several typos per clause: many more distinct clauses, like a real
PACS export). For each, the stages of ``mine_clusters`` are timed: split, dedup, distance
matrix, the k search (FasterPAM + silhouette for every k of --k-range, on the --select-unique
most frequent clauses), FasterPAM and silhouette at the chosen k on all clustered clauses,
nearest-medoid assignment of the clauses above --max-unique, and the Table I rows; plus the
adjusted Rand index and purity of the clusters against the planted groups.

Side by side in the same run, two baselines the design avoids:
- rapidfuzz ``cdist`` vs a pure-Python dynamic programme on the same 150 x 150 clause pairs
  (ms per 1000 pairs, ratio);
- the distance matrix over every clause occurrence instead of the distinct clauses: its size,
  and its time projected from the measured time per pair (not run: it does not fit in memory).

    python benchmarks/bench_report_labels.py [--n 16000] [--k-range 5:40] [--max-unique 10000]
        [--select-unique 3000]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import Counter

import _machine
import numpy as np
import psutil
from sklearn.metrics import adjusted_rand_score

from chexnet.training.reports.clauses import dedup_clauses, split_clauses
from chexnet.training.reports.cluster import cluster_clauses, distance_matrix
from chexnet.training.reports.corpus import generate_corpus, textbook_levenshtein
from chexnet.training.reports.mining import cluster_table, order_by_images

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
    truth = [corpus.clause_group[t] for t in u.texts]
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _machine.print_facts("labels-from-reports", ("rapidfuzz", "kmedoids", "numpy"))
    _machine.report_other_load("before")
    bench_distance(args)
    for name, settings in CORPORA.items():
        bench_corpus(name, settings, args)
    _machine.report_other_load("after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
