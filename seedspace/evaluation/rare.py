"""Experiment 4, rare concepts: on the tail classes, seeds from centroids of k inverted few-shot images and points
on the paths to the inputs, against the same number of random seeds."""

from __future__ import annotations

import numpy as np
import torch

from .centroid import centroid_seeds
from .experiment import SeedPlan, arm_metrics, class_name, row, section
from .runner import Runner

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


def run_rare(runner: Runner) -> dict:
    """Per arm (random seeds or a centroid method), the judge's scores and diversity of each input set's images."""
    cfg = runner.cfg
    tail = runner.rare_classes()
    take = list(cfg.rare.path_take)
    sec = section("Rare concepts", f"Tail classes {tail} of the long-tailed model. Per input set of k inverted "
                  f"few-shot images: the centroid and the points {take} of {cfg.rare.path_steps} on each path from "
                  "the centroid to an input; 'random' = the same number of random seeds. Claims (3) and (4).")
    inv = runner.inversions(tail, max(cfg.inversions_per_class, cfg.rare.k))
    sets = []
    for c in tail:
        m = inv[c][0].shape[0]
        k = min(cfg.rare.k, m)
        if k < cfg.rare.k:
            sec["notes"].append(f"class {c}: k = {k} (only {m} few-shot images)")
        for s in range(cfg.rare.sets):
            sets.append((c, k, s, sorted(runner.rng("rare", c, s).choice(m, k, replace=False).tolist())))
    arms = ["random"] + list(cfg.rare.methods)
    runner.log(f"rare: {len(sets)} input sets x {len(arms)} arms")
    plan, seconds, norms = SeedPlan(), {}, {}
    for q, (c, k, s, idx) in enumerate(sets):
        for m in cfg.rare.methods:
            cen, pts, seconds[(m, q)] = centroid_seeds(inv[c][0][idx], m, cfg.rare.path_steps, k, take)
            seeds = torch.cat([cen[None], pts])
            plan.add((m, q), seeds, c)
            norms[(m, q)] = float(runner.norms(seeds).mean())
        random = runner.random_seeds(seeds.shape[0], "rare", c, s)
        plan.add(("random", q), random, c)
        seconds[("random", q)], norms[("random", q)] = 0.0, float(runner.norms(random).mean())
    runner.log(f"rare: {len(plan)} images")
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
    real = _real_items(runner, sets, set_size)
    sec["items"] = {**items, "real images": real}
    sec["_feats"] = feats
    rows = [row({"method": a}, arm_metrics(runner, items[a], ARM_METRICS, {"fid": feats[a]}, tail, "rare", a),
                n_items=len(items[a]), n_images=sum(f.shape[0] for f in feats[a])) for a in arms]
    rows.append(row({"method": "real images (judge calibration)"},
                    {key: runner.stat([it[key] for it in real], "rare-real", key) for key in REAL_METRICS},
                    n_items=len(real), n_images=len(real) * set_size))
    sec["tables"].append({"name": "rare", "title": f"Tail classes {tail}: {len(sets)} input sets, {set_size} images per "
                          "set and arm", "metrics": ["acc", "conf", "fdist", "fid", "kid", "diversity", "norm_mean",
                                                     "time_ms"], "rows": rows})
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
    ex = {"rows": [list(scored.images_of((a, 0))[:11]) for a in arms], "row_labels": list(arms),
          "col_labels": ["centroid / 1"] + [f"p{i + 1}" for i in range(set_size - 1)],
          "title": f"class {class_name(runner, sets[0][0])}"}
    sec["_examples"] = ex
    return sec
