"""Experiment 6, the paper's downstream job on a long-tailed data set: does adding synthetic images of the medium
and few-shot classes, made from k real references per class, make a classifier better?

One fixed classifier recipe (:mod:`seedspace.apps.classifier`) is trained from scratch on every arm, with several
seeds, and tested on the balanced test set:

- ``real``: the long-tailed training split alone; ``balanced``: the same with class-balanced resampling (the cheap
  baseline every synthetic method must beat);
- one arm per (strategy:geometry, condition): the training split plus ``lt_per_class`` synthetic images of every
  medium and few-shot class from :func:`~seedspace.apps.augment.augment` (``random`` = plain sampling);
- ``real + held-out real``: the training split plus as many *real* extra images of those classes (the upper bound).

Class groups follow the model's own head / tail classes (testbed.json): many = head, few = tail, medium = the rest
(on the embedded testbed: >= 2,156, 278-1,293 and <= 167 training images; ImageNet-LT's >100 / 20-100 / <20 scaled
by the data's largest class). Per arm and group: mean accuracy over classifier seeds with a t interval; paired
differences against ``real`` and against random-seed synthesis over (classifier seed, class) items.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..classifier import ClassifierRecipe, per_class_accuracy, train_classifier
from ..metrics import t_interval
from .experiment import row, section
from .paired import verdict
from .runner import Runner
from .synthesis import benchmark_data, extra_real, pick_references, synthesize

GROUPS = ("all", "many", "medium", "few")
LT_METRICS = [f"lt_{g}" for g in GROUPS]
UPPER_BOUND = "real + held-out real"


def arm_name(arm: str, condition: str) -> str:
    return f"{arm} ({condition})"


def group_accuracy(per_class: np.ndarray, groups: dict) -> dict:
    """{lt_all, lt_many, lt_medium, lt_few}: mean per-class accuracy over the classes of each group."""
    out = {"lt_all": float(np.nanmean(per_class))}
    for g in ("many", "medium", "few"):
        out[f"lt_{g}"] = float(np.nanmean(per_class[groups[g]]))
    return out


def training_sets(runner: Runner, data, out_dir) -> dict:
    """arm -> (images, labels, balanced): the real arms, one per synthetic (arm, condition), the upper bound."""
    cfg = runner.cfg
    augmented = data.groups["medium"] + data.groups["few"]
    references = pick_references(runner, data, augmented, cfg.lt_shots, "longtail")
    sets = {"real": (data.train_x, data.train_y, False), "balanced": (data.train_x, data.train_y, True)}
    for condition in cfg.lt_conditions:
        for arm in cfg.lt_arms:
            t0 = time.perf_counter()
            folder = out_dir / f"{condition}-{arm.replace(':', '-')}"
            synth = synthesize(runner, arm, condition, references, cfg.lt_per_class, folder, cfg.lt_steps)
            xs = torch.cat([data.train_x] + [synth[c] for c in augmented])
            ys = torch.cat([data.train_y] + [torch.full((len(synth[c]),), c) for c in augmented])
            sets[arm_name(arm, condition)] = (xs, ys, False)
            runner.log(f"longtail: {arm} ({condition}): {sum(len(v) for v in synth.values())} images in "
                       f"{time.perf_counter() - t0:.0f} s")
    ex_x, ex_y = extra_real(runner, data, augmented, cfg.lt_per_class)
    sets[UPPER_BOUND] = (torch.cat([data.train_x, ex_x]), torch.cat([data.train_y, ex_y]), False)
    return sets


def run_longtail(runner: Runner) -> dict:
    """Classifier accuracy (all / many / medium / few classes) per training arm, over classifier seeds."""
    cfg = runner.cfg
    data = benchmark_data(runner, cfg.lt_test_per_class)
    groups, k = data.groups, data.num_classes
    sec = section("Long-tail benchmark", f"A classifier ({cfg.lt_epochs} epochs of the fixed small-CNN recipe) trained "
                  f"on the long-tailed training split ({data.train_x.shape[0]} images, per class {data.counts()}) "
                  f"with or without {cfg.lt_per_class} extra images for each medium and few-shot class, made from "
                  f"{cfg.lt_shots} real training images per class; tested on {data.test_x.shape[0]} balanced test "
                  f"images. Groups: many {groups['many']}, medium {groups['medium']}, few {groups['few']}. Mean "
                  f"accuracy over {len(cfg.lt_classifier_seeds)} classifier seeds, 95% t interval.")
    sets = training_sets(runner, data, runner.workdir("longtail"))
    recipe = ClassifierRecipe(epochs=cfg.lt_epochs)
    accuracy: dict[str, list[np.ndarray]] = {}
    for name, (xs, ys, balanced) in sets.items():
        t0 = time.perf_counter()
        accuracy[name] = [per_class_accuracy(train_classifier(xs, ys, k, recipe, seed, balanced), data.test_x,
                                             data.test_y, k).numpy() for seed in cfg.lt_classifier_seeds]
        runner.log(f"longtail: classifiers on {name} ({xs.shape[0]} images): {time.perf_counter() - t0:.0f} s")
    rows = []
    for name, per_seed in accuracy.items():
        by_seed = [group_accuracy(a, groups) for a in per_seed]
        rows.append(row({"arm": name}, {m: t_interval([s[m] for s in by_seed], cfg.confidence) for m in LT_METRICS},
                        n_items=len(per_seed), n_images=int(sets[name][0].shape[0])))
    sec["tables"].append({"name": "longtail", "title": "Classifier accuracy on the balanced test set",
                          "metrics": LT_METRICS, "rows": rows})
    sec["tables"].append(paired_table(runner, accuracy, groups))
    sec["items"] = {name: [{"key": [seed], **group_accuracy(a, groups)}
                           for seed, a in zip(cfg.lt_classifier_seeds, per_seed)] for name, per_seed in accuracy.items()}
    return sec


def paired_table(runner: Runner, accuracy: dict, groups: dict) -> dict:
    """Per synthetic arm and group: the paired difference of per-class accuracy over (classifier seed, class)
    items against ``real``, against ``balanced`` and against random-seed synthesis in the same condition."""
    cfg = runner.cfg
    rows = []
    for condition in cfg.lt_conditions:
        for arm in cfg.lt_arms:
            a = arm_name(arm, condition)
            baselines = ["real", "balanced"] + ([arm_name("random", condition)] if arm != "random" and
                                                "random" in cfg.lt_arms else [])
            for b in baselines:
                for g in ("all", "medium", "few"):
                    classes = list(range(len(accuracy[a][0]))) if g == "all" else groups[g]
                    va = np.concatenate([s[classes] for s in accuracy[a]])
                    vb = np.concatenate([s[classes] for s in accuracy[b]])
                    st = runner.paired(va, vb, "longtail", a, b, g)
                    rows.append(row({"experiment": "longtail", "comparison": f"{a} − {b}", "metric": f"lt_{g}"},
                                    {"diff": st}, verdict=verdict(st, a, b, "higher", len(va)), n_items=len(va)))
    return {"name": "longtail-paired", "title": "Paired differences of per-class accuracy (a − b; items = classifier "
            "seed x class)", "kind": "paired", "metrics": ["diff"], "rows": rows}
