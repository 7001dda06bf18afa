"""Experiment 6, the long-tail benchmark: does synthetic data beat rebalancing, does it add to it, and which seeds
and prior give the most? (settings: :class:`.longtail_settings.LongtailSettings`)

A grid of data x treatment x dose, trained with one fixed classifier recipe and tested on one balanced test set:

- data: the long-tailed real training set alone (``real``); plus the k references repeated (``oversample``, the
  count-matched control: as many added images, no generation); plus synthetic images of each ``augment`` arm; plus
  held-out real images the generator never saw (``oracle``). The ceiling row: a balanced real set of ``head``
  images per class.
- treatments: cross-entropy (``ce``), the same models with post-hoc logit adjustment (``la``, tau = 1, untuned),
  class-balanced resampling (``cb``), balanced softmax (``bs``). The prior of ``la`` and ``bs`` is the class counts
  of the set the classifier is trained on: on a filled (balanced) set it is uniform and both equal ``ce``, so the
  imbalance is never corrected twice.
- doses: ``tail`` (+tail_dose images per medium and few-shot class) and ``fill`` (every class up to ``head``); a
  synthetic arm's tail dose is the first images of its fill dose.

Every replicate draws its own training set from the model's real images, its own references, synthesis seed and
classifier seed; arms are paired by replicate. A class's images are drawn from those the generator never saw
first (the test references held out of the test set and a folder's exposure-held-out split), then from its
training split: the references are unseen images wherever there are enough, and the oracle is unseen images only
(:func:`check_longtail` refuses a profile that cannot give that). Horizontal flips in the classifier's
augmentation only for mirror-symmetric data (the model's ``mirror_symmetric``).

The primary metric is balanced accuracy (``lt_all``: the mean of the per-class accuracies on the balanced test
set), with many / medium / few beside it (ranks of the profile: many / medium / few = the model's head / medium /
tail group sizes). Cells: mean over replicates with a Student t interval (R - 1 degrees of freedom).

The verdicts come from the contrasts declared in the settings (written into the report before any result): per
contrast the mean over replicates of the per-replicate difference with its t interval and a paired bootstrap
interval, a sign-flip permutation p-value, and Holm's adjustment across the run's declared contrasts. The other
paired rows are exploratory (no verdict). The plateau check (replicate 0) trains every data arm at each of
``plateau_steps`` and says whether each reached its plateau at the recipe's steps. Beside the accuracies, the
images each arm adds to the few-shot classes are scored by the judge per replicate (:mod:`.image_scores`: are they
right, do they cover the class, how far are they from the references) and stored with the replicate.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import outputs
from ..backends.run_prior import prior_record
from ..methods.augment.settings import MIN_REFERENCES
from ..methods.augment.strategies import max_distinct
from ..scoring.metrics import t_interval
from .classifier import ClassifierRecipe, class_counts, log_prior, per_class_accuracy, train_classifier
from .experiment import row, section
from .image_scores import MANIFOLD_K, arm_images_table, image_scores, real_features
from .paired import bootstrap_interval, holm, sign_flip_p
from .longtail_settings import CONTROL_ARMS, REAL, TREATMENT_TITLES, LongtailSettings, arm_label, parse_arm

GENERATOR_TRAIN = "generator-train"
from .runner import Runner, stable_seed
from .synthesis import (BenchmarkData, benchmark_data, held_out_split, mirror_symmetric, read_dataset,
                        synthesize)

log = logging.getLogger(__name__)

GROUPS = ("all", "many", "medium", "few")
LT_METRICS = [f"lt_{g}" for g in GROUPS]
CEILING = "balanced real (ceiling)"
MIN_REPLICATES = 3  # contrasts below this carry no verdict
ALPHA = 0.05  # the family-wise error of the declared contrasts (Holm)
PLATEAU_TOLERANCE = 0.01  # balanced accuracy still to gain beyond the recipe's steps that counts as "at the plateau"


@dataclass
class Replicate:
    """One replicate's data: the long-tailed training set, the references and the held-out real extras."""

    index: int
    seed: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    extras: dict        # class -> held-out real images the generator never saw (head - n_c), in drawn order
    references: dict    # class -> k references (the first k of its training images)
    drawn: dict         # class -> the first ``head`` images of its pool in drawn order (all of the above are prefixes)
    ceiling_x: torch.Tensor
    ceiling_y: torch.Tensor
    generator_train: dict = field(default_factory=dict)  # class -> images the generator was trained on, those
    # outside the training set first (all of them where every one is in it), in drawn order, at most ``head``


def data_arms(cfg: LongtailSettings) -> list[tuple[str, str | None]]:
    """(arm, condition) pairs the benchmark runs (:func:`.longtail_settings.data_arms`)."""
    return cfg.run_arms()


def class_ranks(runner: Runner, cfg: LongtailSettings, num_classes: int) -> list[int]:
    """ranks[c]: the rank of class c in the profile (0 = the largest): the model's own order puts its tail classes
    (the exposure-limited ones of a folder trained with --exposure) last, the others by their training counts."""
    counts = torch.bincount(runner.model.data_split("train-longtail")[1].long(), minlength=num_classes)
    tail = set(runner.groups()["tail"])
    by_size = sorted(range(num_classes), key=lambda c: (c in tail, -int(counts[c]), c))
    if cfg.order == "permuted":
        by_size = [by_size[i] for i in runner.rng("longtail-order").permutation(num_classes)]
    ranks = [0] * num_classes
    for r, c in enumerate(by_size):
        ranks[c] = r
    return ranks


def rank_groups(runner: Runner, ranks: list[int]) -> dict:
    """many / medium / few classes: the top and bottom ranks, as many as the model's head and tail groups."""
    n_many, n_few = len(runner.groups()["head"]), len(runner.groups()["tail"])
    k = len(ranks)
    return {"many": [c for c in range(k) if ranks[c] < n_many], "few": [c for c in range(k) if ranks[c] >= k - n_few],
            "medium": [c for c in range(k) if n_many <= ranks[c] < k - n_few]}


def real_pools(data, num_classes: int) -> dict:
    """class -> (the real images the generator never saw: the extra pool, the ones it saw: the long-tailed split)."""
    return {c: (data.extra_x[data.extra_y == c], data.train_x[data.train_y == c]) for c in range(num_classes)}


def check_longtail(model, cfg: LongtailSettings) -> None:
    """ValueError, before anything is written, when the model's real images cannot give the profile (a class
    with fewer images outside the test set than ``head``; with the oracle arm, fewer images the generator never saw
    than ``head``), the profile leaves a class with fewer images than the references, a class's fill is smaller
    than the tail dose, or a declared contrast names an arm that cannot make the fill's distinct seeds."""
    refine = [arm_label(a, c) for a, c in cfg.run_arms() if parse_arm(a).strategy == "seedselect"]
    if refine and not model.has_features:
        raise ValueError(f"{model.name} has no feature extractor, which SeedSelect needs for its loss: leave "
                         f"{', '.join(dict.fromkeys(refine))} out of the arms")
    train_y = model.data_split("train-longtail")[1].long()
    test_y = model.data_split("test-references")[1].long()
    held_y = held_out_split(model)[1].long()
    k = len(model.class_names)
    counts = cfg.counts(k)
    oracle = any(parse_arm(a).strategy == "oracle" for a, _ in cfg.run_arms())
    for c in range(k):
        unseen = max(0, int((test_y == c).sum()) - cfg.test_per_class) + int((held_y == c).sum())
        if unseen + int((train_y == c).sum()) < cfg.head:
            raise ValueError(f"class {c} has {unseen + int((train_y == c).sum())} real images outside the test set; "
                             f"the benchmark's head count {cfg.head} needs that many (lower head or test_per_class)")
        if oracle and unseen < cfg.head:
            raise ValueError(f"the oracle arm needs real images the generator never saw: class {c} has {unseen} "
                             f"outside the test set, the head count {cfg.head} needs that many (lower head or "
                             "test_per_class, or leave oracle out of the arms)")
    if min(counts) < cfg.shots:
        raise ValueError(f"the long-tail profile (head {cfg.head}, imbalance {cfg.imbalance:g}) leaves a class with "
                         f"{min(counts)} images, fewer than the {cfg.shots} references asked for")
    n_many = len(getattr(model, "head_classes", None) or [0])
    if "tail" in cfg.doses and cfg.head - counts[min(n_many, k - 1)] < cfg.tail_dose:
        raise ValueError(f"the tail dose ({cfg.tail_dose}) is more than the largest medium class can be filled "
                         f"({cfg.head - counts[min(n_many, k - 1)]} images up to the head count {cfg.head})")
    need = cfg.head - min(counts)
    named = {x for c in cfg.declared_contrasts() for x in (c.a, c.b)} if cfg.contrasts else set()
    unseen_classes = [c for c in range(k) if not int((train_y == c).sum())]
    if GENERATOR_TRAIN in named and unseen_classes:
        raise ValueError(f"a declared contrast names {GENERATOR_TRAIN}, which is not run: the generator saw no image "
                         f"of class(es) {', '.join(map(str, unseen_classes))} (exposure 0)")
    for arm, condition in cfg.run_arms():
        if arm_label(arm, condition) in named and not can_produce(arm, cfg.shots, need):
            raise ValueError(f"a declared contrast names {arm_label(arm, condition)}, which is not run: it cannot "
                             f"make {need} distinct seeds from {cfg.shots} references")


def can_produce(arm: str, shots: int, need: int) -> bool:
    """Whether the arm's strategy can make ``need`` distinct seeds from ``shots`` references (a centroid of a
    subset needs two of them, a geodesic two endpoints); the controls and random seeds always can."""
    strategy = parse_arm(arm).strategy
    return strategy in CONTROL_ARMS or (shots >= MIN_REFERENCES[strategy] and max_distinct(strategy, shots) >= need)


def producible_arms(cfg: LongtailSettings, arms: list, fill: dict) -> tuple[list, list[str]]:
    """The arms whose strategy can make the fill dose's distinct seeds from k references, and a note for the rest."""
    need = max(fill.values(), default=0)
    keep, skipped = [], []
    for arm, condition in arms:
        if can_produce(arm, cfg.shots, need):
            keep.append((arm, condition))
        else:
            skipped.append(arm_label(arm, condition))
    notes = [f"Not run (the strategy cannot make {need} distinct seeds from {cfg.shots} references): "
             + ", ".join(skipped) + "."] if skipped else []
    return keep, notes


def generator_train_arms(arms: list, pools: dict, fill: dict) -> tuple[list, list[str]]:
    """The arms without ``generator-train`` where a filled class has no image the generator was trained on
    (exposure 0), with a note; else the arms as given, with a note on the classes whose images are repeated to
    the count (the generator saw fewer than the fill)."""
    if not any(parse_arm(a).strategy == GENERATOR_TRAIN for a, _ in arms):
        return arms, []
    seen = {c: len(pools[c][1]) for c in fill}
    none = [c for c, n in fill.items() if n > 0 and seen[c] == 0]
    if none:
        return [(a, c) for a, c in arms if parse_arm(a).strategy != GENERATOR_TRAIN], [
            f"Not run: {GENERATOR_TRAIN} (real images the generator was trained on): it saw no image of class(es) "
            f"{', '.join(map(str, none))} (exposure 0)."]
    short = [f"{c}: {seen[c]} for {n}" for c, n in fill.items() if 0 < seen[c] < n]
    return arms, [f"{GENERATOR_TRAIN}: the generator's training images of each filled class (those outside the "
                  "replicate's training set first), repeated to the count where it saw fewer"
                  + (f" ({', '.join(short)})" if short else "") + "."]


def draw_replicate(runner: Runner, cfg: LongtailSettings, index: int, pools: dict, counts: list[int],
                   ranks: list[int]) -> Replicate:
    """The replicate's draw: per class the unseen images in a seeded order, then the seen ones, cut at ``head``;
    the training set takes the first n_c (references: the first k), the extras the rest (unseen by the check)."""
    seed = stable_seed(runner.cfg.seed, "longtail-replicate", index)
    n_of = {c: counts[ranks[c]] for c in pools}
    drawn, generator_train = {}, {}
    for c, (unseen, seen) in pools.items():
        rng = runner.rng("longtail-draw", index, c)
        unseen_order = torch.from_numpy(rng.permutation(len(unseen)))  # this order: the draws of earlier runs
        seen_order = torch.from_numpy(rng.permutation(len(seen)))
        drawn[c] = torch.cat([unseen[unseen_order], seen[seen_order]])[:cfg.head]
        in_training = max(0, n_of[c] - len(unseen))  # the seen images the training set takes (its last ones)
        rest = seen_order[in_training:] if in_training < len(seen) else seen_order
        generator_train[c] = seen[rest[:cfg.head]]
    train_x, train_y = labelled({c: drawn[c][:n] for c, n in n_of.items()})
    ceiling_x, ceiling_y = labelled(drawn)
    return Replicate(index, seed, train_x, train_y, {c: drawn[c][n:] for c, n in n_of.items()},
                     {c: drawn[c][:cfg.shots] for c in pools}, drawn, ceiling_x, ceiling_y, generator_train)


def labelled(images: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """{class: images} -> (all images, their labels), classes in the dict's order."""
    return (torch.cat(list(images.values())),
            torch.cat([torch.full((len(x),), c, dtype=torch.long) for c, x in images.items()]))


def dose_counts(cfg: LongtailSettings, dose: str, counts_of: dict, groups: dict) -> dict:
    """class -> images the dose adds."""
    if dose == "tail":
        return {c: cfg.tail_dose for c in groups["medium"] + groups["few"]}
    return {c: cfg.head - n for c, n in counts_of.items() if n < cfg.head}


def dose_treatments(cfg: LongtailSettings, dose: str) -> tuple:
    """The treatments trained on a dose: all but class-balanced resampling on the fill dose, where every class
    already has ``head`` images (resampling a balanced set is plain resampling)."""
    return tuple(t for t in cfg.treatments if not (dose == "fill" and t == "cb"))


def added_images(runner: Runner, cfg: LongtailSettings, rep: Replicate, arm: str, condition: str | None,
                 fill: dict, workdir) -> dict:
    """class -> the arm's images for the fill dose (the tail dose takes the first of them)."""
    strategy, method, prior = parse_arm(arm)
    if strategy == "oracle":
        return {c: rep.extras[c][:n] for c, n in fill.items()}
    if strategy == "oversample":
        return {c: rep.references[c][torch.arange(n) % len(rep.references[c])] for c, n in fill.items()}
    if strategy == GENERATOR_TRAIN:  # count-matched: repeated where the generator saw fewer than the fill
        return {c: rep.generator_train[c][torch.arange(n) % len(rep.generator_train[c])] for c, n in fill.items()}
    model = runner.synthesis_model()
    return synthesize(runner, arm, condition, rep.references, fill, arm_folder(workdir, rep.index, arm, condition),
                      cfg.steps, seed=rep.seed, prior=prior_record(prior, runner.model), model=model)


def score_stored_images(runner: Runner) -> dict:
    """{arm: [per replicate :func:`.image_scores.image_scores`]} of a finished benchmark whose replicates were
    stored before the benchmark scored images: the images each arm's fill dose adds to the few-shot classes,
    the synthetic arms' read back from the run's data sets (``runner.workdir``; nothing is generated: ValueError
    naming the first data set that is missing or unfinished), the controls drawn again (a replicate's draw depends
    on its index and the settings only)."""
    cfg = runner.cfg.longtail
    plan = plan_benchmark(runner, cfg)
    few = plan.groups["few"]
    fill = {c: plan.fill[c] for c in few}
    workdir = runner.workdir("longtail")
    names = runner.model.class_names
    real = real_features(runner, {c: plan.data.test_x[plan.data.test_y == c] for c in few}, few)
    out: dict[str, list] = {}
    for index in range(cfg.replicates):
        rep = draw_replicate(runner, cfg, index, plan.pools, plan.counts, plan.ranks)
        ref_feats = real_features(runner, rep.references, few)
        for arm, condition in plan.arms:
            if parse_arm(arm).strategy in CONTROL_ARMS:
                added = added_images(runner, cfg, rep, arm, condition, fill, workdir)
            else:
                added = {c: stored_images(arm_folder(workdir, index, arm, condition) / str(c), names[c], c)
                         for c in few}
            out.setdefault(arm_label(arm, condition), []).append(
                image_scores(runner, added, MANIFOLD_K, ref_feats, real))
        log.info(f"longtail: replicate {index + 1}/{cfg.replicates}: images scored")
    return out


def stored_images(folder: Path, name: str, c: int) -> torch.Tensor:
    """Class ``c``'s images of the finished data set the benchmark wrote into ``folder``; ValueError where it is
    missing or unfinished."""
    record = folder / "run.json"
    status = outputs.read_json_object(record).get("status") if record.is_file() else None
    if status != "completed":
        raise ValueError(f"{folder} is not a finished data set of the benchmark (status {status}): its images are "
                         "scored only where the benchmark made them")
    return read_dataset(folder, {name: c})[c]


def arm_folder(workdir: Path, index: int, arm: str, condition: str | None) -> Path:
    """Where replicate ``index`` keeps a synthetic arm's data sets (one augment run per class, in ``<class>/``)."""
    return workdir / f"r{index}" / arm_label(arm, condition).replace(":", "-").replace("@", "-").replace(" ", "")


def train_and_test(runner: Runner, cfg: LongtailSettings, xs, ys, treatments, seed: int, data,
                   num_classes: int, steps: int | None = None) -> dict:
    """treatment -> per-class test accuracy (numpy) of the classifiers the treatments need. ``la`` and ``bs`` use
    the prior of ``ys``, the set trained on (uniform on a balanced set: then they are ``ce``)."""
    recipe = ClassifierRecipe(steps=steps or cfg.classifier_steps, batch_size=cfg.batch_size, width=cfg.width,
                              flip=mirror_symmetric(runner.model))
    out = {}
    if "ce" in treatments:
        net = train_classifier(xs, ys, num_classes, recipe, seed)
        out["ce"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes).numpy()
        if "la" in treatments:
            prior = log_prior(class_counts(ys, num_classes))
            out["la"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes, adjust=prior).numpy()
    if "cb" in treatments:
        net = train_classifier(xs, ys, num_classes, recipe, seed, balanced=True)
        out["cb"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes).numpy()
    if "bs" in treatments:
        bs = ClassifierRecipe(**{**recipe.as_dict(), "loss": "balanced-softmax"})
        net = train_classifier(xs, ys, num_classes, bs, seed)
        out["bs"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes).numpy()
    return out


def group_accuracy(per_class: np.ndarray, groups: dict) -> dict:
    """{lt_all, lt_many, lt_medium, lt_few}: mean per-class accuracy over the classes of each group (lt_all:
    balanced accuracy)."""
    out = {"lt_all": float(np.nanmean(per_class))}
    for g in ("many", "medium", "few"):
        out[f"lt_{g}"] = float(np.nanmean(per_class[groups[g]]))
    return out


@dataclass
class BenchmarkPlan:
    """What every replicate of a benchmark shares: the real data, the class ranks and groups, the profile's
    counts, the real pools, the fill dose and the arms that run (with a note for those that cannot)."""

    data: BenchmarkData
    ranks: list
    groups: dict
    counts: list
    pools: dict
    counts_of: dict
    fill: dict
    arms: list
    notes: list


def plan_benchmark(runner: Runner, cfg: LongtailSettings) -> BenchmarkPlan:
    """The benchmark's :class:`BenchmarkPlan` (ValueError first where the model cannot give the profile)."""
    check_longtail(runner.model, cfg)
    data = benchmark_data(runner, cfg.test_per_class)
    k = data.num_classes
    ranks = class_ranks(runner, cfg, k)
    groups = rank_groups(runner, ranks)
    counts = cfg.counts(k)
    pools = real_pools(data, k)
    counts_of = {c: counts[ranks[c]] for c in range(k)}
    fill = dose_counts(cfg, "fill", counts_of, groups)
    arms, notes = producible_arms(cfg, data_arms(cfg), fill)
    arms, notes_train = generator_train_arms(arms, pools, fill)
    return BenchmarkPlan(data, ranks, groups, counts, pools, counts_of, fill, arms, notes + notes_train)


def run_longtail(runner: Runner) -> dict:
    """Classifier accuracy per (data, dose, treatment), over replicates; the declared contrasts; the plateau check."""
    cfg: LongtailSettings = runner.cfg.longtail
    plan = plan_benchmark(runner, cfg)
    data, groups, counts_of, arms = plan.data, plan.groups, plan.counts_of, plan.arms
    k = data.num_classes
    run = {REAL} | {arm_label(a, c) for a, c in arms}
    contrasts = [c for c in cfg.declared_contrasts() if {c.a, c.b} <= run]  # explicit ones: all run (checked)
    sec = section("Long-tail benchmark", description(runner, cfg, counts_of, groups, data, contrasts))
    sec["notes"] += plan.notes
    if "fill" in cfg.doses and "cb" in cfg.treatments:
        sec["notes"].append("cb is not trained on the fill dose: every class has the head count there, so "
                            "class-balanced resampling is plain resampling.")
    sec["notes"].append(f"Class ranks ({cfg.order} order): " + ", ".join(f"{c}: {counts_of[c]}" for c in range(k)))
    results: dict[tuple, list[np.ndarray]] = {}
    images: dict[str, list[dict]] = {}  # arm -> per replicate, the judge's view of the images it adds to the few-shot classes
    blank: Counter = Counter()  # arm -> its images that came out blank (kept: what the arm's seeds make)
    few = groups["few"]
    # precision / recall need more than MANIFOLD_K images on both sides
    scored = all(plan.fill.get(c, 0) > MANIFOLD_K and int((data.test_y == c).sum()) > MANIFOLD_K for c in few)
    if scored:  # measured against the test images, which went through the model's resolution as the arms' did
        real = real_features(runner, {c: data.test_x[data.test_y == c] for c in few}, few)
    else:
        sec["notes"].append(f"No image scores: a few-shot class has {MANIFOLD_K} or fewer added or test images "
                            "(precision and recall need more).")
    timing = {"synthesis_s": 0.0, "classifiers_s": 0.0, "classifiers": 0, "images": 0}
    t_start = time.perf_counter()
    plateau_data = {}  # replicate 0's training sets of every data family, for the plateau check
    store = runner.workdir("longtail") / REPLICATES
    tables: list = []
    for index in range(cfg.replicates):
        done = load_replicate(store, index)
        if done is not None:  # finished by an earlier, interrupted attempt at this run (same settings: checked)
            merge_replicate(done, results, timing, runner)
            blank.update(done.get("blank") or {})  # absent from replicates stored before it
            for label, scores in (done.get("images") or {}).items():  # absent from replicates stored before them
                images.setdefault(label, []).append(scores)
            if index == 0:
                tables, timing["plateau_s"] = done["plateau"]["tables"], done["plateau"]["seconds"]
                sec["notes"] += done["plateau"]["notes"]
            log.info(f"longtail: replicate {index + 1}/{cfg.replicates}: read back from {store}")
            continue
        before = replicate_state(results, timing, runner)
        rep = draw_replicate(runner, cfg, index, plan.pools, plan.counts, plan.ranks)
        rep_images, rep_blank = {}, {}
        ref_feats = real_features(runner, rep.references, few) if scored else None
        seed = stable_seed(rep.seed, "classifier")
        t0 = time.perf_counter()
        for key, acc in train_and_test(runner, cfg, rep.train_x, rep.train_y, cfg.treatments, seed, data, k).items():
            results.setdefault((REAL, "none", key), []).append(acc)
        ceiling = train_and_test(runner, cfg, rep.ceiling_x, rep.ceiling_y, ("ce",), seed, data, k)
        results.setdefault((CEILING, "none", "ce"), []).append(ceiling["ce"])
        timing["classifiers_s"] += time.perf_counter() - t0
        timing["classifiers"] += len(cfg.treatments) - ("la" in cfg.treatments) + 1
        if index == 0:
            plateau_data[(REAL, "none")] = (rep.train_x, rep.train_y)
            plateau_data[(CEILING, "none")] = (rep.ceiling_x, rep.ceiling_y)
        for arm, condition in arms:
            t0 = time.perf_counter()
            added = added_images(runner, cfg, rep, arm, condition, plan.fill, runner.workdir("longtail"))
            timing["synthesis_s"] += time.perf_counter() - t0
            if parse_arm(arm).strategy not in CONTROL_ARMS:
                timing["images"] += sum(len(v) for v in added.values())
                n_blank = sum(outputs.degenerate(image) is not None for v in added.values() for image in v)
                if n_blank:
                    rep_blank[arm_label(arm, condition)] = n_blank
            if scored:
                rep_images[arm_label(arm, condition)] = image_scores(
                    runner, {c: added[c] for c in few}, MANIFOLD_K, ref_feats, real)
            for dose in cfg.doses:
                take = dose_counts(cfg, dose, counts_of, groups)
                add_x, add_y = labelled({c: added[c][:n] for c, n in take.items()})
                xs, ys = torch.cat([rep.train_x, add_x]), torch.cat([rep.train_y, add_y])
                if index == 0 and dose == plateau_dose(cfg):
                    plateau_data[(arm_label(arm, condition), dose)] = (xs, ys)
                treatments = dose_treatments(cfg, dose)
                t0 = time.perf_counter()
                for key, acc in train_and_test(runner, cfg, xs, ys, treatments, seed, data, k).items():
                    results.setdefault((arm_label(arm, condition), dose, key), []).append(acc)
                timing["classifiers_s"] += time.perf_counter() - t0
                timing["classifiers"] += len(treatments) - ("la" in treatments)
            log.info(f"longtail: replicate {index + 1}/{cfg.replicates}: {arm_label(arm, condition)} done "
                     f"({time.perf_counter() - t_start:.0f} s so far)")
        plateau = None
        if index == 0:
            t0 = time.perf_counter()
            tables, notes = plateau_tables(runner, cfg, plateau_data, results, seed, data, k, groups)
            timing["plateau_s"] = time.perf_counter() - t0
            sec["notes"] += notes
            plateau_data.clear()
            plateau = {"tables": tables, "notes": notes, "seconds": timing["plateau_s"]}
        for label, scores in rep_images.items():
            images.setdefault(label, []).append(scores)
        blank.update(rep_blank)
        save_replicate(store, index, before, results, timing, runner, plateau, rep_images, rep_blank)
    sec["tables"].append(contrast_table(runner, contrasts, results, groups))
    sec["tables"].append(main_table(cfg, results, groups))
    sec["tables"] += tables
    sec["tables"].append(paired_table(cfg, results, groups, arms))
    if images:
        sec["tables"].append(arm_images_table(images, runner.cfg.confidence))
        sec["image_items"] = images
        n_scored = min(len(v) for v in images.values())
        if n_scored < cfg.replicates:
            sec["notes"].append(f"Image scores of {n_scored} of {cfg.replicates} replicates (those stored before the "
                                "benchmark scored images have none).")
    if runner.reference_psnr:
        table = roundtrip_table(runner, cfg)
        sec["tables"].append(table)
        sec["notes"].append("References' round trip (inverted, then regenerated at the synthesis's settings: a "
                            "path's endpoint against its reference): " + "; ".join(
                                f"{r['label']['condition']} {r['metrics']['psnr']['mean']:.1f} dB (min "
                                f"{r['label']['min dB']})" for r in table["rows"]) + ".")
    if blank:
        per_arm = sum(plan.fill.values()) * cfg.replicates
        sec["notes"].append("Blank images (one value everywhere: the model drew nothing at the seed), kept as the "
                            "arm's data, since they are what its seeds make: " + "; ".join(
                                f"{label} {n} of {per_arm}" for label, n in sorted(blank.items())) + ".")
    sec["timing"] = {**timing, "wall_s": time.perf_counter() - t_start}
    sec["notes"].append(f"Time: {timing['synthesis_s']:.0f} s making {timing['images']} synthetic images, "
                        f"{timing['classifiers_s']:.0f} s training {timing['classifiers']} classifiers, "
                        f"{timing.get('plateau_s', 0):.0f} s on the plateau check.")
    sec["items"] = {" / ".join(key): [{"key": [r], **group_accuracy(a, groups)} for r, a in enumerate(accs)]
                    for key, accs in results.items()}
    return sec


# -- replicate checkpoints: an interrupted benchmark continues where it stopped ------------------------------
# Each finished replicate is stored (its accuracies, its time, its references' round trips, and at replicate 0 the
# plateau check) under the run's datasets/longtail/replicates; `seedspace evaluate --resume` reads them back
# instead of measuring them again. A replicate's numbers depend only on its index and the settings (its seeds are
# derived from both), so a read-back replicate is the one the uninterrupted run would have measured.
TIMING_KEYS = ("synthesis_s", "classifiers_s", "classifiers", "images")
REPLICATES = "replicates"  # the folder of the stored replicates in the runner's workdir("longtail")


def replicate_state(results: dict, timing: dict, runner: Runner) -> dict:
    """How far the accumulators are before a replicate (what it adds is stored)."""
    return {"results": {key: len(v) for key, v in results.items()}, "timing": {k: timing[k] for k in TIMING_KEYS},
            "psnr": {c: len(v) for c, v in runner.reference_psnr.items()}}


def save_replicate(store: Path, index: int, before: dict, results: dict, timing: dict, runner: Runner,
                   plateau: dict | None, images: dict, blank: dict) -> None:
    """Replicate ``index``'s contribution to the accumulators, its image scores and its arms' blank images,
    written atomically."""
    record = {
        "results": {"\t".join(key): {"dtype": accs[-1].dtype.str, "values": accs[-1].tolist()}
                    for key, accs in results.items() if len(accs) > before["results"].get(key, 0)},
        "timing": {k: timing[k] - before["timing"][k] for k in TIMING_KEYS},
        "reference_psnr": {c: v[before["psnr"].get(c, 0):] for c, v in runner.reference_psnr.items()},
        "plateau": plateau,
        "images": images,
        "blank": blank,
    }
    store.mkdir(parents=True, exist_ok=True)
    outputs.write_text(replicate_file(store, index), json.dumps(record, default=_number))


def _number(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a replicate checkpoint")


def replicate_file(store: Path, index: int) -> Path:
    return store / f"replicate-{index:04d}.json"


def load_replicate(store: Path, index: int) -> dict | None:
    path = replicate_file(store, index)
    return outputs.read_json_object(path) if path.is_file() else None


def merge_replicate(done: dict, results: dict, timing: dict, runner: Runner) -> None:
    for key, accs in done["results"].items():  # float32 and float64 values come back exactly
        results.setdefault(tuple(key.split("\t")), []).append(np.asarray(accs["values"], dtype=accs["dtype"]))
    for k in TIMING_KEYS:
        timing[k] += done["timing"][k]
    for condition, values in done["reference_psnr"].items():
        runner.reference_psnr.setdefault(condition, []).extend(values)


def roundtrip_table(runner: Runner, cfg: LongtailSettings) -> dict:
    """The references' round-trip PSNR per condition over each replicate's references (what augment records as
    ``references_psnr``; the same references are counted once, however many arms start from them)."""
    rows = []
    for condition, values in runner.reference_psnr.items():
        rows.append(row({"condition": condition, "inversion": cfg.inversion, "min dB": f"{min(values):.1f}"},
                        {"psnr": t_interval(values)}, n_items=len(values)))
    guidance = runner.guidance
    return {"name": "longtail-roundtrip", "title": f"References' round trip: inverted ({cfg.inversion}), regenerated "
            f"at the synthesis's {cfg.steps or runner.steps} steps and guidance {guidance:g} (PSNR in dB against the "
            "reference, mean over each replicate's references, 95% t interval)",
            "metrics": ["psnr"], "rows": rows}


def description(runner: Runner, cfg: LongtailSettings, counts_of: dict, groups: dict, data, contrasts) -> str:
    exposure = (getattr(runner.model, "info", None) or {}).get("exposure")
    seen = ("; generator exposure (images of each exposure-limited class it saw): " +
            ", ".join(f"{name} {n}" for name, n in exposure["seen"].items())) if exposure else ""
    declared = "; ".join(f"({i + 1}) {c.title()}" for i, c in enumerate(contrasts)) or "none"
    inversion = ("the fixed-point inversion of that sampler (its steps and guidance)" if cfg.inversion == "fixed-point"
                 else f"DDIM inversion at {runner.inversion_steps} steps, guidance 1")
    return (f"Per replicate ({cfg.replicates}), a long-tailed training set drawn from the model's real images "
            f"(head {cfg.head}, imbalance {cfg.imbalance:g}, {cfg.order} class order: {sum(counts_of.values())} "
            f"images; unseen-by-the-generator images first{seen}), k = {cfg.shots} references per class from it, "
            f"and its own synthesis and classifier seeds. Doses: tail = +{cfg.tail_dose} images per medium / "
            f"few-shot class, fill = every class up to {cfg.head}. Treatments: " +
            ", ".join(f"{t} = {TREATMENT_TITLES[t]}" for t in cfg.treatments) +
            " (the prior of la and bs: the class counts of the set trained on, so on the balanced fill dose they "
            "equal ce; la's strength tau = 1, untuned). "
            f"Classifier: the small CNN (width {cfg.width}), {cfg.classifier_steps} AdamW steps of {cfg.batch_size} "
            f"images for every data set, horizontal flips {'on' if mirror_symmetric(runner.model) else 'off (the data are not mirror-symmetric)'}; "
            f"tested on {data.test_x.shape[0]} balanced test images. Synthesis: {cfg.steps or runner.steps} DDIM "
            f"steps, references inverted by {inversion}; SeedSelect arms: {cfg.seedselect_steps} steps. Groups: "
            f"many {groups['many']}, medium {groups['medium']}, few {groups['few']}. Primary metric: "
            "balanced accuracy (accuracy, all = the mean per-class accuracy). Cells: mean over replicates, 95% t "
            f"interval. Declared contrasts (before any result; Holm-adjusted together at {ALPHA:g}): {declared}.")


def plateau_dose(cfg: LongtailSettings) -> str:
    """The dose of the added-data arms in the plateau check: fill where it runs."""
    return "fill" if "fill" in cfg.doses else cfg.doses[0]


def plateau_tables(runner: Runner, cfg: LongtailSettings, sets: dict, results: dict, seed: int, data, k: int,
                   groups: dict) -> tuple[list[dict], list[str]]:
    """Replicate 0's classifiers of every data family (real with ce and cb, the balanced ceiling, each added-data
    arm on :func:`plateau_dose` with ce) at each of ``plateau_steps``; the recipe's own steps are the main run's
    classifiers. A family is at its plateau when training to the largest checked steps gains at most
    ``PLATEAU_TOLERANCE`` balanced accuracy over the recipe's steps. (the table, the verdict table), notes."""
    steps_list = sorted(set(cfg.plateau_steps) | {cfg.classifier_steps})
    rows, verdicts, short = [], [], []
    for (name, dose), (xs, ys) in sets.items():
        treatments = ("ce", "cb") if name == REAL and "cb" in cfg.treatments else ("ce",)
        curve = {t: {} for t in treatments}
        for steps in steps_list:
            known = steps == cfg.classifier_steps and all((name, dose, t) in results for t in treatments)
            accs = ({t: results[(name, dose, t)][0] for t in treatments} if known else
                    train_and_test(runner, cfg, xs, ys, treatments, seed, data, k, steps))
            for t in treatments:
                g = group_accuracy(accs[t], groups)
                curve[t][steps] = g["lt_all"]
                rows.append(row({"data": name, "dose": dose, "treatment": t, "steps": steps},
                                {m: {"mean": g[m], "lo": g[m], "hi": g[m], "n": 1} for m in LT_METRICS}))
        for t, by_steps in curve.items():
            top = max(steps_list)
            gain = by_steps[top] - by_steps[cfg.classifier_steps]
            if top == cfg.classifier_steps:
                text = "not checked (no step count above the recipe's)"
            else:
                text = "reached" if gain <= PLATEAU_TOLERANCE else f"not reached: {gain:+.3f} at {top} steps"
                if gain > PLATEAU_TOLERANCE:
                    short.append(f"{name} {dose} {t}".replace(" none", ""))
            verdicts.append(row({"data": name, "dose": dose, "treatment": t}, {}, verdict=text, n_items=1))
    log.info("longtail: plateau check done")
    notes = [f"Plateau check: not checked (no step count above the recipe's {cfg.classifier_steps})."
             if max(steps_list) == cfg.classifier_steps else
             f"Plateau check: every data arm reached its plateau at {cfg.classifier_steps} steps (within "
             f"{PLATEAU_TOLERANCE:g} balanced accuracy of {max(steps_list)} steps)." if not short else
             f"Plateau check: NOT at the plateau at {cfg.classifier_steps} steps (more than {PLATEAU_TOLERANCE:g} "
             f"balanced accuracy still to gain at {max(steps_list)} steps, replicate 0): " + ", ".join(short) + "."]
    return [{"name": "longtail-plateau-verdict", "title": f"Plateau check (replicate 0): is each data arm at its "
             f"plateau at the recipe's {cfg.classifier_steps} steps?", "metrics": [], "rows": verdicts},
            {"name": "longtail-plateau", "title": "Plateau check (replicate 0): accuracy against classifier steps",
             "metrics": LT_METRICS, "rows": rows}], notes


def _groups_over_replicates(accs: list[np.ndarray], groups: dict, metric: str) -> np.ndarray:
    return np.array([group_accuracy(a, groups)[metric] for a in accs])


def main_table(cfg: LongtailSettings, results: dict, groups: dict) -> dict:
    rows = []
    for (data_arm, dose, treatment), accs in results.items():
        rows.append(row({"data": data_arm, "dose": dose, "treatment": treatment},
                        {m: t_interval(_groups_over_replicates(accs, groups, m)) for m in LT_METRICS},
                        n_items=len(accs)))
    return {"name": "longtail", "title": "Classifier accuracy on the balanced test set (mean over replicates; "
            "accuracy, all = balanced accuracy)", "metrics": LT_METRICS, "rows": rows}


def replicate_differences(results: dict, a: tuple, b: tuple, groups: dict, metric: str) -> np.ndarray:
    """Per replicate (those both cells have), the group accuracy of a minus that of b."""
    n = min(len(results[a]), len(results[b]))
    return _groups_over_replicates(results[a][:n], groups, metric) - _groups_over_replicates(results[b][:n], groups, metric)


def contrast_table(runner: Runner, contrasts: list, results: dict, groups: dict) -> dict:
    """The declared contrasts: mean difference over replicates with its t interval and paired bootstrap interval,
    the sign-flip permutation p-value and its Holm adjustment across the contrasts; the verdict from the adjusted p
    (none below ``MIN_REPLICATES`` replicates)."""
    stats = []
    for c in contrasts:
        diffs = replicate_differences(results, c.key("a"), c.key("b"), groups, f"lt_{c.group}")
        rng = runner.rng("longtail-contrast", c.text)
        stats.append((c, t_interval(diffs), bootstrap_interval(diffs, rng), sign_flip_p(diffs, rng)))
    adjusted = holm([p for *_, p in stats]) if stats else []
    rows = []
    for (c, t, boot, p), p_holm in zip(stats, adjusted):
        if t["n"] < MIN_REPLICATES:
            text = f"too few replicates for a verdict (n < {MIN_REPLICATES})"
        elif p_holm <= ALPHA:
            text = f"{c.a if t['mean'] > 0 else c.b} higher (Holm p {p_holm:.3g})"
        else:
            text = "no clear difference"
        rows.append(row({"contrast": c.title(), "p (sign-flip)": f"{p:.3g}", "p (Holm)": f"{p_holm:.3g}"},
                        {"diff_t": t, "diff_boot": boot}, verdict=text, n_items=t["n"], declared=c.text))
    return {"name": "longtail-contrasts", "title": "Declared contrasts (a − b over replicates; group accuracy, "
            "all = balanced accuracy; Holm-adjusted across these rows)", "metrics": ["diff_t", "diff_boot"],
            "rows": rows}


def paired_table(cfg: LongtailSettings, results: dict, groups: dict, arms: list) -> dict:
    """Exploratory (no verdict, no multiplicity correction): per added-data arm, dose and treatment, against the
    real data with the same treatment and against the count-matched oversampling control."""
    rows = []
    oversample = next((arm_label(a, c) for a, c in arms if parse_arm(a).strategy == "oversample"), None)
    for arm, condition in arms:
        label = arm_label(arm, condition)
        for dose in cfg.doses:
            for treatment in dose_treatments(cfg, dose):
                a = (label, dose, treatment)
                baselines = [(REAL, "none", treatment)]
                if oversample is not None and label != oversample and parse_arm(arm).strategy != "oracle":
                    baselines.append((oversample, dose, treatment))
                for b in baselines:
                    for g in ("all", "few"):
                        st = t_interval(replicate_differences(results, a, b, groups, f"lt_{g}"))
                        name_a, name_b = f"{label} {dose} {treatment}", f"{b[0]} {b[1]} {b[2]}".replace(" none", "")
                        rows.append(row({"experiment": "longtail", "comparison": f"{name_a} − {name_b}",
                                         "metric": f"lt_{g}"}, {"diff": st}, verdict="exploratory",
                                        n_items=st["n"]))
    return {"name": "longtail-paired", "title": "Exploratory paired differences over replicates (a − b, t "
            "interval; not adjusted for multiplicity: the verdicts are the declared contrasts')", "kind": "paired",
            "metrics": ["diff"], "rows": rows}
