"""Experiment 7, the paper's shots curve with a classifier (settings: :class:`.longtail_settings.FewshotSettings`):
how many real images of a rare class does a strategy need, and does it beat simply repeating them?

Per replicate, the long-tail benchmark's draw of the same index (training set, class order, seeds), except that
each few-shot class keeps only k real images, its references (k = 1, 2, 5, 10). Every arm fills the few-shot
classes up to the head count: ``oversample`` repeats the k references, a synthetic arm makes head - k images from
them, ``oracle`` adds held-out real images (k references + the oracle = every real image the class could have:
the matched real row and the curve's "all" point); ``real`` adds nothing. One classifier per (k, arm) with the
long-tail benchmark's recipe and seed; its accuracy on the few-shot classes with cross-entropy (``fs_ce``) and with
post-hoc logit adjustment by the class counts of the set trained on (``fs_la``: equal to ``fs_ce`` on a filled
set, where the few-shot classes have the head count), its balanced accuracy with the adjustment (``fs_all``),
beside the judge's view of the added images of the few-shot classes: judge accuracy, KID against the class's real
references, precision / recall with ``manifold_k`` neighbours, and diversity (mean pairwise judge-feature distance
in units of the class's real spread). ``random`` ignores the references: its images are made once per replicate
(the first head - k of them at each k) and its image scores are reported once, at the smallest k. Cells: mean
over replicates of the few-shot classes' mean, 95% t interval.
"""

from __future__ import annotations

import dataclasses

import logging

import torch

from ..scoring.metrics import t_interval
from .experiment import row, section
from .longtail import (added_images, can_produce, check_longtail, class_ranks, draw_replicate, labelled,
                       rank_groups, real_pools, train_and_test)
from .image_scores import IMAGE_SCORES, image_scores
from .longtail_settings import parse_arm, split_condition
from .runner import Runner, stable_seed
from .synthesis import benchmark_data

log = logging.getLogger(__name__)

FS_ACCURACY = ["fs_ce", "fs_la", "fs_all"]
FS_IMAGES = IMAGE_SCORES


def measure_fewshot(runner: Runner) -> dict:
    """Per replicate, k and arm: the few-shot classes' accuracies of the classifier trained with the arm's images
    and the added images' scores; the few-shot classes and the cells not run."""
    lt, fs = runner.cfg.longtail, runner.cfg.fewshot
    check_longtail(runner.model, lt)
    check_fewshot(lt, fs)
    data = benchmark_data(runner, lt.test_per_class)
    num_classes = data.num_classes
    ranks = class_ranks(runner, lt, num_classes)
    groups = rank_groups(runner, ranks)
    few, counts = groups["few"], lt.counts(num_classes)
    cells: dict[tuple, list[dict]] = {}
    skipped = []
    for index in range(fs.replicates):
        rep = draw_replicate(runner, lt, index, real_pools(data, num_classes), counts, ranks)
        seed = stable_seed(rep.seed, "classifier")
        cached_random = None
        for shots in fs.shots:
            kept = {c: shots if c in few else counts[ranks[c]] for c in range(num_classes)}
            train_x, train_y = labelled({c: rep.drawn[c][:n] for c, n in kept.items()})
            fill = {c: lt.head - shots for c in few}
            at_k = dataclasses.replace(rep, references={c: rep.drawn[c][:shots] for c in few},
                                       extras={c: rep.drawn[c][shots:] for c in few})
            for arm in ("real",) + tuple(fs.arms):
                if arm != "real" and not can_produce(arm, shots, max(fill.values())):
                    skipped.append(f"{arm} at k = {shots}")
                    continue
                if arm == "real":
                    added = {}
                elif parse_arm(arm).strategy == "random":
                    if cached_random is None:
                        most = {c: lt.head - min(fs.shots) for c in few}
                        cached_random = added_images(runner, lt, at_k, arm, "class", most, runner.workdir("fewshot"))
                    added = {c: images[:fill[c]] for c, images in cached_random.items()}
                else:
                    body, condition = split_condition(arm)
                    added = added_images(runner, lt, at_k, body, condition or "class", fill,
                                         runner.workdir("fewshot") / f"k{shots}")
                add_x, add_y = labelled(added) if added else (train_x[:0], train_y[:0])
                accs = train_and_test(runner, lt, torch.cat([train_x, add_x]), torch.cat([train_y, add_y]),
                                      ("ce", "la"), seed, data, num_classes)
                cell = {"fs_ce": float(accs["ce"][few].mean()), "fs_la": float(accs["la"][few].mean()),
                        "fs_all": float(accs["la"].mean())}
                if added and (parse_arm(arm).strategy != "random" or shots == min(fs.shots)):
                    cell.update(image_scores(runner, added, fs.manifold_k))
                cells.setdefault((shots, arm), []).append(cell)
            log.info(f"fewshot: replicate {index + 1}/{fs.replicates}, k = {shots} done")
    return {"few": few, "skipped": list(dict.fromkeys(skipped)),
            "cells": [{"k": shots, "arm": arm, "replicates": per_rep} for (shots, arm), per_rep in cells.items()]}


def tabulate_fewshot(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_fewshot`'s measurements: means over replicates with t intervals."""
    sec = section("Few-shot curve", description(runner, runner.cfg.fewshot, measured["few"]))
    rows = []
    for cell in measured["cells"]:
        shots, arm, per_rep = cell["k"], cell["arm"], cell["replicates"]
        metrics = {m: t_interval([c[m] for c in per_rep]) for m in FS_ACCURACY + FS_IMAGES if m in per_rep[0]}
        rows.append(row({"k": shots, "arm": arm}, metrics, n_items=len(per_rep)))
        sec["items"][f"k{shots} {arm}"] = [{"key": [r], **c} for r, c in enumerate(per_rep)]
    if measured["skipped"]:
        sec["notes"].append("Not run (a centroid of a subset needs two references, a geodesic two endpoints, and "
                            "the fill needs that many distinct seeds): " + ", ".join(measured["skipped"]) + ".")
    sec["tables"].append({"name": "fewshot", "title": "Few-shot classes with k real images, filled to the head "
                          "count by each arm", "metrics": FS_ACCURACY + FS_IMAGES, "rows": rows})
    return sec


def check_fewshot(lt, fs) -> None:
    """ValueError before any work when a k leaves nothing to fill or is more than the profile's head count."""
    if max(fs.shots) >= lt.head:
        raise ValueError(f"fewshot shots {max(fs.shots)} must be below the long-tail head count {lt.head}")


def description(runner: Runner, fs, few: list[int]) -> str:
    lt = runner.cfg.longtail
    return (f"Per replicate ({fs.replicates}; the long-tail benchmark's draws), the few-shot classes {few} keep k "
            f"real images (k = {', '.join(map(str, fs.shots))}), filled up to {lt.head} by each arm; one classifier "
            f"per cell ({lt.classifier_steps} steps, the long-tail recipe). fs_ce / fs_la: few-shot classes' "
            "accuracy with cross-entropy / with post-hoc logit adjustment by the counts of the set trained on (tau = 1); "
            "fs_all: balanced accuracy, adjusted. Image scores of the added images by the judge (KID against the class's real "
            f"references; precision / recall with {fs.manifold_k} neighbours). oracle = held-out real images the generator never saw: "
            "the matched real row. Cells: mean over replicates, 95% t interval.")
