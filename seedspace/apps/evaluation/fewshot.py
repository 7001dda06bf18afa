"""Experiment 7, the paper's shots curve: for the few-shot classes, k = 1, 2, 5, 10 real references (from the
training split), the synthetic images of each strategy: their quality and diversity in the judge's feature space
against real test images (judge accuracy, KID, precision / recall, density / coverage, diversity), and (with
``fs_classifier``) the accuracy on those classes of a classifier trained on the training split plus them."""

from __future__ import annotations

import numpy as np
import torch

from ..augment.settings import MIN_REFERENCES
from ..augment.strategies import max_distinct
from ..classifier import ClassifierRecipe, per_class_accuracy, train_classifier
from ..metrics import manifold_metrics
from .experiment import row, section
from .runner import Runner
from .synthesis import benchmark_data, parse_arm, pick_references, synthesize

FS_METRICS = ["acc", "kid", "precision", "recall", "density", "coverage", "diversity"]


def run_fewshot(runner: Runner) -> dict:
    """One row per (k, arm, condition): the synthetic images' scores, averaged over the few-shot classes."""
    cfg = runner.cfg
    data = benchmark_data(runner, cfg.lt_test_per_class)
    few, k_classes = data.groups["few"], data.num_classes
    metrics = FS_METRICS + (["fs_acc"] if cfg.fs_classifier else [])
    sec = section("Few-shot curve", f"Few-shot classes {few}: {cfg.fs_per_class} synthetic images per class from k "
                  f"real training images, per strategy and condition; scored by the judge against its real "
                  f"references (KID; precision / recall and density / coverage with k = {cfg.fs_manifold_k} neighbours; "
                  "diversity = mean pairwise judge-feature distance in units of the class's real spread). Items = "
                  "classes; KID resamples classes whole."
                  + (" fs_acc: accuracy on these classes of the fixed classifier (one seed) trained on the training "
                     "split plus the synthetic images." if cfg.fs_classifier else ""))
    rows, skipped = [], []
    for shots in cfg.fs_shots:
        references = pick_references(runner, data, few, shots, "fewshot")
        for condition in cfg.lt_conditions:
            for arm in cfg.fs_arms:
                strategy = parse_arm(arm)[0]
                if shots < MIN_REFERENCES[strategy] or max_distinct(strategy, shots) < cfg.fs_per_class:
                    skipped.append(f"{arm} at k = {shots}")
                    continue
                folder = runner.workdir("fewshot") / f"k{shots}-{condition}-{arm.replace(':', '-')}"
                synth = synthesize(runner, arm, condition, references, cfg.fs_per_class, folder, cfg.lt_steps)
                items = [class_scores(runner, c, synth[c]) for c in few]
                stats = {m: runner.stat([it[m] for it in items], "fewshot", shots, condition, arm, m)
                         for m in FS_METRICS if m != "kid"}
                stats.update(runner.feature_stats([runner.judge.features(synth[c]) for c in few], few, "fewshot",
                                                  shots, condition, arm))
                if cfg.fs_classifier:
                    xs = torch.cat([data.train_x] + [synth[c] for c in few])
                    ys = torch.cat([data.train_y] + [torch.full((len(synth[c]),), c) for c in few])
                    net = train_classifier(xs, ys, k_classes, ClassifierRecipe(epochs=cfg.lt_epochs),
                                           cfg.lt_classifier_seeds[0])
                    acc = per_class_accuracy(net, data.test_x, data.test_y, k_classes).numpy()[few]
                    stats["fs_acc"] = runner.stat(acc, "fewshot-classifier", shots, condition, arm)
                rows.append(row({"k": shots, "arm": arm, "condition": condition},
                                {m: stats[m] for m in metrics if m in stats},
                                n_items=len(few), n_images=int(sum(len(v) for v in synth.values()))))
                sec["items"][f"k{shots} {arm} ({condition})"] = items
                runner.log(f"fewshot: k = {shots}, {arm} ({condition}) done")
    if skipped:
        sec["notes"].append(f"Not run (the strategy cannot make {cfg.fs_per_class} distinct seeds from k references: a "
                            "centroid of a subset needs two of them, a geodesic two endpoints): "
                            + ", ".join(dict.fromkeys(skipped)) + ".")
    sec["tables"].append({"name": "fewshot", "title": "Synthetic images of the few-shot classes by number of real "
                          "references", "metrics": metrics, "rows": rows})
    return sec


def class_scores(runner: Runner, c: int, images: torch.Tensor) -> dict:
    """The judge's accuracy, the manifold metrics and the diversity of one class's synthetic images."""
    scores = runner.judge.score(images, [c] * images.shape[0])
    feats = scores["feats"]
    return {"key": [c], "class": c, "acc": float(np.mean(scores["correct"])),
            **manifold_metrics(runner.judge.ref_feats[c], feats, runner.cfg.fs_manifold_k),
            "diversity": runner.judge.diversity(feats, c)}
