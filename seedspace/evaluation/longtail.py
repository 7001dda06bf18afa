"""Experiment 6, the long-tail benchmark: does synthetic data beat rebalancing, does it add to it, and which seeds
and prior give the most? (settings: :class:`.longtail_settings.LongtailSettings`)

A grid of data x treatment x dose, trained with one fixed classifier recipe and tested on one balanced test set:

- data: the long-tailed real training set alone (``real``); plus the k references repeated (``oversample``, the
  count-matched control: as many added images, no generation); plus synthetic images of each ``augment`` arm; plus
  held-out real images (``oracle``). The ceiling row: a balanced real set of ``head`` images per class.
- treatments: cross-entropy (``ce``), the same models with post-hoc logit adjustment (``la``), class-balanced
  resampling (``cb``), balanced softmax (``bs``); the prior of ``la`` and ``bs`` is the *real* class counts.
- doses: ``tail`` (+tail_dose images per medium and few-shot class) and ``fill`` (every class up to ``head``); a
  synthetic arm's tail dose is the first images of its fill dose.

Every replicate draws its own training set from the model's real images (the long-tailed split plus the test
references held out of the test set), its own references, synthesis seed and classifier seed; arms are paired by
replicate. Cells: mean over replicates with a Student t interval (R - 1 degrees of freedom); paired rows: the mean
over replicates of the per-replicate difference of group accuracy, t interval. Groups are ranks of the profile:
many / medium / few = the model's head / medium / tail group sizes.

The primary comparison, declared before any result: the best synthetic arm with rebalancing against the best
rebalancing of the real data alone (best = highest mean overall accuracy over the replicates; the choice is made
on the same replicates, which favours both sides alike), on all classes and on the few-shot classes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..backends.loading import resolve_model_prior
from ..methods.augment.settings import MIN_REFERENCES
from ..methods.augment.strategies import max_distinct
from ..scoring.metrics import t_interval
from .classifier import ClassifierRecipe, log_prior, per_class_accuracy, train_classifier
from .experiment import row, section
from .paired import verdict
from .longtail_settings import (CONTROL_ARMS, REBALANCING, TREATMENT_TITLES, LongtailSettings, parse_arm,
                                split_condition)
from .runner import Runner, stable_seed
from .synthesis import benchmark_data, synthesize

GROUPS = ("all", "many", "medium", "few")
LT_METRICS = [f"lt_{g}" for g in GROUPS]
CEILING = "balanced real (ceiling)"
MIN_REPLICATES = 3  # paired rows below this carry no verdict


@dataclass
class Replicate:
    """One replicate's data: the long-tailed training set, the references and the held-out real extras."""

    index: int
    seed: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    extras: dict        # class -> held-out real images (head - n_c of them), in drawn order
    references: dict    # class -> k references (the first k of its training images)
    drawn: dict         # class -> the first ``head`` images of its pool in drawn order (all of the above are prefixes)
    ceiling_x: torch.Tensor
    ceiling_y: torch.Tensor


def data_arms(cfg: LongtailSettings) -> list[tuple[str, str | None]]:
    """(arm, condition) pairs: controls and ``random`` once (with the label), reference-based arms per condition."""
    out = []
    for spec in cfg.arms:
        arm, condition = split_condition(spec)
        strategy = parse_arm(arm)[0]
        if strategy in CONTROL_ARMS:
            out.append((arm, None))
        elif strategy == "random":
            out.append((arm, "class"))
        else:
            out += [(arm, c) for c in ([condition] if condition else cfg.conditions)]
    return list(dict.fromkeys(out))


def arm_label(arm: str, condition: str | None) -> str:
    return arm if condition is None else f"{arm} ({condition})"


def class_ranks(runner: Runner, cfg: LongtailSettings, num_classes: int) -> list[int]:
    """ranks[c]: the rank of class c in the profile (0 = the largest)."""
    counts = torch.bincount(runner.model.data_split("train-longtail")[1].long(), minlength=num_classes)
    by_size = sorted(range(num_classes), key=lambda c: (-int(counts[c]), c))  # the model's own long-tail order
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
    """class -> every real image the training draws may use: the long-tailed split and the held-out pool."""
    return {c: torch.cat([data.train_x[data.train_y == c], data.extra_x[data.extra_y == c]]) for c in range(num_classes)}


def check_longtail(model, cfg: LongtailSettings) -> None:
    """ValueError, before anything is written, when the model's real images cannot give the profile (a class
    with fewer images outside the test set than ``head``), the profile leaves a class with fewer images than the
    references, or a class's fill is smaller than the tail dose."""
    train_y = model.data_split("train-longtail")[1].long()
    test_y = model.data_split("test-references")[1].long()
    k = len(model.class_names)
    counts = cfg.counts(k)
    for c in range(k):
        pool = int((train_y == c).sum()) + max(0, int((test_y == c).sum()) - cfg.test_per_class)
        if pool < cfg.head:
            raise ValueError(f"class {c} has {pool} real images outside the test set; the benchmark's head count "
                             f"{cfg.head} needs that many (lower head or test_per_class)")
    if min(counts) < cfg.shots:
        raise ValueError(f"the long-tail profile (head {cfg.head}, imbalance {cfg.imbalance:g}) leaves a class with "
                         f"{min(counts)} images, fewer than the {cfg.shots} references asked for")
    n_many = len(getattr(model, "head_classes", None) or [0])
    if "tail" in cfg.doses and cfg.head - counts[min(n_many, k - 1)] < cfg.tail_dose:
        raise ValueError(f"the tail dose ({cfg.tail_dose}) is more than the largest medium class can be filled "
                         f"({cfg.head - counts[min(n_many, k - 1)]} images up to the head count {cfg.head})")


def can_produce(arm: str, shots: int, need: int) -> bool:
    """Whether the arm's strategy can make ``need`` distinct seeds from ``shots`` references (a centroid of a
    subset needs two of them, a geodesic two endpoints); the controls and random seeds always can."""
    strategy = parse_arm(arm)[0]
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


def draw_replicate(runner: Runner, cfg: LongtailSettings, index: int, pools: dict, counts: list[int],
                   ranks: list[int]) -> Replicate:
    seed = stable_seed(runner.cfg.seed, "longtail-replicate", index)
    drawn = {c: pool[torch.from_numpy(runner.rng("longtail-draw", index, c).permutation(len(pool))[:cfg.head])]
             for c, pool in pools.items()}
    n_of = {c: counts[ranks[c]] for c in pools}
    train_x, train_y = labelled({c: drawn[c][:n] for c, n in n_of.items()})
    ceiling_x, ceiling_y = labelled(drawn)
    return Replicate(index, seed, train_x, train_y, {c: drawn[c][n:] for c, n in n_of.items()},
                     {c: drawn[c][:cfg.shots] for c in pools}, drawn, ceiling_x, ceiling_y)


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
    model = runner.synthesis_model()
    folder = workdir / f"r{rep.index}" / arm_label(arm, condition).replace(":", "-").replace("@", "-").replace(" ", "")
    return synthesize(runner, f"{strategy}:{method}" if method else strategy, condition, rep.references, fill, folder,
                      cfg.steps, seed=rep.seed, prior=resolve_model_prior(prior, runner.model), model=model)


def train_and_test(runner: Runner, cfg: LongtailSettings, xs, ys, real_counts, treatments, seed: int, data,
                   num_classes: int, steps: int | None = None) -> dict:
    """treatment -> per-class test accuracy (numpy) of the classifiers the treatments need."""
    recipe = ClassifierRecipe(steps=steps or cfg.classifier_steps, batch_size=cfg.batch_size, width=cfg.width)
    out = {}
    if "ce" in treatments:
        net = train_classifier(xs, ys, num_classes, recipe, seed)
        out["ce"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes).numpy()
        if "la" in treatments:
            out["la"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes, adjust=log_prior(real_counts)).numpy()
    if "cb" in treatments:
        net = train_classifier(xs, ys, num_classes, recipe, seed, balanced=True)
        out["cb"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes).numpy()
    if "bs" in treatments:
        bs = ClassifierRecipe(**{**recipe.as_dict(), "loss": "balanced-softmax"})
        net = train_classifier(xs, ys, num_classes, bs, seed, prior_counts=real_counts)
        out["bs"] = per_class_accuracy(net, data.test_x, data.test_y, num_classes).numpy()
    return out


def group_accuracy(per_class: np.ndarray, groups: dict) -> dict:
    """{lt_all, lt_many, lt_medium, lt_few}: mean per-class accuracy over the classes of each group."""
    out = {"lt_all": float(np.nanmean(per_class))}
    for g in ("many", "medium", "few"):
        out[f"lt_{g}"] = float(np.nanmean(per_class[groups[g]]))
    return out


def run_longtail(runner: Runner) -> dict:
    """Classifier accuracy per (data, dose, treatment), over replicates; paired comparisons; the primary one."""
    cfg: LongtailSettings = runner.cfg.longtail
    check_longtail(runner.model, cfg)
    data = benchmark_data(runner, cfg.test_per_class)
    k = data.num_classes
    ranks = class_ranks(runner, cfg, k)
    groups = rank_groups(runner, ranks)
    counts = cfg.counts(k)
    pools = real_pools(data, k)
    counts_of = {c: counts[ranks[c]] for c in range(k)}
    real_counts = torch.tensor([counts_of[c] for c in range(k)])
    fill = dose_counts(cfg, "fill", counts_of, groups)
    arms, skipped = producible_arms(cfg, data_arms(cfg), fill)
    sec = section("Long-tail benchmark", description(runner, cfg, counts_of, groups, data))
    sec["notes"] += skipped
    if "fill" in cfg.doses and "cb" in cfg.treatments:
        sec["notes"].append("cb is not trained on the fill dose: every class has the head count there, so "
                            "class-balanced resampling is plain resampling.")
    sec["notes"].append(f"Class ranks ({cfg.order} order): " + ", ".join(f"{c}: {counts_of[c]}" for c in range(k)))
    results: dict[tuple, list[np.ndarray]] = {}
    timing = {"synthesis_s": 0.0, "classifiers_s": 0.0, "classifiers": 0, "images": 0}
    t_start = time.perf_counter()
    for index in range(cfg.replicates):
        rep = draw_replicate(runner, cfg, index, pools, counts, ranks)
        seed = stable_seed(rep.seed, "classifier")
        t0 = time.perf_counter()
        for key, acc in train_and_test(runner, cfg, rep.train_x, rep.train_y, real_counts, cfg.treatments, seed,
                                       data, k).items():
            results.setdefault(("real", "none", key), []).append(acc)
        ceiling = train_and_test(runner, cfg, rep.ceiling_x, rep.ceiling_y, torch.full((k,), cfg.head), ("ce",),
                                 seed, data, k)
        results.setdefault((CEILING, "none", "ce"), []).append(ceiling["ce"])
        timing["classifiers_s"] += time.perf_counter() - t0
        timing["classifiers"] += len(cfg.treatments) - ("la" in cfg.treatments) + 1
        if index == 0:
            sec["tables"].append(plateau_table(runner, cfg, rep, real_counts, seed, data, k, groups))
        for arm, condition in arms:
            t0 = time.perf_counter()
            added = added_images(runner, cfg, rep, arm, condition, fill, runner.workdir("longtail"))
            timing["synthesis_s"] += time.perf_counter() - t0
            timing["images"] += sum(len(v) for v in added.values()) if parse_arm(arm)[0] not in CONTROL_ARMS else 0
            for dose in cfg.doses:
                take = dose_counts(cfg, dose, counts_of, groups)
                add_x, add_y = labelled({c: added[c][:n] for c, n in take.items()})
                xs, ys = torch.cat([rep.train_x, add_x]), torch.cat([rep.train_y, add_y])
                treatments = dose_treatments(cfg, dose)
                t0 = time.perf_counter()
                for key, acc in train_and_test(runner, cfg, xs, ys, real_counts, treatments, seed, data, k).items():
                    results.setdefault((arm_label(arm, condition), dose, key), []).append(acc)
                timing["classifiers_s"] += time.perf_counter() - t0
                timing["classifiers"] += len(treatments) - ("la" in treatments)
            runner.log(f"longtail: replicate {index + 1}/{cfg.replicates}: {arm_label(arm, condition)} done "
                       f"({time.perf_counter() - t_start:.0f} s so far)")
    sec["tables"].append(main_table(cfg, results, groups))
    sec["tables"].append(paired_table(cfg, results, groups, arms))
    primary = primary_comparison(cfg, results, groups)
    if primary is not None:
        sec["tables"].append(primary)
    sec["timing"] = {**timing, "wall_s": time.perf_counter() - t_start}
    sec["notes"].append(f"Time: {timing['synthesis_s']:.0f} s making {timing['images']} synthetic images, "
                        f"{timing['classifiers_s']:.0f} s training {timing['classifiers']} classifiers.")
    sec["items"] = {" / ".join(key): [{"key": [r], **group_accuracy(a, groups)} for r, a in enumerate(accs)]
                    for key, accs in results.items()}
    return sec


def description(runner: Runner, cfg: LongtailSettings, counts_of: dict, groups: dict, data) -> str:
    return (f"Per replicate ({cfg.replicates}), a long-tailed training set drawn from the model's real images "
            f"(head {cfg.head}, imbalance {cfg.imbalance:g}, {cfg.order} class order: {sum(counts_of.values())} "
            f"images), k = {cfg.shots} references per class from it, and its own synthesis and classifier seeds. "
            f"Doses: tail = +{cfg.tail_dose} images per medium / few-shot class, fill = every class up to "
            f"{cfg.head}. Treatments: " + ", ".join(f"{t} = {TREATMENT_TITLES[t]}" for t in cfg.treatments) +
            f" (the prior of la and bs from the real counts). Classifier: the small CNN (width {cfg.width}), "
            f"{cfg.classifier_steps} AdamW steps of {cfg.batch_size} images for every data set; tested on "
            f"{data.test_x.shape[0]} balanced test images. Synthesis: {cfg.steps or runner.steps} DDIM steps. Groups: "
            f"many {groups['many']}, medium {groups['medium']}, few {groups['few']}. Cells: mean over replicates, "
            f"95% t interval.")


def plateau_table(runner: Runner, cfg: LongtailSettings, rep: Replicate, real_counts, seed: int, data, k: int,
                  groups: dict) -> dict:
    """Accuracy of the real-data classifiers (CE and class-balanced) against optimiser steps: the recipe trains at
    the plateau when the last two columns agree."""
    rows = []
    for steps in cfg.plateau_steps:
        accs = train_and_test(runner, cfg, rep.train_x, rep.train_y, real_counts, ("ce", "cb"), seed, data, k, steps)
        accs["ceiling"] = train_and_test(runner, cfg, rep.ceiling_x, rep.ceiling_y, torch.full((k,), cfg.head),
                                         ("ce",), seed, data, k, steps)["ce"]
        for name, acc in accs.items():
            g = group_accuracy(acc, groups)
            rows.append(row({"data": "balanced real" if name == "ceiling" else "real", "treatment":
                             "ce" if name == "ceiling" else name, "steps": steps},
                            {m: {"mean": g[m], "lo": g[m], "hi": g[m], "n": 1} for m in LT_METRICS}))
    runner.log("longtail: plateau check done")
    return {"name": "longtail-plateau", "title": "Plateau check (replicate 0): accuracy against classifier steps",
            "metrics": LT_METRICS, "rows": rows}


def _groups_over_replicates(accs: list[np.ndarray], groups: dict, metric: str) -> np.ndarray:
    return np.array([group_accuracy(a, groups)[metric] for a in accs])


def main_table(cfg: LongtailSettings, results: dict, groups: dict) -> dict:
    rows = []
    for (data_arm, dose, treatment), accs in results.items():
        rows.append(row({"data": data_arm, "dose": dose, "treatment": treatment},
                        {m: t_interval(_groups_over_replicates(accs, groups, m)) for m in LT_METRICS},
                        n_items=len(accs)))
    return {"name": "longtail", "title": "Classifier accuracy on the balanced test set (mean over replicates)",
            "metrics": LT_METRICS, "rows": rows}


def paired(results: dict, a: tuple, b: tuple, groups: dict, metric: str) -> dict:
    """The mean over replicates of a - b with its t interval (the replicates both have)."""
    n = min(len(results[a]), len(results[b]))
    diff = _groups_over_replicates(results[a][:n], groups, metric) - _groups_over_replicates(results[b][:n], groups, metric)
    return t_interval(diff)


def paired_verdict(st: dict, a: str, b: str) -> str:
    """The shared verdict (accuracy: higher is better), from 3 replicates on: a t interval needs no more."""
    return verdict(st, a, b, "higher", st["n"], min_items=MIN_REPLICATES)


def paired_table(cfg: LongtailSettings, results: dict, groups: dict, arms: list) -> dict:
    """Per added-data arm, dose and treatment: against the real data with the same treatment (does it add?), and
    each synthetic arm against the count-matched oversampling control."""
    rows = []
    oversample = next((arm_label(a, c) for a, c in arms if parse_arm(a)[0] == "oversample"), None)
    for arm, condition in arms:
        label = arm_label(arm, condition)
        for dose in cfg.doses:
            for treatment in dose_treatments(cfg, dose):
                a = (label, dose, treatment)
                baselines = [("real", "none", treatment)]
                if oversample is not None and label != oversample and parse_arm(arm)[0] != "oracle":
                    baselines.append((oversample, dose, treatment))
                for b in baselines:
                    for g in ("all", "few"):
                        st = paired(results, a, b, groups, f"lt_{g}")
                        name_a, name_b = f"{label} {dose} {treatment}", f"{b[0]} {b[1]} {b[2]}".replace(" none", "")
                        rows.append(row({"experiment": "longtail", "comparison": f"{name_a} − {name_b}",
                                         "metric": f"lt_{g}"}, {"diff": st},
                                        verdict=paired_verdict(st, name_a, name_b), n_items=st["n"]))
    return {"name": "longtail-paired", "title": "Paired differences over replicates (a − b; secondary comparisons)",
            "kind": "paired", "metrics": ["diff"], "rows": rows}


def primary_comparison(cfg: LongtailSettings, results: dict, groups: dict) -> dict | None:
    """The best synthetic arm with rebalancing against the best rebalancing of the real data alone."""
    rebalancing = [t for t in cfg.treatments if t in REBALANCING]
    synthetic = [key for key in results if key[2] in rebalancing and key[0] not in ("real", CEILING)
                 and not key[0].startswith(CONTROL_ARMS)]
    real = [("real", "none", t) for t in rebalancing]
    if not synthetic or not real:
        return None

    def overall(key):
        return float(np.mean(_groups_over_replicates(results[key], groups, "lt_all")))

    a, b = max(synthetic, key=overall), max(real, key=overall)
    name_a, name_b = f"{a[0]} {a[1]} {a[2]}", f"real {b[2]}"
    rows = []
    for g in ("all", "few"):
        st = paired(results, a, b, groups, f"lt_{g}")
        rows.append(row({"experiment": "longtail", "comparison": f"{name_a} − {name_b}", "metric": f"lt_{g}"},
                        {"diff": st}, verdict=paired_verdict(st, name_a, name_b), n_items=st["n"]))
    return {"name": "longtail-primary", "title": "Primary comparison: the best synthetic arm with rebalancing − the "
            "best rebalancing alone (best by mean overall accuracy)", "kind": "paired", "metrics": ["diff"],
            "rows": rows}
