"""Experiment 5, paired tests: per-item differences a − b between two methods on the same items (no new images)."""

from __future__ import annotations

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
