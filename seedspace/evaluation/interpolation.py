"""Experiment 2, interpolation: paths between two inverted few-shot images of one class, every method.

The pieces (the endpoint pairs, the paths of named arms, their images and per-path scores, the table) are shared
with :mod:`.priors`, which runs the same pairs with NAO under other norm priors, and :mod:`.schedulers`, which renders
the first of them with other samplers."""

from __future__ import annotations

import logging

import numpy as np
import torch

from .. import geometry
from .config import REFERENCE_METHOD
from .experiment import SeedPlan, arm_metrics, class_name, row, section, timed
from .runner import Runner

log = logging.getLogger(__name__)

ITEM_METRICS = ["acc", "conf", "fdist", "norm_mean", "norm_min", "smooth_mean", "smooth_max"]
TABLE_METRICS = ["acc", "conf", "fdist", "fid", "kid", "norm_mean", "norm_min", "smooth_mean", "smooth_max", "time_ms"]


def interpolation_pairs(runner: Runner, classes, inv, notes: list, per_class: int | None = None) -> list[tuple]:
    """(class, i, j, rank within class) for the sampled endpoint pairs of each class: the first ``per_class``
    (default ``interpolation.pairs_per_class``) of a seeded order (run seed, class) of the class's inversion pairs, so a
    smaller count gives the first pairs of a larger one; classes with one image get a line in ``notes``."""
    per_class = runner.cfg.interpolation.pairs_per_class if per_class is None else int(per_class)
    pairs = []
    for c in classes:
        m = inv[c][0].shape[0]
        combos = [(i, j) for i in range(m) for j in range(i + 1, m)]
        if not combos:
            notes.append(f"class {c}: fewer than 2 few-shot images, skipped")
            continue
        pick = runner.rng("interp-pairs", c).permutation(len(combos))[:per_class]
        pairs += [(c, *combos[p], r) for r, p in enumerate(pick)]
    if not pairs:
        raise ValueError("interpolation: no class has two few-shot images")
    return pairs


def endpoints(runner: Runner, notes: list, per_class: int | None = None) -> tuple:
    """(classes, inversions, pairs, A, B): the interpolation experiment's endpoint pairs (its first ``per_class``
    per class, see :func:`interpolation_pairs`); A, B (P, *shape) are the inverted seeds of each pair's two images."""
    classes = runner.classes()
    inv = runner.inversions(classes, runner.cfg.inversions_per_class)
    pairs = interpolation_pairs(runner, classes, inv, notes, per_class)
    A = torch.stack([inv[c][0][i] for c, i, j, r in pairs])
    B = torch.stack([inv[c][0][j] for c, i, j, r in pairs])
    return classes, inv, pairs, A, B


def arm_paths(A: torch.Tensor, B: torch.Tensor, frames: int, arms: dict) -> tuple[dict, dict]:
    """Paths of every arm ``{name: (method, prior, indices of the pairs it runs)}`` with ``frames`` interior
    points: ({name: (n, frames + 2, *shape)}, {name: geometry seconds per path})."""
    paths, times = {}, {}
    for name, (method, prior, idx) in arms.items():
        p, dt = timed(geometry.interpolate, A[idx], B[idx], steps=frames + 2, method=method, batched=True, prior=prior)
        paths[name], times[name] = p.transpose(0, 1).float(), dt / len(idx)
    return paths, times


def score_paths(runner: Runner, pairs: list, A, B, paths: dict, arms: dict, times: dict) -> tuple:
    """Generate the endpoints once and every arm's interior frames, then score each path: (scored, {arm: per-path
    items}, {arm: per-path judge features of its frames}). Items: the judge means of the frames, norm/sqrt(d) mean
    and min over the path, the judge-feature steps between consecutive frames (endpoints included) and the time."""
    shape = A.shape[1:]
    pair_classes = [c for c, *_ in pairs]
    plan = SeedPlan()
    plan.add("A", A, pair_classes)
    plan.add("B", B, pair_classes)
    for m, p in paths.items():
        for r, q in enumerate(arms[m][2]):
            plan.add((m, q), p[r, 1:-1].reshape(-1, *shape), pair_classes[q])
    log.info(f"interpolation: {len(plan)} images")
    scored = plan.generate(runner)
    ends_a, ends_b = scored.feats("A"), scored.feats("B")
    items, feats = {}, {}
    for m, p in paths.items():
        items[m], feats[m] = [], []
        norms = runner.norms(p)  # (n, frames + 2)
        for r, q in enumerate(arms[m][2]):
            c, i, j, _ = pairs[q]
            f = scored.feats((m, q))
            seq = np.concatenate([ends_a[q][None], f, ends_b[q][None]])
            steps_ = runner.judge.relative_distance(seq[1:], seq[:-1], c)
            items[m].append({"key": [c, i, j], "class": c, **scored.means((m, q)),
                             "norm_mean": float(norms[r].mean()), "norm_min": float(norms[r].min()),
                             "smooth_mean": float(steps_.mean()), "smooth_max": float(steps_.max()),
                             "time_ms": 1000 * times[m]})
            feats[m].append(f)
    return scored, items, feats


def path_table(runner: Runner, items: dict, feats: dict, arms: dict, times: dict, names, keep: set | None, name: str,
               title: str, frames: int, label: dict | None = None) -> dict:
    """The table of the arms ``names`` over the pairs in ``keep`` (None: all): one row per arm, labelled
    ``label[arm]`` (default ``{"method": arm}``), with the means and CIs of :data:`TABLE_METRICS`."""
    rows = []
    for m in names:
        sel = [r for r, q in enumerate(arms[m][2]) if keep is None or q in keep]
        its = [items[m][r] for r in sel]
        met = arm_metrics(runner, its, ITEM_METRICS, {"fid": [feats[m][r] for r in sel]},
                          sorted({it["class"] for it in its}), name, m)
        met["time_ms"] = {"mean": 1000 * times[m], "lo": 1000 * times[m], "hi": 1000 * times[m], "n": len(its)}
        rows.append(row((label or {}).get(m, {"method": m}), met, n_items=len(its), n_images=len(its) * frames))
    return {"name": name, "title": title, "metrics": TABLE_METRICS, "rows": rows}


def measure_interpolation(runner: Runner) -> dict:
    """Every method's paths between the sampled pairs (and the reference solver's on the first ones), generated and
    scored: per-path items and judge features, the pairs, which pairs each arm ran, the example grid."""
    cfg, notes = runner.cfg.interpolation, []
    classes, _, pairs, A, B = endpoints(runner, notes)
    P = len(pairs)
    order = sorted(range(P), key=lambda q: (pairs[q][3], classes.index(pairs[q][0])))
    ref_idx = sorted(order[: cfg.reference_paths]) if cfg.reference_paths > 0 else []
    log.info(f"interpolation: {P} paths x {len(cfg.methods)} methods (+{len(ref_idx)} reference)")
    arms = {m: (m, None, list(range(P))) for m in cfg.methods}
    if ref_idx:
        arms[REFERENCE_METHOD] = (REFERENCE_METHOD, None, ref_idx)
    paths, times = arm_paths(A, B, cfg.points, arms)
    scored, items, feats = score_paths(runner, pairs, A, B, paths, arms, times)
    return {"classes": classes, "pairs": pairs, "arms": {m: idx for m, (_, _, idx) in arms.items()}, "times": times,
            "items": items, "feats": feats, "notes": notes, "examples": path_examples(scored, paths, arms, cfg.points)}


def tabulate_interpolation(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_interpolation`'s measurements."""
    methods, T = list(runner.cfg.interpolation.methods), runner.cfg.interpolation.points
    sec = section("Interpolation", f"Paths between two inverted few-shot images of the same class, {T} interior "
                  "frames each (evenly spaced as each method spaces them), generated for that class. Claim (2).")
    classes, pairs, items, feats, times = (measured[k] for k in ("classes", "pairs", "items", "feats", "times"))
    arms = {m: (m, None, idx) for m, idx in measured["arms"].items()}
    sec["notes"] += measured["notes"]
    sec["items"], sec["_feats"] = items, feats
    P = len(pairs)
    sec["tables"].append(path_table(runner, items, feats, arms, times, methods, None, "interpolation",
                                    f"All {P} paths ({len(classes)} classes); frames = {P * T} per method", T))
    if REFERENCE_METHOD in arms:
        ref_idx = arms[REFERENCE_METHOD][2]
        sec["tables"].append(path_table(
            runner, items, feats, arms, times, methods + [REFERENCE_METHOD], set(ref_idx),
            "interpolation_subset", f"Subset of {len(ref_idx)} paths with the reference solver (same paths for every "
            "method)", T))
    pair_classes = [c for c, *_ in pairs]
    sec["tables"].append({"name": "interpolation_per_class", "title": "Share of frames classified as the class, per class",
                          "kind": "matrix", "metrics": ["acc"], "columns": methods, "rows": [
                              {"label": {"class": class_name(runner, c)}, "cells": {
                                  m: runner.stat([it["acc"] for it in items[m] if it["class"] == c], "interp-class", m, c)
                                  for m in methods}} for c in sorted(set(pair_classes))]})
    sec["notes"].append("Step mean/max: judge-feature distance between consecutive frames (endpoint reconstructions "
                        "included), in units of the class's real spread. Norms are over the whole path, endpoints "
                        "included. Time: geometry only, per path (generation costs the same for every method).")
    sec["_examples"] = measured["examples"]
    return sec


def path_examples(scored, paths: dict, arms: dict, frames: int) -> dict:
    """The example grid: the first pair's path, one row per arm that runs it."""
    ex = {"rows": [], "row_labels": [], "col_labels": ["A"] + [f"t{t + 1}" for t in range(frames)] + ["B"]}
    first_a, first_b = scored.images_of("A")[:1], scored.images_of("B")[:1]
    for m in paths:
        if 0 in arms[m][2]:
            ex["rows"].append(torch.cat([first_a, scored.images_of((m, 0)), first_b]))
            ex["row_labels"].append(m)
    return ex
