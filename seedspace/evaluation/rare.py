"""Experiment 4, rare concepts: on the tail classes, seeds from centroids of k inverted few-shot images and points
on the paths to the inputs, against the same number of random seeds."""

from __future__ import annotations

import logging

import numpy as np
import torch

from .centroid import centroid_seeds
from .experiment import SeedPlan, arm_metrics, class_name, row, section
from .runner import Runner

log = logging.getLogger(__name__)

ARM_METRICS = ["acc", "conf", "fdist", "diversity", "norm_mean", "time_ms"]
REAL_METRICS = ["acc", "conf", "fdist", "diversity"]


def _real_items(runner: Runner, sets, set_size: int) -> list[dict]:
    """The judge on real reference images of the tail classes, in sets of the generated sets' size (calibration)."""
    judge, real = runner.judge, []
    for c, k, s, idx in sets:
        ref = judge.ref_feats[c]
        pick = runner.rng("rare-real", c, s).choice(ref.shape[0], min(set_size, ref.shape[0]), replace=False)
        real.append({"key": [c, s], "class": c, "acc": float(judge.ref_correct[c][pick].mean()),
                     "conf": float(judge.ref_conf[c][pick].mean()),
                     "fdist": float(judge.relative_distance(ref[pick], judge.mu[c], c).mean()),
                     "diversity": judge.diversity(ref[pick], c)})
    return real


def measure_rare(runner: Runner) -> dict:
    """On the tail classes, every input set's centroid and path points per method and as many random seeds,
    generated and scored: per-set items and judge features, real images' items (the calibration), the example grid."""
    cfg, notes = runner.cfg.rare, []
    tail = runner.rare_classes()
    take = list(cfg.path_take)
    inv = runner.inversions(tail, max(runner.cfg.inversions_per_class, cfg.k))
    sets = []
    for c in tail:
        m = inv[c][0].shape[0]
        k = min(cfg.k, m)
        if k < cfg.k:
            notes.append(f"class {c}: k = {k} (only {m} few-shot images)")
        for s in range(cfg.sets):
            sets.append((c, k, s, sorted(runner.rng("rare", c, s).choice(m, k, replace=False).tolist())))
    arms = ["random"] + list(cfg.methods)
    log.info(f"rare: {len(sets)} input sets x {len(arms)} arms")
    plan, seconds, norms = SeedPlan(), {}, {}
    for q, (c, k, s, idx) in enumerate(sets):
        for m in cfg.methods:
            cen, pts, seconds[(m, q)] = centroid_seeds(inv[c][0][idx], m, cfg.path_steps, k, take)
            seeds = torch.cat([cen[None], pts])
            plan.add((m, q), seeds, c)
            norms[(m, q)] = float(runner.norms(seeds).mean())
        random = runner.random_seeds(seeds.shape[0], "rare", c, s)
        plan.add(("random", q), random, c)
        seconds[("random", q)], norms[("random", q)] = 0.0, float(runner.norms(random).mean())
    log.info(f"rare: {len(plan)} images")
    scored = plan.generate(runner)
    items, feats = {a: [] for a in arms}, {a: [] for a in arms}
    for a in arms:
        for q, (c, k, s, idx) in enumerate(sets):
            f = scored.feats((a, q))
            items[a].append({"key": [c, s], "class": c, "k": k, "inputs": idx, **scored.means((a, q)),
                             "diversity": runner.judge.diversity(f, c), "norm_mean": norms[(a, q)],
                             "time_ms": 1000 * seconds[(a, q)]})
            feats[a].append(f)
    set_size = feats[arms[0]][0].shape[0]
    examples = {"rows": [scored.images_of((a, 0))[:11] for a in arms], "row_labels": arms,
                "col_labels": ["centroid / 1"] + [f"p{i + 1}" for i in range(set_size - 1)],
                "title": f"class {class_name(runner, sets[0][0])}"}
    return {"tail": tail, "sets": len(sets), "items": items, "feats": feats,
            "real": _real_items(runner, sets, set_size), "notes": notes, "examples": examples}


def tabulate_rare(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_rare`'s measurements."""
    cfg = runner.cfg.rare
    tail, items, feats, real = (measured[k] for k in ("tail", "items", "feats", "real"))
    sec = section("Rare concepts", f"Tail classes {tail} of the long-tailed model. Per input set of k inverted "
                  f"few-shot images: the centroid and the points {list(cfg.path_take)} of {cfg.path_steps} on each "
                  "path from the centroid to an input; 'random' = the same number of random seeds. Claims (3) and (4).")
    sec["notes"] += measured["notes"]
    arms = list(items)
    set_size = feats[arms[0]][0].shape[0]
    sec["items"] = {**items, "real images": real}
    sec["_feats"] = feats
    rows = [row({"method": a}, arm_metrics(runner, items[a], ARM_METRICS, {"fid": feats[a]}, tail, "rare", a),
                n_items=len(items[a]), n_images=sum(f.shape[0] for f in feats[a])) for a in arms]
    rows.append(row({"method": "real images (judge calibration)"},
                    {key: runner.stat([it[key] for it in real], "rare-real", key) for key in REAL_METRICS},
                    n_items=len(real), n_images=len(real) * set_size))
    sec["tables"].append({"name": "rare", "title": f"Tail classes {tail}: {measured['sets']} input sets, {set_size} "
                          "images per set and arm", "metrics": ["acc", "conf", "fdist", "fid", "kid", "diversity",
                                                                "norm_mean", "time_ms"], "rows": rows})
    pooled = {"name": "rare_pooled_diversity", "title": "Diversity of all images of an arm, per tail class",
              "kind": "matrix", "metrics": ["diversity"], "columns": arms, "rows": []}
    for c in tail:
        cells = {}
        for a in arms:
            f = np.concatenate([feats[a][r] for r, it in enumerate(items[a]) if it["class"] == c])
            v = runner.judge.diversity(f, c)
            cells[a] = {"mean": v, "lo": v, "hi": v, "n": int(f.shape[0])}
        pooled["rows"].append({"label": {"class": class_name(runner, c)}, "cells": cells})
    sec["tables"].append(pooled)
    sec["notes"].append("Diversity: mean pairwise judge-feature distance within a set (in units of the class's real "
                        "spread); the calibration row gives real images' values for sets of the same size. Claim (4) "
                        "(seed optimisation from NAO seeds) is evaluated by SeedSelect, not here: these are the "
                        "starting seeds' images before any optimisation.")
    sec["_examples"] = measured["examples"]
    return sec
