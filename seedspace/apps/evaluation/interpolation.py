"""Experiment 2, interpolation: paths between two inverted few-shot images of one class, every method."""

from __future__ import annotations

import numpy as np
import torch

from ... import geometry
from .config import REFERENCE_METHOD
from .experiment import SeedPlan, arm_metrics, class_name, row, section, timed
from .runner import Runner

ITEM_METRICS = ["acc", "conf", "fdist", "norm_mean", "norm_min", "smooth_mean", "smooth_max"]
TABLE_METRICS = ["acc", "conf", "fdist", "fid", "kid", "norm_mean", "norm_min", "smooth_mean", "smooth_max", "time_ms"]


def endpoint_pairs(runner: Runner, classes, inv, sec, per_class: int | None = None) -> list[tuple]:
    """(class, i, j, rank within class) for the sampled endpoint pairs of each class: the first ``per_class``
    (default ``interp_pairs_per_class``) of a seeded order of its pairs of inverted images, so a smaller count
    gives the first pairs of a larger one."""
    per_class = runner.cfg.interp_pairs_per_class if per_class is None else int(per_class)
    pairs = []
    for c in classes:
        m = inv[c][0].shape[0]
        combos = [(i, j) for i in range(m) for j in range(i + 1, m)]
        if not combos:
            sec["notes"].append(f"class {c}: fewer than 2 few-shot images, skipped")
            continue
        pick = runner.rng("interp-pairs", c).permutation(len(combos))[:per_class]
        pairs += [(c, *combos[p], r) for r, p in enumerate(pick)]
    if not pairs:
        raise ValueError("interpolation: no class has two few-shot images")
    return pairs


def path_seeds(A: torch.Tensor, B: torch.Tensor, method: str, points: int) -> tuple[torch.Tensor, float]:
    """(seeds (n, points + 2, *shape) of the ``method`` path from each A to its B, both ends included, seconds of
    geometry): ``points`` interior frames, evenly spaced as the method spaces them."""
    p, dt = timed(geometry.interpolate, A, B, steps=points + 2, method=method, batched=True)
    return p.transpose(0, 1).float(), dt


def run_interpolation(runner: Runner) -> dict:
    """Per method, the judge's scores of the interior frames, the norms along the path and its smoothness."""
    cfg = runner.cfg
    shape, T = runner.model.seed_shape, int(cfg.interp_points)
    sec = section("Interpolation", f"Paths between two inverted few-shot images of the same class, {T} interior "
                  "frames each (evenly spaced as each method spaces them), generated for that class. Claim (2).")
    classes = runner.classes()
    inv = runner.inversions(classes, cfg.inversions_per_class)
    pairs = endpoint_pairs(runner, classes, inv, sec)
    P = len(pairs)
    A = torch.stack([inv[c][0][i] for c, i, j, r in pairs])
    B = torch.stack([inv[c][0][j] for c, i, j, r in pairs])
    order = sorted(range(P), key=lambda q: (pairs[q][3], classes.index(pairs[q][0])))
    ref_idx = sorted(order[: cfg.interp_reference_paths]) if cfg.interp_reference_paths > 0 else []
    runner.log(f"interpolation: {P} paths x {len(cfg.interp_methods)} methods (+{len(ref_idx)} reference)")
    arms = {m: list(range(P)) for m in cfg.interp_methods}
    if ref_idx:
        arms[REFERENCE_METHOD] = ref_idx
    paths, times = {}, {}
    for m, idx in arms.items():
        paths[m], dt = path_seeds(A[idx], B[idx], m, T)  # (n, T + 2, *shape)
        times[m] = dt / len(idx)
    pair_classes = [c for c, *_ in pairs]
    plan = SeedPlan()
    plan.add("A", A, pair_classes)  # endpoints once, then every method's interior frames
    plan.add("B", B, pair_classes)
    for m, p in paths.items():
        for r, q in enumerate(arms[m]):
            plan.add((m, q), p[r, 1:-1].reshape(-1, *shape), pair_classes[q])
    runner.log(f"interpolation: {len(plan)} images")
    scored = plan.generate(runner)
    ends_a, ends_b = scored.feats("A"), scored.feats("B")
    items, feats = {}, {}
    for m, p in paths.items():
        items[m], feats[m] = [], []
        norms = runner.norms(p)  # (n, T + 2)
        for r, q in enumerate(arms[m]):
            c, i, j, _ = pairs[q]
            f = scored.feats((m, q))
            seq = np.concatenate([ends_a[q][None], f, ends_b[q][None]])
            steps_ = runner.judge.relative_distance(seq[1:], seq[:-1], c)
            items[m].append({"key": [c, i, j], "class": c, **scored.means((m, q)),
                             "norm_mean": float(norms[r].mean()), "norm_min": float(norms[r].min()),
                             "smooth_mean": float(steps_.mean()), "smooth_max": float(steps_.max()),
                             "time_ms": 1000 * times[m]})
            feats[m].append(f)
    sec["items"], sec["_feats"] = items, feats

    def table(methods, keep: set | None, name, title):
        rows = []
        for m in methods:
            sel = [r for r, q in enumerate(arms[m]) if keep is None or q in keep]
            its = [items[m][r] for r in sel]
            met = arm_metrics(runner, its, ITEM_METRICS, {"fid": [feats[m][r] for r in sel]},
                              sorted({it["class"] for it in its}), name, m)
            met["time_ms"] = {"mean": 1000 * times[m], "lo": 1000 * times[m], "hi": 1000 * times[m], "n": len(its)}
            rows.append(row({"method": m}, met, n_items=len(its), n_images=len(its) * T))
        return {"name": name, "title": title, "metrics": TABLE_METRICS, "rows": rows}

    sec["tables"].append(table(cfg.interp_methods, None, "interpolation",
                               f"All {P} paths ({len(classes)} classes); frames = {P * T} per method"))
    if ref_idx:
        sec["tables"].append(table(list(cfg.interp_methods) + [REFERENCE_METHOD], set(ref_idx), "interpolation_subset",
                                   f"Subset of {len(ref_idx)} paths with the reference solver (same paths for every method)"))
    sec["tables"].append({"name": "interpolation_per_class", "title": "Share of frames classified as the class, per class",
                          "kind": "matrix", "metrics": ["acc"], "columns": list(cfg.interp_methods), "rows": [
                              {"label": {"class": class_name(runner, c)}, "cells": {
                                  m: runner.stat([it["acc"] for it in items[m] if it["class"] == c], "interp-class", m, c)
                                  for m in cfg.interp_methods}} for c in sorted(set(pair_classes))]})
    sec["notes"].append("Step mean/max: judge-feature distance between consecutive frames (endpoint reconstructions "
                        "included), in units of the class's real spread. Norms are over the whole path, endpoints "
                        "included. Time: geometry only, per path (generation costs the same for every method).")
    sec["_examples"] = {"rows": [], "row_labels": [], "col_labels": ["A"] + [f"t{t + 1}" for t in range(T)] + ["B"]}
    for m in paths:
        if 0 in arms[m]:
            sec["_examples"]["rows"].append([scored.images_of("A")[0], *scored.images_of((m, 0)),
                                             scored.images_of("B")[0]])
            sec["_examples"]["row_labels"].append(m)
    return sec
