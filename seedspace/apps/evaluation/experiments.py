"""The five experiments of `seedspace evaluate`. Each returns a section:

``{"title", "description", "tables": [...], "notes": [...], "items": {arm: [per-item dicts]}, "time_s", "images"}``
plus private keys (``_examples`` for the example grid, ``_feats`` for paired FID tests) that are not written
to JSON. A table is ``{"name", "title", "metrics": [...], "rows": [{"label": {...}, "metrics": {m: stat}}]}``
with ``stat = {"mean", "lo", "hi", "n"}``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..metrics import cluster_bootstrap_ci
from .config import PAIRED_COMPARISONS, REFERENCE_METHOD
from .runner import Runner, stable_seed

# metric key -> (column title, better: 'higher' / 'lower' / None)
METRICS = {
    "acc": ("accuracy", "higher"),
    "conf": ("judge conf.", "higher"),
    "fdist": ("feat. dist.", "lower"),
    "fid": ("FID-style", "lower"),
    "norm_mean": ("norm/√d mean", None),
    "norm_min": ("norm/√d min", None),
    "norm": ("norm/√d", None),
    "smooth_mean": ("step mean", "lower"),
    "smooth_max": ("step max", "lower"),
    "diversity": ("diversity", "higher"),
    "time_ms": ("time ms", "lower"),
    "p_acc": ("path accuracy", "higher"),
    "p_conf": ("path conf.", "higher"),
    "p_fdist": ("path feat. dist.", "lower"),
    "p_fid": ("path FID-style", "lower"),
    "p_norm_min": ("path norm/√d min", None),
}


def _geometry():
    from ... import geometry

    return geometry


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _row(label: dict, metrics: dict, **extra) -> dict:
    return {"label": label, "metrics": metrics, **extra}


def _section(title: str, description: str) -> dict:
    return {"title": title, "description": description, "tables": [], "notes": [], "items": {}}


# -- 1. norm bias ---------------------------------------------------------------------------------------------
def run_norm(runner: Runner, scales=None, per_group: int | None = None) -> dict:
    """Seed directions fixed, norm scaled to s * sqrt(d); per class group, judge scores and FID-style score."""
    cfg, t_start, images_before = runner.cfg, time.perf_counter(), runner.counters["images"]
    scales = tuple(float(s) for s in (scales or cfg.norm_scales))
    per_group = int(per_group or cfg.norm_per_group)
    shape = runner.model.seed_shape
    sec = _section("Norm bias", "Random seed directions (the same directions at every norm), rescaled to norm "
                   "s·√d, generated for the classes of each group in turn. Claim (1): images degrade away from s = 1.")
    seeds, classes, cells = [], [], []
    for g, group in runner.groups().items():
        n = math.ceil(per_group / len(group)) * len(group)
        base = runner.random_seeds(n, "norm", g)
        unit = base / base.reshape(n, -1).norm(dim=1).view(n, *[1] * len(shape))
        cl = [group[i % len(group)] for i in range(n)]
        for s in scales:
            cells.append((g, group, s, len(classes), n))
            seeds.append(unit * (s * math.sqrt(runner.d)))
            classes += cl
    runner.log(f"norm: {len(classes)} images ({len(scales)} norms x {len(cells) // len(scales)} groups)")
    images = runner.generate(torch.cat(seeds), classes)
    sc = runner.judge.score(images, classes)
    rows = []
    for g, group, s, start, n in cells:
        sl = slice(start, start + n)
        name = ("norm", g, s)
        rows.append(_row({"group": g, "scale": s}, {
            "acc": runner.stat(sc["correct"][sl], *name, "acc"),
            "conf": runner.stat(sc["conf"][sl], *name, "conf"),
            "fdist": runner.stat(sc["fdist"][sl], *name, "fdist"),
            "fid": runner.fid_stat([f[None] for f in sc["feats"][sl]], group, *name)},
            classes=list(group)))
        sec["items"].setdefault(g, []).append({"scale": s, "classes": list(group), "correct": sc["correct"][sl].tolist(),
                                               "conf": sc["conf"][sl].tolist(), "fdist": sc["fdist"][sl].tolist()})
    sec["tables"].append({"name": "norm", "title": "Judge scores versus seed norm (norm/√d = s)",
                          "metrics": ["acc", "conf", "fdist", "fid"], "rows": rows})
    sec["notes"].append(f"{cells[0][4]} images per cell; groups: " + ", ".join(
        f"{g} = classes {group}" for g, group in runner.groups().items()) + ".")
    # example grid: two directions per group across the norms
    ex_rows, ex_labels = [], []
    for g, group, s, start, n in cells:
        if s != scales[0]:
            continue
        for j in range(min(2, n)):
            ex_rows.append([images[start + scales.index(t) * n + j] for t in scales])
            ex_labels.append(f"{g} class {classes[start + j]}")
    sec["_examples"] = {"rows": ex_rows, "row_labels": ex_labels, "col_labels": [f"{s:g}√d" for s in scales],
                        "caption": "Norm bias: one seed direction per row, rescaled to each norm"}
    sec["time_s"] = time.perf_counter() - t_start
    sec["images"] = runner.counters["images"] - images_before
    return sec


# -- 2. interpolation -----------------------------------------------------------------------------------------
def run_interpolation(runner: Runner) -> dict:
    cfg, geo = runner.cfg, _geometry()
    t_start, images_before = time.perf_counter(), runner.counters["images"]
    shape, T = runner.model.seed_shape, int(cfg.interp_points)
    sec = _section("Interpolation", f"Paths between two inverted few-shot images of the same class, {T} interior "
                   "frames each (evenly spaced as each method spaces them), generated for that class. Claim (2).")
    classes = runner.classes()
    inv = runner.inversions(classes, cfg.inversions_per_class)
    pairs = []  # (class, i, j, rank within class)
    for c in classes:
        m = inv[c][0].shape[0]
        combos = [(i, j) for i in range(m) for j in range(i + 1, m)]
        if not combos:
            sec["notes"].append(f"class {c}: fewer than 2 few-shot images, skipped")
            continue
        pick = runner.rng("interp-pairs", c).permutation(len(combos))[: cfg.interp_pairs_per_class]
        pairs += [(c, *combos[p], r) for r, p in enumerate(pick)]
    if not pairs:
        raise ValueError("interpolation: no class has two few-shot images")
    A = torch.stack([inv[c][0][i] for c, i, j, r in pairs])
    B = torch.stack([inv[c][0][j] for c, i, j, r in pairs])
    P = len(pairs)
    order = sorted(range(P), key=lambda q: (pairs[q][3], classes.index(pairs[q][0])))
    ref_idx = sorted(order[: cfg.interp_reference_paths])
    paths, times = {}, {}
    runner.log(f"interpolation: {P} paths x {len(cfg.interp_methods)} methods (+{len(ref_idx)} reference)")
    for m in cfg.interp_methods:
        p, dt = _timed(geo.interpolate, A, B, steps=T + 2, method=m, batched=True)
        paths[m], times[m] = p.transpose(0, 1).float(), dt / P  # (P, T + 2, *shape)
    arm_items = {m: list(range(P)) for m in cfg.interp_methods}
    if ref_idx and cfg.interp_reference_paths > 0:
        p, dt = _timed(geo.interpolate, A[ref_idx], B[ref_idx], steps=T + 2, method=REFERENCE_METHOD, batched=True)
        paths[REFERENCE_METHOD], times[REFERENCE_METHOD] = p.transpose(0, 1).float(), dt / len(ref_idx)
        arm_items[REFERENCE_METHOD] = ref_idx
    # one generate call: endpoints once, then every method's interior frames
    pair_classes = [c for c, *_ in pairs]
    all_seeds, all_classes, offsets = [A, B], pair_classes * 2, {}
    for m, p in paths.items():
        cl = [pair_classes[q] for q in arm_items[m] for _ in range(T)]
        offsets[m] = len(all_classes)
        all_seeds.append(p[:, 1:-1].reshape(-1, *shape))
        all_classes += cl
    runner.log(f"interpolation: {len(all_classes)} images")
    images = runner.generate(torch.cat(all_seeds), all_classes)
    sc = runner.judge.score(images, all_classes)
    feats_end_a, feats_end_b = sc["feats"][:P], sc["feats"][P:2 * P]
    items, feats = {}, {}
    for m, p in paths.items():
        items[m], feats[m] = [], []
        norms = runner.norms(p)  # (n, T + 2)
        for row, q in enumerate(arm_items[m]):
            c, i, j, _ = pairs[q]
            sl = slice(offsets[m] + row * T, offsets[m] + (row + 1) * T)
            f = sc["feats"][sl]
            seq = np.concatenate([feats_end_a[q][None], f, feats_end_b[q][None]])
            steps_ = runner.judge.relative_distance(seq[1:], seq[:-1], c)
            items[m].append({"key": [c, i, j], "class": c, "acc": float(sc["correct"][sl].mean()),
                             "conf": float(sc["conf"][sl].mean()), "fdist": float(sc["fdist"][sl].mean()),
                             "norm_mean": float(norms[row].mean()), "norm_min": float(norms[row].min()),
                             "smooth_mean": float(steps_.mean()), "smooth_max": float(steps_.max()),
                             "time_ms": 1000 * times[m]})
            feats[m].append(f)
    sec["items"], sec["_feats"] = items, feats
    metric_keys = ["acc", "conf", "fdist", "fid", "norm_mean", "norm_min", "smooth_mean", "smooth_max", "time_ms"]

    def table(methods, keep: set | None, name, title):
        rows = []
        for m in methods:
            sel = [r for r, q in enumerate(arm_items[m]) if keep is None or q in keep]
            its = [items[m][r] for r in sel]
            cls = sorted({it["class"] for it in its})
            met = {k: runner.stat([it[k] for it in its], name, m, k) for k in metric_keys if k not in ("fid", "time_ms")}
            met["fid"] = runner.fid_stat([feats[m][r] for r in sel], cls, name, m)
            met["time_ms"] = {"mean": 1000 * times[m], "lo": 1000 * times[m], "hi": 1000 * times[m], "n": len(its)}
            rows.append(_row({"method": m}, met, n_items=len(its), n_images=len(its) * T))
        return {"name": name, "title": title, "metrics": metric_keys, "rows": rows}

    sec["tables"].append(table(cfg.interp_methods, None, "interpolation",
                               f"All {P} paths ({len(classes)} classes); frames = {P * T} per method"))
    if REFERENCE_METHOD in paths:
        sec["tables"].append(table(list(cfg.interp_methods) + [REFERENCE_METHOD], set(ref_idx), "interpolation_subset",
                                   f"Subset of {len(ref_idx)} paths with the reference solver (same paths for every method)"))
    # per-class accuracy matrix
    sec["tables"].append({"name": "interpolation_per_class", "title": "Share of frames classified as the class, per class",
                          "kind": "matrix", "metrics": ["acc"], "columns": list(cfg.interp_methods), "rows": [
                              {"label": {"class": _class_name(runner, c)}, "cells": {
                                  m: runner.stat([it["acc"] for it in items[m] if it["class"] == c], "interp-class", m, c)
                                  for m in cfg.interp_methods}} for c in sorted(set(pair_classes))]})
    sec["notes"].append("Step mean/max: judge-feature distance between consecutive frames (endpoint reconstructions "
                        "included), in units of the class's real spread. Norms are over the whole path, endpoints "
                        "included. Time: geometry only, per path (generation costs the same for every method).")
    q0 = 0
    sec["_examples"] = {"rows": [], "row_labels": [], "col_labels": ["A"] + [f"t{t + 1}" for t in range(T)] + ["B"]}
    for m in paths:
        if q0 in arm_items[m]:
            r = arm_items[m].index(q0)
            sl = slice(offsets[m] + r * T, offsets[m] + (r + 1) * T)
            sec["_examples"]["rows"].append([images[q0]] + list(images[sl]) + [images[P + q0]])
            sec["_examples"]["row_labels"].append(m)
    sec["time_s"] = time.perf_counter() - t_start
    sec["images"] = runner.counters["images"] - images_before
    return sec


def _class_name(runner: Runner, c: int) -> str:
    names = getattr(runner.model, "class_names", None) or []
    return f"{c} {names[c]}" if c < len(names) else str(c)


# -- 3. centroids ---------------------------------------------------------------------------------------------
def _centroid_seeds(geo, seeds, method, path_steps, inputs, take):
    """(centroid seed, path seeds (q * len(take), *shape), path norms source, seconds)."""
    (cen, paths), dt = _timed(geo.centroid, seeds, method=method, return_paths=True, steps=path_steps)
    paths = paths.float()
    pts = paths[:inputs][:, list(take)].reshape(-1, *seeds.shape[1:])
    return cen.float(), pts, dt


def run_centroid(runner: Runner) -> dict:
    cfg, geo = runner.cfg, _geometry()
    t_start, images_before = time.perf_counter(), runner.counters["images"]
    shape = runner.model.seed_shape
    take = list(range(1, cfg.centroid_path_steps - 1))
    sec = _section("Centroids", f"Centroids of k inverted few-shot images of a class, and the interior points "
                   f"of the paths from the centroid to (at most) {cfg.centroid_path_inputs} of the inputs "
                   f"({len(take)} per path), generated for that class. Claim (3).")
    classes = runner.classes()
    inv = runner.inversions(classes, max(cfg.inversions_per_class, max(cfg.centroid_ks)))
    sets = []  # (class, k, s, indices)
    for c in classes:
        m = inv[c][0].shape[0]
        for k in cfg.centroid_ks:
            if k > m:
                sec["notes"].append(f"class {c}: k = {k} skipped (only {m} few-shot images)")
                continue
            for s in range(cfg.centroid_sets):
                sets.append((c, k, s, sorted(runner.rng("centroid", c, k, s).choice(m, k, replace=False).tolist())))
    if not sets:
        raise ValueError("centroid: no class has enough few-shot images for any k")
    # reference subset: the first sets, spread over classes and k (class i starts with the i-th k, cyclically)
    kpos = {k: i for i, k in enumerate(cfg.centroid_ks)}
    order = sorted(range(len(sets)), key=lambda q: (
        sets[q][2], (kpos[sets[q][1]] - classes.index(sets[q][0])) % len(kpos), classes.index(sets[q][0])))
    ref_idx = set(order[: cfg.centroid_reference_sets])
    methods = list(cfg.centroid_methods) + ([REFERENCE_METHOD] if ref_idx else [])
    runner.log(f"centroid: {len(sets)} input sets x {len(cfg.centroid_methods)} methods (+{len(ref_idx)} reference)")
    plan = {m: [] for m in methods}  # per method: (set index, centroid seed, path seeds, seconds)
    for q, (c, k, s, idx) in enumerate(sets):
        for m in methods:
            if m == REFERENCE_METHOD and q not in ref_idx:
                continue
            cen, pts, dt = _centroid_seeds(geo, inv[c][0][idx], m, cfg.centroid_path_steps,
                                           min(k, cfg.centroid_path_inputs), take)
            plan[m].append((q, cen, pts, dt))
    all_seeds, all_classes, offsets = [], [], {}
    for m in methods:
        for q, cen, pts, dt in plan[m]:
            c = sets[q][0]
            offsets[(m, q)] = len(all_classes)
            all_seeds += [cen[None], pts]
            all_classes += [c] * (1 + pts.shape[0])
    runner.log(f"centroid: {len(all_classes)} images")
    images = runner.generate(torch.cat(all_seeds), all_classes)
    sc = runner.judge.score(images, all_classes)
    items, feats = {m: [] for m in methods}, {m: [] for m in methods}
    for m in methods:
        for q, cen, pts, dt in plan[m]:
            c, k, s, idx = sets[q]
            o, npts = offsets[(m, q)], pts.shape[0]
            ps = slice(o + 1, o + 1 + npts)
            items[m].append({"key": [c, k, s], "class": c, "k": k, "inputs": idx, "set": q,
                             "acc": float(sc["correct"][o]), "conf": float(sc["conf"][o]), "fdist": float(sc["fdist"][o]),
                             "norm": float(runner.norms(cen[None])[0]),
                             "p_acc": float(sc["correct"][ps].mean()), "p_conf": float(sc["conf"][ps].mean()),
                             "p_fdist": float(sc["fdist"][ps].mean()), "p_norm_min": float(runner.norms(pts).min()),
                             "time_ms": 1000 * dt})
            feats[m].append((sc["feats"][o][None], sc["feats"][ps]))
    sec["items"], sec["_feats"] = items, {m: [f[0] for f in feats[m]] for m in methods}
    sec["_path_feats"] = {m: [f[1] for f in feats[m]] for m in methods}
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
                cls = sorted({it["class"] for it in its})
                nm = (name, k, m)
                met = {key: runner.stat([it[key] for it in its], *nm, key)
                       for key in ("acc", "conf", "fdist", "norm", "p_acc", "p_conf", "p_fdist", "p_norm_min", "time_ms")}
                met["fid"] = runner.fid_stat([feats[m][r][0] for r in sel], cls, *nm, "fid")
                met["p_fid"] = runner.fid_stat([feats[m][r][1] for r in sel], cls, *nm, "p_fid")
                rows.append(_row({"k": k, "method": m}, met, n_items=len(its),
                                 n_images=len(its) + sum(feats[m][r][1].shape[0] for r in sel)))
        return rows

    sec["tables"].append({"name": "centroid", "title": "Centroid images (one per input set)",
                          "metrics": ["acc", "conf", "fdist", "fid", "norm", "time_ms"],
                          "rows": rows_for(cfg.centroid_methods, None, "centroid")})
    sec["tables"].append({"name": "centroid_paths", "title": "Images on the paths from the centroid to the inputs",
                          "metrics": ["p_acc", "p_conf", "p_fdist", "p_fid", "p_norm_min"],
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
        hit = [p for p in plan[m] if p[0] == q0]
        if hit:
            o = offsets[(m, q0)]
            ex["rows"].append(list(images[o:o + 1 + hit[0][2].shape[0]][:9]))
            ex["row_labels"].append(m)
    ex["rows"].append(list(inv[c0][1][idx0][:9]))
    ex["row_labels"].append("real inputs")
    ex["title"] = f"class {_class_name(runner, c0)}, k = {k0} (last row: the real inputs, not columns)"
    sec["_examples"] = ex
    sec["time_s"] = time.perf_counter() - t_start
    sec["images"] = runner.counters["images"] - images_before
    return sec


# -- 4. rare concepts -----------------------------------------------------------------------------------------
def run_rare(runner: Runner) -> dict:
    cfg, geo = runner.cfg, _geometry()
    t_start, images_before = time.perf_counter(), runner.counters["images"]
    tail = runner.rare_classes()
    take = list(cfg.rare_path_take)
    sec = _section("Rare concepts", f"Tail classes {tail} of the long-tailed model. Per input set of k inverted "
                   f"few-shot images: the centroid and the points {take} of {cfg.rare_path_steps} on each path from "
                   "the centroid to an input; 'random' = the same number of random seeds. Claims (3) and (4).")
    inv = runner.inversions(tail, max(cfg.inversions_per_class, cfg.rare_k))
    sets = []
    for c in tail:
        m = inv[c][0].shape[0]
        k = min(cfg.rare_k, m)
        if k < cfg.rare_k:
            sec["notes"].append(f"class {c}: k = {k} (only {m} few-shot images)")
        for s in range(cfg.rare_sets):
            sets.append((c, k, s, sorted(runner.rng("rare", c, s).choice(m, k, replace=False).tolist())))
    arms = ["random"] + list(cfg.rare_methods)
    runner.log(f"rare: {len(sets)} input sets x {len(arms)} arms")
    plan = {a: [] for a in arms}
    for q, (c, k, s, idx) in enumerate(sets):
        n_set = None
        for m in cfg.rare_methods:
            cen, pts, dt = _centroid_seeds(geo, inv[c][0][idx], m, cfg.rare_path_steps, k, take)
            seeds = torch.cat([cen[None], pts])
            plan[m].append((q, seeds, dt))
            n_set = seeds.shape[0]
        plan["random"].append((q, runner.random_seeds(n_set, "rare", c, s), 0.0))
    all_seeds, all_classes, offsets = [], [], {}
    for a in arms:
        for q, seeds, dt in plan[a]:
            offsets[(a, q)] = len(all_classes)
            all_seeds.append(seeds)
            all_classes += [sets[q][0]] * seeds.shape[0]
    runner.log(f"rare: {len(all_classes)} images")
    images = runner.generate(torch.cat(all_seeds), all_classes)
    sc = runner.judge.score(images, all_classes)
    items, feats = {a: [] for a in arms}, {a: [] for a in arms}
    for a in arms:
        for q, seeds, dt in plan[a]:
            c, k, s, idx = sets[q]
            o = offsets[(a, q)]
            sl = slice(o, o + seeds.shape[0])
            f = sc["feats"][sl]
            items[a].append({"key": [c, s], "class": c, "k": k, "inputs": idx, "acc": float(sc["correct"][sl].mean()),
                             "conf": float(sc["conf"][sl].mean()), "fdist": float(sc["fdist"][sl].mean()),
                             "diversity": runner.judge.diversity(f, c), "norm_mean": float(runner.norms(seeds).mean()),
                             "time_ms": 1000 * dt})
            feats[a].append(f)
    # calibration row: real reference images of the tail classes, in sets of the same size
    real = []
    set_size = plan[arms[0]][0][1].shape[0]
    for c, k, s, idx in sets:
        ref = runner.judge.ref_feats[c]
        pick = runner.rng("rare-real", c, s).choice(ref.shape[0], min(set_size, ref.shape[0]), replace=False)
        real.append({"key": [c, s], "class": c, "acc": float(runner.judge.ref_correct[c][pick].mean()),
                     "conf": float(runner.judge.ref_conf[c][pick].mean()),
                     "fdist": float((np.linalg.norm(ref[pick] - runner.judge.mu[c], axis=1) / runner.judge.scale[c]).mean()),
                     "diversity": runner.judge.diversity(ref[pick], c)})
    sec["items"] = {**items, "real images": real}
    sec["_feats"] = feats
    rows = []
    for a in arms:
        nm = ("rare", a)
        met = {key: runner.stat([it[key] for it in items[a]], *nm, key)
               for key in ("acc", "conf", "fdist", "diversity", "norm_mean", "time_ms")}
        met["fid"] = runner.fid_stat(feats[a], tail, *nm, "fid")
        rows.append(_row({"method": a}, met, n_items=len(items[a]), n_images=sum(f.shape[0] for f in feats[a])))
    rows.append(_row({"method": "real images (judge calibration)"},
                     {key: runner.stat([it[key] for it in real], "rare-real", key)
                      for key in ("acc", "conf", "fdist", "diversity")},
                     n_items=len(real), n_images=len(real) * set_size))
    sec["tables"].append({"name": "rare", "title": f"Tail classes {tail}: {len(sets)} input sets, {set_size} images per "
                          "set and arm", "metrics": ["acc", "conf", "fdist", "fid", "diversity", "norm_mean", "time_ms"],
                          "rows": rows})
    # pooled per-class diversity (all images of an arm for the class)
    pooled = {"name": "rare_pooled_diversity", "title": "Diversity of all images of an arm, per tail class",
              "kind": "matrix", "metrics": ["diversity"], "columns": arms, "rows": []}
    for c in tail:
        cells = {}
        for a in arms:
            f = np.concatenate([feats[a][r] for r, it in enumerate(items[a]) if it["class"] == c])
            v = runner.judge.diversity(f, c)
            cells[a] = {"mean": v, "lo": v, "hi": v, "n": int(f.shape[0])}
        pooled["rows"].append({"label": {"class": _class_name(runner, c)}, "cells": cells})
    sec["tables"].append(pooled)
    sec["notes"].append("Diversity: mean pairwise judge-feature distance within a set (in units of the class's real "
                        "spread); the calibration row gives real images' values for sets of the same size. Claim (4) "
                        "(seed optimisation from NAO seeds) is evaluated by SeedSelect, not here: these are the "
                        "starting seeds' images before any optimisation.")
    q0 = 0
    ex = {"rows": [], "row_labels": [], "col_labels": ["centroid"] + [f"p{i + 1}" for i in range(set_size - 1)],
          "title": f"class {_class_name(runner, sets[0][0])}"}
    for a in arms:
        o = offsets[(a, q0)]
        ex["rows"].append(list(images[o:o + set_size][:11]))
        ex["row_labels"].append(a)
    ex["col_labels"][0] = "centroid / 1"
    sec["_examples"] = ex
    sec["time_s"] = time.perf_counter() - t_start
    sec["images"] = runner.counters["images"] - images_before
    return sec


# -- 5. paired tests ------------------------------------------------------------------------------------------
PAIRED_METRICS = {
    "interpolation": ["acc", "conf", "fdist", "norm_min", "smooth_max", "fid"],
    "centroid": ["acc", "conf", "fdist", "p_acc", "p_fdist", "fid"],
    "rare": ["acc", "conf", "fdist", "diversity", "fid"],
}


MIN_PAIRED_ITEMS = 10  # below this a bootstrap CI is not worth a verdict


def run_paired(runner: Runner, sections: dict) -> dict:
    sec = _section("Paired tests", "Paired bootstrap 95% CIs of the per-item difference a − b (item = the same "
                   "endpoint pair, input set, or (class, set) for random seeds). 'FID-style' resamples items jointly "
                   "for both methods. The verdict only says whether the CI excludes 0 (and is withheld below "
                   f"{MIN_PAIRED_ITEMS} items).")
    rows = []
    for exp, a, b in PAIRED_COMPARISONS:
        s = sections.get(exp)
        if s is None or a not in s["items"] or b not in s["items"]:
            continue
        ia = {tuple(it["key"]): n for n, it in enumerate(s["items"][a])}
        ib = {tuple(it["key"]): n for n, it in enumerate(s["items"][b])}
        keys = [k for k in ia if k in ib]
        if not keys:
            continue
        for metric in PAIRED_METRICS[exp]:
            name = ("paired", exp, a, b, metric)
            if metric == "fid":
                fa, fb = s["_feats"][a], s["_feats"][b]
                groups = [(fa[ia[k]], fb[ib[k]]) for k in keys]
                ref = runner.judge.fid_reference(sorted({k[0] for k in keys}))
                mean, lo, hi = cluster_bootstrap_ci(
                    groups, lambda gs: ref.distance(np.concatenate([g[0] for g in gs]))
                    - ref.distance(np.concatenate([g[1] for g in gs])), confidence=runner.cfg.confidence,
                    n_boot=runner.cfg.fid_boot, seed=stable_seed(runner.cfg.seed, *name), method="basic")
                st = {"mean": mean, "lo": lo, "hi": hi, "n": len(keys)}
            else:
                st = runner.paired([s["items"][a][ia[k]][metric] for k in keys],
                                   [s["items"][b][ib[k]][metric] for k in keys], *name)
            better = METRICS[metric][1]
            if len(keys) < MIN_PAIRED_ITEMS:
                verdict = f"too few items for a verdict (n < {MIN_PAIRED_ITEMS})"
            elif st["lo"] > 0:
                verdict = f"{a} higher"
            elif st["hi"] < 0:
                verdict = f"{b} higher"
            else:
                verdict = "no clear difference"
            if better and verdict.endswith("higher"):
                winner = a if (st["lo"] > 0) == (better == "higher") else b
                verdict += f" ({winner} better)"
            rows.append(_row({"experiment": exp, "comparison": f"{a} − {b}", "metric": metric}, {"diff": st},
                             verdict=verdict, n_items=len(keys)))
    if not rows:
        sec["notes"].append("No paired comparison available: run interpolation, centroid or rare as well.")
    sec["tables"].append({"name": "paired", "title": "Paired differences (a − b)", "kind": "paired",
                          "metrics": ["diff"], "rows": rows})
    sec["time_s"], sec["images"] = 0.0, 0
    return sec


RUNNERS = {"norm": run_norm, "interpolation": run_interpolation, "centroid": run_centroid, "rare": run_rare}
