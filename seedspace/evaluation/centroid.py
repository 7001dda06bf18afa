"""Experiment 3, centroids: the centroid of k inverted few-shot images of a class and the points on the paths from
it to the inputs, every centroid method.

The pieces (the input sets, the seeds of named arms, their per-set scores, the table rows) are shared with
:mod:`.priors`, which runs the same input sets with NAO under other norm priors, and :mod:`.schedulers`, which
renders some of them with other samplers."""

from __future__ import annotations

import logging

import torch

from .. import geometry
from .config import REFERENCE_METHOD
from .experiment import SeedPlan, arm_metrics, class_name, row, section, timed
from .runner import Runner

log = logging.getLogger(__name__)

ITEM_METRICS = ["acc", "conf", "fdist", "norm", "p_acc", "p_conf", "p_fdist", "p_norm_min", "time_ms"]
CENTROID_TABLE_METRICS = ["acc", "conf", "fdist", "fid", "kid", "norm", "time_ms"]
PATH_TABLE_METRICS = ["p_acc", "p_conf", "p_fdist", "p_fid", "p_kid", "p_norm_min"]


def centroid_seeds(seeds: torch.Tensor, method: str, path_steps: int, inputs: int, take, prior=None) -> tuple:
    """(centroid seed, seeds at the points ``take`` of the paths from it to the first ``inputs`` seeds
    (inputs * len(take), *shape), seconds of geometry). ``prior``: the norm prior of the NAO centroid and of the
    NAO paths (None: chi(d))."""
    (cen, paths), dt = timed(geometry.centroid, seeds, method=method, return_paths=True, steps=path_steps, prior=prior)
    pts = paths.float()[:inputs][:, list(take)].reshape(-1, *seeds.shape[1:])
    return cen.float(), pts, dt


def centroid_input_sets(runner: Runner, classes, inv, notes: list, per_k: int | None = None,
                        ks=None) -> list[tuple]:
    """(class, k, set number, sorted input indices) for every class, k of ``ks`` (default ``centroid.ks``) and set
    (the first ``per_k``, default ``centroid.sets``, per class and k, each drawn from the run seed, the class, k and
    its number, so set s of (class, k) is the same in every experiment with as many inversions); a k larger than a
    class's images gets a line in ``notes``."""
    sets = []
    for c in classes:
        m = inv[c][0].shape[0]
        for k in runner.cfg.centroid.ks if ks is None else ks:
            if k > m:
                notes.append(f"class {c}: k = {k} skipped (only {m} few-shot images)")
                continue
            for s in range(runner.cfg.centroid.sets if per_k is None else per_k):
                sets.append((c, k, s, sorted(runner.rng("centroid", c, k, s).choice(m, k, replace=False).tolist())))
    if not sets:
        raise ValueError("centroid: no class has enough few-shot images for any k")
    return sets


def centroid_inputs(runner: Runner, notes: list, per_k: int | None = None) -> tuple:
    """(classes, inversions, input sets) of the centroid experiment (inversions: max(inversions_per_class, max k)
    per class, the interpolation experiment's first ones included; ``per_k``: see :func:`centroid_input_sets`)."""
    classes = runner.classes()
    inv = runner.inversions(classes, max(runner.cfg.inversions_per_class, max(runner.cfg.centroid.ks)))
    return classes, inv, centroid_input_sets(runner, classes, inv, notes, per_k)


def score_centroids(runner: Runner, inv: dict, sets: list, arms: dict, path_inputs: int | None = None) -> tuple:
    """For every arm ``{name: (method, prior, set indices or None for all)}`` and input set: the centroid and the
    interior points of the paths from it to (at most) ``path_inputs`` (default ``centroid.path_inputs``) of its
    inputs, generated once; returns
    (scored, {arm: per-set items}, {arm: centroid features}, {arm: path features}, {arm: per-set seconds})."""
    cfg = runner.cfg
    take = list(range(1, cfg.centroid.path_steps - 1))
    path_inputs = cfg.centroid.path_inputs if path_inputs is None else path_inputs
    plan, seconds, norms = SeedPlan(), {}, {}
    for q, (c, k, s, idx) in enumerate(sets):
        for m, (method, prior, only) in arms.items():
            if only is not None and q not in only:
                continue
            cen, pts, seconds[(m, q)] = centroid_seeds(inv[c][0][idx], method, cfg.centroid.path_steps,
                                                       min(k, path_inputs), take, prior)
            plan.add((m, q, "centroid"), cen[None], c)
            plan.add((m, q, "path"), pts, c)
            norms[(m, q)] = (float(runner.norms(cen[None])[0]), float(runner.norms(pts).min()))
    log.info(f"centroid: {len(plan)} images")
    scored = plan.generate(runner)
    items, feats, path_feats = ({m: [] for m in arms} for _ in range(3))
    for m in arms:
        for q, (c, k, s, idx) in enumerate(sets):
            if (m, q) not in seconds:
                continue
            items[m].append({"key": [c, k, s], "class": c, "k": k, "inputs": idx, "set": q,
                             **scored.means((m, q, "centroid")), **scored.means((m, q, "path"), "p_"),
                             "norm": norms[(m, q)][0], "p_norm_min": norms[(m, q)][1],
                             "time_ms": 1000 * seconds[(m, q)]})
            feats[m].append(scored.feats((m, q, "centroid")))
            path_feats[m].append(scored.feats((m, q, "path")))
    return scored, items, feats, path_feats, seconds


def centroid_rows(runner: Runner, items: dict, feats: dict, path_feats: dict, names, ks, keep: set | None, name: str,
                  label: dict | None = None) -> list[dict]:
    """Rows per k (then 'all' k) and arm of ``names`` over the sets in ``keep`` (None: all, with FID-style and KID of
    the centroid and path images), labelled ``{"k": k, **label[arm]}`` (default ``{"method": arm}``)."""
    rows = []
    for k in list(ks) + ["all"]:
        for m in names:
            sel = [r for r, it in enumerate(items[m]) if (k == "all" or it["k"] == k)
                   and (keep is None or it["set"] in keep)]
            if not sel:
                continue
            its = [items[m][r] for r in sel]
            groups = {"fid": [feats[m][r] for r in sel], "p_fid": [path_feats[m][r] for r in sel]}
            met = arm_metrics(runner, its, ITEM_METRICS, groups if keep is None else {},
                              sorted({it["class"] for it in its}), name, k, m)
            rows.append(row({"k": k, **(label or {}).get(m, {"method": m})}, met, n_items=len(its),
                            n_images=len(its) + sum(path_feats[m][r].shape[0] for r in sel)))
    return rows


def measure_centroid(runner: Runner) -> dict:
    """Every method's centroids of the sampled input sets and the points on their paths to the inputs (the
    reference solver's on the first sets), generated and scored: per-set items, judge features, the example grid."""
    cfg, notes = runner.cfg.centroid, []
    classes, inv, sets = centroid_inputs(runner, notes)
    # reference subset: the first sets, spread over classes and k (class i starts with the i-th k, cyclically)
    kpos = {k: i for i, k in enumerate(cfg.ks)}
    order = sorted(range(len(sets)), key=lambda q: (
        sets[q][2], (kpos[sets[q][1]] - classes.index(sets[q][0])) % len(kpos), classes.index(sets[q][0])))
    ref_idx = sorted(order[: cfg.reference_sets])
    arms = {m: (m, None, None) for m in cfg.methods}
    if ref_idx:
        arms[REFERENCE_METHOD] = (REFERENCE_METHOD, None, set(ref_idx))
    log.info(f"centroid: {len(sets)} input sets x {len(cfg.methods)} methods (+{len(ref_idx)} reference)")
    scored, items, feats, path_feats, seconds = score_centroids(runner, inv, sets, arms)
    return {"ks": sorted({k for _, k, _, _ in sets}), "reference_sets": ref_idx, "items": items, "feats": feats,
            "path_feats": path_feats, "notes": notes,
            "examples": centroid_examples(runner, scored, inv, sets, list(arms), seconds)}


def tabulate_centroid(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_centroid`'s measurements."""
    cfg = runner.cfg.centroid
    sec = section("Centroids", f"Centroids of k inverted few-shot images of a class, and the interior points "
                  f"of the paths from the centroid to (at most) {cfg.path_inputs} of the inputs "
                  f"({max(cfg.path_steps - 2, 0)} per path), generated for that class. Claim (3).")
    items, feats, path_feats, ks = (measured[k] for k in ("items", "feats", "path_feats", "ks"))
    sec["notes"] += measured["notes"]
    sec["items"], sec["_feats"] = items, feats
    sec["tables"].append({"name": "centroid", "title": "Centroid images (one per input set)",
                          "metrics": CENTROID_TABLE_METRICS,
                          "rows": centroid_rows(runner, items, feats, path_feats, cfg.methods, ks, None, "centroid")})
    sec["tables"].append({"name": "centroid_paths", "title": "Images on the paths from the centroid to the inputs",
                          "metrics": PATH_TABLE_METRICS,
                          "rows": centroid_rows(runner, items, feats, path_feats, cfg.methods, ks, None,
                                                "centroid_paths")})
    ref_idx = set(measured["reference_sets"])
    if ref_idx:
        rows = [r for r in centroid_rows(runner, items, feats, path_feats, list(items), ks, ref_idx, "centroid_subset")
                if r["label"]["k"] == "all"]
        sec["tables"].append({"name": "centroid_subset", "title": f"Subset of {len(ref_idx)} input sets with the "
                              "reference solver (same sets for every method)",
                              "metrics": ["acc", "conf", "fdist", "p_acc", "p_fdist", "norm", "time_ms"], "rows": rows})
    sec["notes"].append("Time: the centroid and its paths (geometry only), per input set. FID-style scores in the "
                        "'all' rows pool every k; compare FID only between rows with the same n.")
    sec["_examples"] = measured["examples"]
    return sec


def centroid_examples(runner: Runner, scored, inv: dict, sets: list, arms, seconds: dict) -> dict:
    """The example grid: the first set with the largest k of the first class, one row per arm, then the real inputs."""
    q0 = max((q for q in range(len(sets)) if sets[q][0] == sets[0][0] and sets[q][2] == 0), key=lambda q: sets[q][1])
    c0, k0, _, idx0 = sets[q0]
    ex = {"rows": [], "row_labels": [], "col_labels": ["centroid"] + [f"path {i + 1}" for i in range(8)]}
    for m in arms:
        if (m, q0) in seconds:
            ex["rows"].append(torch.cat([scored.images_of((m, q0, "centroid")), scored.images_of((m, q0, "path"))])[:9])
            ex["row_labels"].append(m)
    ex["rows"].append(inv[c0][1][idx0][:9])
    ex["row_labels"].append("real inputs")
    ex["title"] = f"class {class_name(runner, c0)}, k = {k0} (last row: the real inputs, not columns)"
    return ex
