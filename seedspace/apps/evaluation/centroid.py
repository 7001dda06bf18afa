"""Experiment 3, centroids: the centroid of k inverted few-shot images of a class and the points on the paths from
it to the inputs, every centroid method."""

from __future__ import annotations

import torch

from ... import geometry
from .config import REFERENCE_METHOD
from .experiment import SeedPlan, arm_metrics, class_name, row, section, timed
from .runner import Runner

ITEM_METRICS = ["acc", "conf", "fdist", "norm", "p_acc", "p_conf", "p_fdist", "p_norm_min", "time_ms"]


def centroid_seeds(seeds: torch.Tensor, method: str, path_steps: int, inputs: int, take) -> tuple:
    """(centroid seed, seeds at the points ``take`` of the paths from it to the first ``inputs`` seeds
    (inputs * len(take), *shape), seconds of geometry)."""
    (cen, paths), dt = timed(geometry.centroid, seeds, method=method, return_paths=True, steps=path_steps)
    pts = paths.float()[:inputs][:, list(take)].reshape(-1, *seeds.shape[1:])
    return cen.float(), pts, dt


def input_sets(runner: Runner, classes, inv, sec, ks=None, per_class: int | None = None) -> list[tuple]:
    """(class, k, set number, sorted input indices) for every class, k (default ``centroid_ks``) and set (the first
    ``per_class``, default ``centroid_sets``; set s of (class, k) is the same in every experiment)."""
    ks = runner.cfg.centroid_ks if ks is None else ks
    per_class = runner.cfg.centroid_sets if per_class is None else int(per_class)
    sets = []
    for c in classes:
        m = inv[c][0].shape[0]
        for k in ks:
            if k > m:
                sec["notes"].append(f"class {c}: k = {k} skipped (only {m} few-shot images)")
                continue
            for s in range(per_class):
                sets.append((c, k, s, sorted(runner.rng("centroid", c, k, s).choice(m, k, replace=False).tolist())))
    if not sets:
        raise ValueError("centroid: no class has enough few-shot images for any k")
    return sets


def run_centroid(runner: Runner) -> dict:
    """Per method and k, the judge's scores of the centroid images and of the images on the paths to the inputs."""
    cfg = runner.cfg
    take = list(range(1, cfg.centroid_path_steps - 1))
    sec = section("Centroids", f"Centroids of k inverted few-shot images of a class, and the interior points "
                  f"of the paths from the centroid to (at most) {cfg.centroid_path_inputs} of the inputs "
                  f"({len(take)} per path), generated for that class. Claim (3).")
    classes = runner.classes()
    inv = runner.inversions(classes, max(cfg.inversions_per_class, max(cfg.centroid_ks)))
    sets = input_sets(runner, classes, inv, sec)
    # reference subset: the first sets, spread over classes and k (class i starts with the i-th k, cyclically)
    kpos = {k: i for i, k in enumerate(cfg.centroid_ks)}
    order = sorted(range(len(sets)), key=lambda q: (
        sets[q][2], (kpos[sets[q][1]] - classes.index(sets[q][0])) % len(kpos), classes.index(sets[q][0])))
    ref_idx = set(order[: cfg.centroid_reference_sets])
    methods = list(cfg.centroid_methods) + ([REFERENCE_METHOD] if ref_idx else [])
    runner.log(f"centroid: {len(sets)} input sets x {len(cfg.centroid_methods)} methods (+{len(ref_idx)} reference)")
    plan, seconds, norms = SeedPlan(), {}, {}
    for q, (c, k, s, idx) in enumerate(sets):
        for m in methods:
            if m == REFERENCE_METHOD and q not in ref_idx:
                continue
            cen, pts, seconds[(m, q)] = centroid_seeds(inv[c][0][idx], m, cfg.centroid_path_steps,
                                                       min(k, cfg.centroid_path_inputs), take)
            plan.add((m, q, "centroid"), cen[None], c)
            plan.add((m, q, "path"), pts, c)
            norms[(m, q)] = (float(runner.norms(cen[None])[0]), float(runner.norms(pts).min()))
    runner.log(f"centroid: {len(plan)} images")
    scored = plan.generate(runner)
    items = {m: [] for m in methods}
    feats = {m: [] for m in methods}
    path_feats = {m: [] for m in methods}
    for m in methods:
        for q, (c, k, s, idx) in enumerate(sets):
            if (m, q) not in seconds:
                continue
            items[m].append({"key": [c, k, s], "class": c, "k": k, "inputs": idx, "set": q,
                             **scored.means((m, q, "centroid")), **scored.means((m, q, "path"), "p_"),
                             "norm": norms[(m, q)][0], "p_norm_min": norms[(m, q)][1],
                             "time_ms": 1000 * seconds[(m, q)]})
            feats[m].append(scored.feats((m, q, "centroid")))
            path_feats[m].append(scored.feats((m, q, "path")))
    sec["items"], sec["_feats"] = items, feats
    ks = sorted({k for _, k, _, _ in sets})

    def rows_for(methods_, keep, name):
        rows = []
        for k in ks + ["all"]:
            for m in methods_:
                sel = [r for r, it in enumerate(items[m]) if (k == "all" or it["k"] == k)
                       and (keep is None or it["set"] in keep)]
                if not sel:
                    continue
                its = [items[m][r] for r in sel]
                groups = {"fid": [feats[m][r] for r in sel], "p_fid": [path_feats[m][r] for r in sel]}
                met = arm_metrics(runner, its, ITEM_METRICS, groups if keep is None else {},
                                  sorted({it["class"] for it in its}), name, k, m)
                rows.append(row({"k": k, "method": m}, met, n_items=len(its),
                                n_images=len(its) + sum(path_feats[m][r].shape[0] for r in sel)))
        return rows

    sec["tables"].append({"name": "centroid", "title": "Centroid images (one per input set)",
                          "metrics": ["acc", "conf", "fdist", "fid", "kid", "norm", "time_ms"],
                          "rows": rows_for(cfg.centroid_methods, None, "centroid")})
    sec["tables"].append({"name": "centroid_paths", "title": "Images on the paths from the centroid to the inputs",
                          "metrics": ["p_acc", "p_conf", "p_fdist", "p_fid", "p_kid", "p_norm_min"],
                          "rows": rows_for(cfg.centroid_methods, None, "centroid_paths")})
    if ref_idx:
        rows = [r for r in rows_for(methods, ref_idx, "centroid_subset") if r["label"]["k"] == "all"]
        sec["tables"].append({"name": "centroid_subset", "title": f"Subset of {len(ref_idx)} input sets with the "
                              "reference solver (same sets for every method)",
                              "metrics": ["acc", "conf", "fdist", "p_acc", "p_fdist", "norm", "time_ms"], "rows": rows})
    sec["notes"].append("Time: the centroid and its paths (geometry only), per input set. FID-style scores in the "
                        "'all' rows pool every k; compare FID only between rows with the same n.")
    # example: the first set with the largest k of the first class
    q0 = max((q for q in range(len(sets)) if sets[q][0] == sets[0][0] and sets[q][2] == 0), key=lambda q: sets[q][1])
    c0, k0, _, idx0 = sets[q0]
    ex = {"rows": [], "row_labels": [], "col_labels": ["centroid"] + [f"path {i + 1}" for i in range(8)]}
    for m in methods:
        if (m, q0) in seconds:
            ex["rows"].append([*scored.images_of((m, q0, "centroid")), *scored.images_of((m, q0, "path"))][:9])
            ex["row_labels"].append(m)
    ex["rows"].append(list(inv[c0][1][idx0][:9]))
    ex["row_labels"].append("real inputs")
    ex["title"] = f"class {class_name(runner, c0)}, k = {k0} (last row: the real inputs, not columns)"
    sec["_examples"] = ex
    return sec
