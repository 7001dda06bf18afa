"""The settings of the long-tail benchmark (experiment 6): the data profile, the grid of data x treatment x dose,
the replicates and the classifier recipe. One frozen dataclass, checked up front, recorded in results.json.

Cost (2 CPU cores, the embedded testbed, synthesis in bf16 where the CPU has it natively): the synthesis makes
sum_c (head - n_c) images per synthetic arm and replicate (659 at head 100, imbalance 20), at 20 guided DDIM steps
about 10 images/s (bf16, AVX-512 BF16) or 3.7 images/s (float32); each classifier costs ``classifier_steps`` x
``batch_size`` augmented images (``width`` 16: about 1,250 images/s). The report states the measured times.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..checks import MAX_BATCH_SIZE, Integer, Items, Number, OneOf, Rule, Text, setting
from ..methods.augment.settings import INVERSIONS, METHODS, STRATEGIES
from ..settings import DTYPE, STEPS_OR_DEFAULT, Settings

ORDERS = ("model", "permuted")  # the model's own long-tail order of classes, or a seeded permutation of it
DOSES = ("tail", "fill")  # +tail_dose per medium / few-shot class; every class filled up to the head count
TREATMENTS = ("ce", "la", "cb", "bs")  # cross-entropy, + post-hoc logit adjustment, class-balanced resampling, balanced softmax
TREATMENT_TITLES = {"ce": "cross-entropy", "la": "CE + post-hoc logit adj.", "cb": "class-balanced resampling",
                    "bs": "balanced softmax"}
REBALANCING = ("la", "cb", "bs")
# the references repeated (no generation); held-out real images; real images the generator was trained on
CONTROL_ARMS = ("oversample", "oracle", "generator-train")
RANDOM_START = "random"  # 'seedselect:random': SeedSelect from random seeds (no geometry, no prior)
CONDITIONS = ("class", "unconditional")
# upper bounds, so that a typo cannot ask for a run of years or an allocation the machine does not have
LONGTAIL_LIMITS = {"head": 100_000, "shots": 10_000, "tail_dose": 100_000, "replicates": 1000,
                   "test_per_class": 100_000, "classifier_steps": 1_000_000, "batch_size": MAX_BATCH_SIZE,
                   "width": 1024}
PRIOR_TAGS = ("model", "chi")  # 'paths:nao@chi': NAO under chi(d); '@model' (the default): the model's own prior
GROUPS = ("all", "many", "medium", "few")  # all: balanced accuracy (the mean of the per-class accuracies)
REAL = "real"  # a contrast's name for the long-tailed real data alone


def split_condition(arm: str) -> tuple[str, str | None]:
    """'paths:slerp/unconditional' -> ('paths:slerp', 'unconditional'); 'paths:nao' -> ('paths:nao', None)."""
    if not isinstance(arm, str):
        raise ValueError(f"an arm is a text such as 'paths:nao@model/class', got {arm!r}")
    body, slash, condition = arm.partition("/")
    if slash and condition not in CONDITIONS:
        raise ValueError(f"arm {arm!r}: unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}")
    return body, condition or None


class Arm(NamedTuple):
    """An arm's parts (:func:`parse_arm`): the strategy, its geometry (None for controls and ``random``) and the
    prior tag."""

    strategy: str
    method: str | None
    prior: str


def parse_arm(arm: str) -> Arm:
    """'paths:nao@chi' -> ('paths', 'nao', 'chi'); 'random' -> ('random', None, 'model'); 'oversample' ->
    ('oversample', None, 'model'); 'seedselect:random' -> ('seedselect', 'random', 'model') (SeedSelect from
    random starts); a '/condition' suffix is ignored here. ValueError for an unknown strategy, geometry, prior tag
    or condition, a centroid-only geometry for paths or seedselect, a prior on seedselect:random, and for a
    separator with nothing after it ('paths:', 'paths:nao@')."""
    body, at, prior = split_condition(arm)[0].partition("@")
    strategy, colon, method = body.partition(":")
    if (colon and not method) or (at and not prior):
        raise ValueError(f"arm {arm!r}: nothing after {'@' if at and not prior else ':'}; leave the separator out "
                         "for the default")
    prior = prior or "model"
    if strategy in CONTROL_ARMS + ("random",):
        if method or prior != "model":
            raise ValueError(f"arm {arm!r}: {strategy} takes no geometry or prior")
        return Arm(strategy, None, prior)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown arm {arm!r}: a strategy of augment ({', '.join(STRATEGIES)}), optionally "
                         f":geometry and @prior, or one of {', '.join(CONTROL_ARMS)}")
    method = method or "nao"
    if strategy == "seedselect" and method == RANDOM_START:
        if at:
            raise ValueError(f"arm {arm!r}: SeedSelect from random starts takes no prior")
        return Arm(strategy, method, prior)
    if method not in METHODS:
        raise ValueError(f"arm {arm!r}: unknown geometry {method!r}; choose one of {', '.join(METHODS)}")
    if strategy in ("paths", "seedselect") and METHODS[method][1] is None:
        raise ValueError(f"arm {arm!r}: {method} is a centroid only; {strategy} interpolates (choose one of "
                         f"{', '.join(m for m, (_, i) in METHODS.items() if i)})")
    if prior not in PRIOR_TAGS:
        raise ValueError(f"arm {arm!r}: unknown prior {prior!r}; choose one of {', '.join(PRIOR_TAGS)}")
    return Arm(strategy, method, prior)


def augment_options(arm: str) -> dict:
    """What ``augment`` runs for a synthetic arm: strategy and method, and for ``seedselect`` where its seeds
    start: ``seedselect:<geometry>`` from the geometry's centroid of the references' inversions and its
    neighbourhood (with nao: the NAO paper's pipeline, SeedSelect from the NAO centroid), ``seedselect:random``
    from random seeds."""
    strategy, method, _ = parse_arm(arm)
    if strategy in CONTROL_ARMS:
        raise ValueError(f"arm {arm!r} generates nothing")
    if strategy != "seedselect":
        return {"strategy": strategy, "method": method or "nao"}
    if method == RANDOM_START:
        return {"strategy": strategy, "method": "nao", "seedselect_start": "random"}
    return {"strategy": strategy, "method": method, "seedselect_start": "centroid"}


def canonical_arm(arm: str) -> str:
    """The one spelling of an arm: 'paths' and 'paths:nao@model' are both 'paths:nao@model'."""
    strategy, method, prior = parse_arm(arm)
    condition = split_condition(arm)[1]
    text = strategy if method is None else f"{strategy}:{method}" if method == RANDOM_START \
        else f"{strategy}:{method}@{prior}"
    return text if condition is None else f"{text}/{condition}"


def data_arms(arms, conditions) -> list[tuple[str, str | None]]:
    """(arm, condition) pairs the benchmark runs: controls and ``random`` once (``random`` with the label),
    reference-based arms per condition (their own, or each of ``conditions``)."""
    out = []
    for spec in arms:
        arm, condition = split_condition(spec)
        strategy = parse_arm(arm).strategy
        if strategy in CONTROL_ARMS:
            out.append((arm, None))
        elif strategy == "random":
            out.append((arm, "class"))
        else:
            out += [(arm, c) for c in ([condition] if condition else conditions)]
    return list(dict.fromkeys(out))


def arm_label(arm: str, condition: str | None) -> str:
    return arm if condition is None else f"{arm} ({condition})"


@dataclass(frozen=True)
class Contrast:
    """A declared contrast: data ``a`` with treatment ``ta`` minus data ``b`` with ``tb``, on the classes of
    ``group`` (``all``: balanced accuracy), on ``dose``. ``a`` / ``b``: an arm's label (``paths:nao (class)``) or
    ``real``; ``text``: as declared."""

    text: str
    a: str
    ta: str
    b: str
    tb: str
    group: str
    dose: str

    def key(self, side: str) -> tuple[str, str, str]:
        """The results key of side 'a' or 'b': (data, dose, treatment); the real data have no dose."""
        data, treatment = (self.a, self.ta) if side == "a" else (self.b, self.tb)
        return (data, "none" if data == REAL else self.dose, treatment)

    def title(self) -> str:
        return f"{self.a} {self.ta} − {self.b} {self.tb} @ {self.group}, {self.dose}"


def parse_contrast(text: str, arms: list, treatments, doses) -> Contrast:
    """One declared contrast in the grammar ``A - B @ group, treatment[, dose]``: A and B are arms as
    ``--lt-arms`` spells them (``paths:nao/class``, ``oversample``, ``random``) or ``real``, each optionally
    ``+treatment`` (its own treatment instead of the shared one: ``random - real+bs @ few, ce``); group one of
    all (balanced accuracy), many, medium, few; dose default fill (else the only dose). An arm without a
    /condition names the one condition it runs with. ValueError naming the contrast for anything else, an arm
    that is not run among them."""
    if not isinstance(text, str):
        raise ValueError(f"a contrast is a text such as 'paths:nao/class - oversample @ few, ce', got {text!r}")
    parts = re.split(r"\s+@\s+", text.strip())
    sides = re.split(r"\s+-\s+", parts[0]) if len(parts) == 2 else []
    where = [w.strip() for w in parts[1].split(",")] if len(parts) == 2 else []
    if len(sides) != 2 or not 2 <= len(where) <= 3:
        raise ValueError(f"longtail contrast {text!r}: write 'A - B @ group, treatment[, dose]' (spaces around - and @), "
                         "e.g. 'paths:nao/class - oversample @ few, ce'")
    group, treatment, dose = where[0], where[1], where[2] if len(where) == 3 else ("fill" if "fill" in doses else doses[0])
    if group not in GROUPS:
        raise ValueError(f"longtail contrast {text!r}: unknown group {group!r}; choose one of {', '.join(GROUPS)}")
    if dose not in doses:
        raise ValueError(f"longtail contrast {text!r}: dose {dose!r} is not run (doses: {', '.join(doses)})")
    resolved = []
    for side in sides:
        body, plus, own = side.strip().partition("+")
        t = own.strip() if plus else treatment
        if t not in treatments or (dose == "fill" and t == "cb" and body.strip() != REAL):
            raise ValueError(f"longtail contrast {text!r}: treatment {t!r} is not run on the {dose} dose (treatments: "
                             f"{', '.join(x for x in treatments if not (dose == 'fill' and x == 'cb'))})")
        resolved += [_resolve_arm(body.strip(), arms, text), t]
    if resolved[:2] == resolved[2:]:
        raise ValueError(f"longtail contrast {text!r} compares a cell with itself")
    return Contrast(text, resolved[0], resolved[1], resolved[2], resolved[3], group, dose)


def _resolve_arm(side: str, arms: list, text: str) -> str:
    """The label of the run arm that ``side`` names (its one spelling, :func:`canonical_arm`)."""
    if side == REAL:
        return REAL
    try:
        wanted = canonical_arm(side)
    except ValueError as exc:
        raise ValueError(f"longtail contrast {text!r}: {exc}") from None
    has_condition = split_condition(side)[1] is not None
    matches = [arm_label(a, c) for a, c in arms
               if (canonical_arm(a if c is None else f"{a}/{c}") == wanted) or
               (not has_condition and c is not None and canonical_arm(a) == wanted)]
    if len(matches) > 1:
        raise ValueError(f"longtail contrast {text!r}: {side!r} runs with several conditions; name one ({side}/class)")
    if not matches:
        run = ", ".join([REAL] + [arm_label(a, c) for a, c in arms])
        raise ValueError(f"longtail contrast {text!r} names {side!r}, which is not run (run: {run})")
    return matches[0]


def _checked_arm(arm, name):
    canonical_arm(arm)  # parses, or ValueError naming the arm
    return arm


@dataclass(frozen=True)
class LongtailSettings(Settings):
    """What the long-tail benchmark runs.

    - ``head``, ``imbalance``: the training set of every replicate is drawn from the model's real images with
      n_c = round(head * imbalance^(-rank_c / (C - 1))) images of the class of rank c (CIFAR-LT's exponential
      profile); ``order``: ranks by the model's own long-tail order, or by a seeded permutation so that "rare" is
      not "easy".
    - ``shots``: k real references per class for the synthesis, drawn from that class's training images.
    - ``arms``: data arms added to the real training set: ``oversample`` (the k references repeated to the dose:
      the count-matched control), ``oracle`` (held-out real images), ``generator-train`` (as many real images the
      generator was trained on: what its own exposure is worth; not run where a filled class has none, exposure
      0), and synthetic arms ``strategy[:geometry][@prior]`` of ``augment`` (``random`` is plain sampling with the
      label; ``@chi`` = the paper's prior, the default ``@model`` = the model's calibrated prior;
      ``seedselect:nao`` is SeedSelect started from the NAO centroid of the references' inversions and its
      neighbourhood, the NAO paper's pipeline, ``seedselect:random`` SeedSelect from random seeds), each crossed
      with ``conditions`` (class and / or unconditional) unless it names its own (``paths:slerp/unconditional``);
      ``random`` runs with the label only (without it, it is label noise).
    - ``doses``: ``tail`` adds ``tail_dose`` images to each medium and few-shot class, ``fill`` fills every class
      up to ``head``.
    - ``treatments``: ``ce``, ``la`` (the CE model with post-hoc logit adjustment, strength tau = 1, untuned: no
      training), ``cb`` (class-balanced resampling), ``bs`` (balanced softmax); the prior of ``la`` and ``bs`` is
      the class counts of the set the classifier is trained on (on a filled, balanced set both equal ``ce``: the
      imbalance is not corrected twice).
    - ``contrasts``: the declared contrasts (:func:`parse_contrast`), Holm-adjusted together; empty: every
      synthetic arm minus ``oversample`` (else minus ``real``) on the few-shot classes with ``ce``.
    - ``replicates``: each with its own training draw, references, synthesis seed and classifier seed.
    - the classifier: ``classifier_steps`` optimiser steps of ``batch_size`` (the same for every data size), ``width``;
      ``plateau_steps``: the steps of the plateau check (replicate 0, every data arm).
    - ``steps``, ``dtype``: the synthesis's DDIM steps and weights dtype ('auto': bf16 where native).
    - ``inversion``: how the references are inverted (augment's ``inversion``): ``fixed-point``, the seeds the
      synthesis's own sampler (its steps and guidance, the arm's condition) maps back onto the references, so a
      path's endpoints decode to them; ``ddim``, the model's plain DDIM inversion at the run's inversion steps.
    - ``seedselect_steps``: SeedSelect steps of the seedselect arms (a few: the NAO paper's pipeline).
    """

    field_prefix = "longtail "
    head: int = setting(100, Integer(1, LONGTAIL_LIMITS["head"]))
    imbalance: float = setting(20.0, Number(1.0))
    order: str = setting("model", OneOf(ORDERS))
    shots: int = setting(5, Integer(1, LONGTAIL_LIMITS["shots"]))
    tail_dose: int = setting(50, Integer(1, LONGTAIL_LIMITS["tail_dose"]))
    arms: tuple = setting(("oversample", "random", "paths:nao", "paths:nao@chi/unconditional",
                           "paths:slerp/unconditional", "oracle"), Items(Rule(_checked_arm), repeats=False, key=canonical_arm))
    conditions: tuple = setting(CONDITIONS, Items(OneOf(CONDITIONS), repeats=False))
    # the default run fits 90 min on 2 cores; --lt-doses tail,fill adds the tail dose
    doses: tuple = setting(("fill",), Items(OneOf(DOSES), repeats=False))
    treatments: tuple = setting(TREATMENTS, Items(OneOf(TREATMENTS), repeats=False))
    replicates: int = setting(5, Integer(1, LONGTAIL_LIMITS["replicates"]))
    test_per_class: int = setting(300, Integer(1, LONGTAIL_LIMITS["test_per_class"]))
    classifier_steps: int = setting(400, Integer(1, LONGTAIL_LIMITS["classifier_steps"]))
    batch_size: int = setting(128, Integer(1, LONGTAIL_LIMITS["batch_size"]))
    width: int = setting(16, Integer(1, LONGTAIL_LIMITS["width"]))
    plateau_steps: tuple = setting((100, 200, 400, 800), Items(Integer(1, LONGTAIL_LIMITS["classifier_steps"]),
                                                               repeats=False))
    steps: int | None = setting(20, STEPS_OR_DEFAULT)
    dtype: str = setting("auto", DTYPE)
    contrasts: tuple = setting((), Items(Text(), min_len=0, repeats=False,
                                         key=lambda c: " ".join(c.split())))
    inversion: str = setting("fixed-point", OneOf(INVERSIONS))
    seedselect_steps: int = setting(3, Integer(1, 1000))

    def check_together(self):
        if "la" in self.treatments and "ce" not in self.treatments:
            raise ValueError("longtail treatment la adjusts the ce models: add ce")
        self.declared_contrasts()  # each one parses and names arms that run
        if "tail" in self.doses and self.tail_dose > self.head:
            raise ValueError(f"longtail tail_dose ({self.tail_dose}) is more than the head count ({self.head})")

    @classmethod
    def quick(cls, **overrides) -> "LongtailSettings":
        """Seconds on the tiny test model: 2 replicates, a small profile, two synthetic arms."""
        base = cls(head=12, imbalance=4.0, shots=2, tail_dose=4, arms=("oversample", "random", "paths:nao", "oracle"),
                   doses=DOSES, conditions=("class",), replicates=2, test_per_class=18, classifier_steps=6, batch_size=16,
                   width=4, plateau_steps=(3, 12), steps=2)
        return dataclasses.replace(base, **overrides)

    def run_arms(self) -> list[tuple[str, str | None]]:
        return data_arms(self.arms, self.conditions)

    def declared_contrasts(self) -> list[Contrast]:
        """The contrasts as declared, or the default rule's (see the class docstring)."""
        arms = self.run_arms()
        texts = self.contrasts
        if not texts:
            control = next((split_condition(a)[0] for a in self.arms if parse_arm(a).strategy == "oversample"), REAL)
            t = next((t for t in self.treatments if t != "cb"), "cb")
            texts = tuple(f"{a if c is None else f'{a}/{c}'} - {control} @ few, {t}" for a, c in arms
                          if parse_arm(a).strategy not in CONTROL_ARMS)
        return [parse_contrast(t, arms, self.treatments, self.doses) for t in texts]

    def counts(self, num_classes: int) -> list[int]:
        """n_c by rank: head * imbalance^(-rank / (C - 1)), rounded, at least 1."""
        if num_classes == 1:
            return [self.head]
        return [max(1, round(self.head * self.imbalance ** (-r / (num_classes - 1)))) for r in range(num_classes)]


@dataclass(frozen=True)
class FewshotSettings(Settings):
    """What the few-shot curve (experiment 7) runs; the profile, the class order, the classifier recipe, the test
    set and the synthesis steps are the long-tail benchmark's (:class:`LongtailSettings`).

    - ``shots``: k, the real images each few-shot class keeps (its references); every arm fills the class up to
      the head count.
    - ``arms``: ``oversample`` (the k references repeated), ``oracle`` (held-out real images: with the k references
      every real image the class could have, the matched real row) and synthetic arms ``strategy[:geometry][@prior]``
      with the label; a ``real`` row (the k images alone) is always run.
    - ``replicates``: the long-tail benchmark's first draws (training set, seeds), so its rows pair with them.
    - ``manifold_k``: neighbours of precision / recall / density / coverage.
    """

    field_prefix = "fewshot "
    shots: tuple = setting((1, 2, 5, 10), Items(Integer(1, LONGTAIL_LIMITS["shots"]), repeats=False))
    arms: tuple = setting(("oversample", "random", "centroid:nao", "paths:nao", "oracle"),
                          Items(Rule(_checked_arm), repeats=False, key=canonical_arm))
    replicates: int = setting(3, Integer(1, LONGTAIL_LIMITS["replicates"]))
    manifold_k: int = setting(5, Integer(1, 1000))

    @classmethod
    def quick(cls, **overrides) -> "FewshotSettings":
        """Seconds on the tiny test model."""
        return dataclasses.replace(cls(shots=(1, 2), arms=("oversample", "random", "paths:nao", "oracle"),
                                       replicates=2, manifold_k=2), **overrides)
