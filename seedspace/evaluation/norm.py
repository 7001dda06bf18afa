"""Experiment 1, norm bias: fixed random seed directions rescaled to norm s·√d, judged per class group."""

from __future__ import annotations

import logging
import math

import torch

from .experiment import SeedPlan, arm_metrics, row, section
from .runner import Runner

log = logging.getLogger(__name__)


def run_norm(runner: Runner) -> dict:
    """Seed directions fixed, norm scaled to s * sqrt(d); per class group and norm, the judge's scores."""
    return tabulate_norm(runner, measure_norm(runner))


def measure_norm(runner: Runner) -> dict:
    """The judge's scores and features of every image, per cell (class group, norm), and the example grid."""
    scales = tuple(float(s) for s in runner.cfg.norm.scales)
    per_group = runner.cfg.norm.per_group
    shape = runner.model.seed_shape
    plan, groups = SeedPlan(), runner.groups()
    for g, group in groups.items():
        n = math.ceil(per_group / len(group)) * len(group)
        base = runner.random_seeds(n, "norm", g)
        unit = base / base.reshape(n, -1).norm(dim=1).view(n, *[1] * len(shape))
        for s in scales:
            plan.add((g, s), unit * (s * math.sqrt(runner.d)), [group[i % len(group)] for i in range(n)])
    log.info(f"norm: {len(plan)} images ({len(scales)} norms x {len(groups)} groups)")
    scored = plan.generate(runner)
    cells = [{"group": g, "scale": s, "classes": scored.classes[sl],
              **{key: scored.scores[key][sl] for key in ("correct", "conf", "fdist", "feats")}}
             for (g, s), sl in scored.spans.items()]
    # example grid: two directions per group across the norms
    ex_rows, ex_labels = [], []
    for g in groups:
        first = scored.spans[(g, scales[0])]
        for j in range(min(2, first.stop - first.start)):
            ex_rows.append(torch.stack([scored.images_of((g, s))[j] for s in scales]))
            ex_labels.append(f"{g} class {scored.classes[first.start + j]}")
    return {"groups": groups, "scales": scales, "cells": cells,
            "examples": {"rows": ex_rows, "row_labels": ex_labels, "col_labels": [f"{s:g}√d" for s in scales],
                         "caption": "Norm bias: one seed direction per row, rescaled to each norm"}}


def tabulate_norm(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_norm`'s measurements: per group and norm, the scores' means and CIs."""
    sec = section("Norm bias", "Random seed directions (the same directions at every norm), rescaled to norm "
                  "s·√d, generated for the classes of each group in turn. Claim (1): images degrade away from s = 1.")
    groups, rows = measured["groups"], []
    for cell in measured["cells"]:
        g, s, group = cell["group"], cell["scale"], groups[cell["group"]]
        values = {"acc": cell["correct"], "conf": cell["conf"], "fdist": cell["fdist"]}
        items = [dict(zip(values, v)) for v in zip(*values.values())]
        metrics = arm_metrics(runner, items, ["acc", "conf", "fdist"], {"fid": [f[None] for f in cell["feats"]]},
                              group, "norm", g, s)
        rows.append(row({"group": g, "scale": s}, metrics, classes=list(group)))
        sec["items"].setdefault(g, []).append({"scale": s, "classes": list(group),
                                               **{k: v.tolist() for k, v in values.items()}})
    sec["tables"].append({"name": "norm", "title": "Judge scores versus seed norm (norm/√d = s)",
                          "metrics": ["acc", "conf", "fdist", "fid", "kid"], "rows": rows})
    sec["notes"].append(f"{len(measured['cells'][0]['classes'])} images per cell; groups: " + ", ".join(
        f"{g} = classes {group}" for g, group in groups.items()) + ". FID-style and KID resample single images.")
    sec["_examples"] = measured["examples"]
    return sec
