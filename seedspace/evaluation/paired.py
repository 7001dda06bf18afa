"""Experiment 5, paired tests: per-item differences a − b between two methods on the same items (no new images)."""

from __future__ import annotations

import numpy as np

from .config import METRICS, PAIRED_COMPARISONS
from .experiment import row, section
from .runner import Runner

PAIRED_METRICS = {
    "interpolation": ["acc", "conf", "fdist", "norm_min", "smooth_max", "fid", "kid"],
    "centroid": ["acc", "conf", "fdist", "p_acc", "p_fdist", "fid", "kid"],
    "rare": ["acc", "conf", "fdist", "diversity", "fid", "kid"],
}
MIN_PAIRED_ITEMS = 10  # below this a bootstrap CI is not worth a verdict


def verdict(st: dict, a: str, b: str, better: str | None, n: int, min_items: int = MIN_PAIRED_ITEMS) -> str:
    """Whether the CI of a − b excludes 0, and which method that favours (no verdict below ``min_items`` items)."""
    if n < min_items:
        return f"too few items for a verdict (n < {min_items})"
    if st["lo"] > 0:
        text = f"{a} higher"
    elif st["hi"] < 0:
        text = f"{b} higher"
    else:
        return "no clear difference"
    if better:
        text += f" ({a if (st['lo'] > 0) == (better == 'higher') else b} better)"
    return text


def paired_stats(runner: Runner, items_a: list, items_b: list, feats_a: list, feats_b: list, metrics, *names) -> tuple:
    """({metric: stat of a − b}, n): paired bootstrap CIs over the n items both arms share (matched by ``key``, whose
    first entry is the class): per-item metrics by :meth:`Runner.paired`; 'fid' / 'kid' from the per-item feature
    groups resampled jointly for both arms (:meth:`Runner.feature_stats`). ``names`` name the random streams."""
    ia = {tuple(it["key"]): n for n, it in enumerate(items_a)}
    ib = {tuple(it["key"]): n for n, it in enumerate(items_b)}
    keys = [k for k in ia if k in ib]
    if not keys:
        return {}, 0
    out = {}
    if {"fid", "kid"} & set(metrics):
        out = runner.feature_stats([feats_a[ia[k]] for k in keys], sorted({k[0] for k in keys}), *names,
                                   paired_with=[feats_b[ib[k]] for k in keys])
    for metric in metrics:
        if metric not in out and metric not in ("fid", "kid"):
            out[metric] = runner.paired([items_a[ia[k]][metric] for k in keys], [items_b[ib[k]][metric] for k in keys],
                                        *names, metric)
    return {m: out[m] for m in metrics if m in out}, len(keys)


def paired_rows(runner: Runner, exp: str, items: dict, feats: dict, a: str, b: str, metrics,
                tag: str = "paired") -> list:
    """Rows of paired differences a − b (:func:`paired_stats` of the arms' items and features), one per metric, with
    the verdict. ``tag`` names the random streams. No rows when an arm is missing or they share no item."""
    if a not in items or b not in items:
        return []
    stats, n = paired_stats(runner, items[a], items[b], feats[a], feats[b], metrics, tag, exp, a, b)
    return [row({"experiment": exp, "comparison": f"{a} − {b}", "metric": metric}, {"diff": st},
                verdict=verdict(st, a, b, METRICS[metric][1], n), n_items=n) for metric, st in stats.items()]


def run_paired(runner: Runner, sections: dict) -> dict:
    """Paired bootstrap CIs of a − b for :data:`PAIRED_COMPARISONS` over the items both methods share."""
    sec = section("Paired tests", "Paired bootstrap 95% CIs of the per-item difference a − b (item = the same "
                  "endpoint pair, input set, or (class, set) for random seeds). 'FID-style' and 'KID' resample items "
                  "jointly for both methods. The verdict only says whether the CI excludes 0 (and is withheld below "
                  f"{MIN_PAIRED_ITEMS} items).")
    rows = []
    for exp, a, b in PAIRED_COMPARISONS:
        s = sections.get(exp)
        if s is not None:
            rows += paired_rows(runner, exp, s["items"], s["_feats"], a, b, PAIRED_METRICS[exp])
    if not rows:
        sec["notes"].append("No paired comparison available: run interpolation, centroid or rare as well.")
    sec["tables"].append({"name": "paired", "title": "Paired differences (a − b)", "kind": "paired",
                          "metrics": ["diff"], "rows": rows})
    return sec


# -- over replicates: the long-tail benchmark's declared contrasts -------------------------------------------------
def sign_flip_p(diffs, rng: np.random.Generator, resamples: int = 20000) -> float:
    """Two-sided p-value of a paired sign-flip permutation test over replicates: under "no difference" each
    replicate's difference a - b is as likely to be b - a, so p = the share of the 2^R sign patterns whose
    |mean| reaches the observed one (all of them up to R = 16; else ``resamples`` random patterns from ``rng``,
    p = (1 + hits) / (1 + resamples)). Needs no normality; its smallest p is 2 / 2^R (0.5 at R = 2)."""
    d = np.asarray(diffs, dtype=np.float64)
    observed = abs(d.mean()) - 1e-12 * max(1.0, abs(d.mean()))
    if d.size <= 16:
        signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)
        return float(np.mean(np.abs(signs @ d) / d.size >= observed))
    signs = rng.choice((-1.0, 1.0), size=(resamples, d.size))
    return float((1 + np.sum(np.abs(signs @ d) / d.size >= observed)) / (1 + resamples))


def bootstrap_interval(diffs, rng: np.random.Generator, resamples: int = 10000, confidence: float = 0.95) -> dict:
    """{mean, lo, hi, n}: the mean difference over replicates with the percentile interval of ``resamples``
    paired bootstrap resamples of the replicates (a replicate's a and b stay together)."""
    d = np.asarray(diffs, dtype=np.float64)
    means = d[rng.integers(0, d.size, size=(resamples, d.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": int(d.size)}


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of m p-values (family-wise error at most alpha when every adjusted p <= alpha
    is called): sorted ascending, p_(i) -> max over j <= i of min(1, (m - j) p_(j)) (0-based j). Written here
    because scipy has none (``scipy.stats.false_discovery_control`` is Benjamini-Hochberg, which bounds the
    false discovery rate, not the family-wise error)."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted, running = np.empty_like(p), 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (p.size - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
