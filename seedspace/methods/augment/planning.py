"""The work plan: every image's recipe (hence seed) and provenance, fixed up front from the classes, the number of
references and the settings, and cut into shards (class x chunk of ``shard_size`` images)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from . import strategies
from .settings import AugmentSettings


@dataclass(frozen=True)
class Shard:
    """Images ``start..stop-1`` of the class at ``class_position``: the unit of work, writing and resuming."""

    class_position: int
    chunk: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class ClassPlan:
    """One class of the plan: where its images go, the condition they are generated with, its recipe arrays."""

    position: int
    name: str
    folder: str
    condition: object
    references: int
    recipe: dict


@dataclass
class Plan:
    settings: AugmentSettings
    classes: list[ClassPlan]
    shards: list[Shard]

    @property
    def total_images(self) -> int:
        return len(self.classes) * self.settings.per_class

    def work(self, shard: Shard) -> "ShardWork":
        """What a worker needs for ``shard``: the settings, its class with the shard's slice of the recipe."""
        c = self.classes[shard.class_position]
        return ShardWork(self.settings, dataclasses.replace(c, recipe=strategies.recipe_slice(c.recipe, shard.start,
                                                                                             shard.stop)), shard)


@dataclass(frozen=True)
class ShardWork:
    """One shard's task (small: sent to a worker as is). ``cls.recipe`` holds images ``shard.start..stop-1``."""

    settings: AugmentSettings
    cls: ClassPlan
    shard: Shard


def make_plan(classes: Sequence, settings: AugmentSettings, inversions: Mapping[str, torch.Tensor] | None = None) -> Plan:
    """The plan for ``classes`` (objects with ``name``, ``folder``, ``condition`` and ``images`` (k, ...)).

    Each class draws from its own stream, ``SeedSequence(seed, spawn_key=(class position, strategy))``, so a
    class's seeds do not depend on the other classes; ValueError when a strategy cannot give ``per_class``
    distinct seeds from a class's references. The clusters strategy plans from the classes' DDIM inversions
    (``inversions``: {folder: (k, *seed_shape)}); its clusterings draw from ``spawn_key=(class position, 3)``.
    """
    if settings.strategy in strategies.PLANNED_FROM_INVERSIONS and inversions is None:
        raise ValueError(f"the {settings.strategy} strategy plans from the references' inversions: pass them")
    n, size = settings.per_class, settings.shard_size
    plans, shards = [], []
    for position, c in enumerate(classes):
        k = len(c.images)
        rng = strategies.class_rng(settings.seed, position, settings.strategy)
        extra = {"start": settings.seedselect_start} if settings.strategy == "seedselect" else {}
        if settings.strategy in strategies.PLANNED_FROM_INVERSIONS:
            extra |= {"inversions": inversions.get(c.folder), "clusters": settings.clusters, "prior": settings.prior,
                      "cluster_seed": strategies.cluster_seed(settings.seed, position)}
        try:
            recipe = strategies.plan_recipe(settings.strategy, n, k, rng, **extra)
        except ValueError as exc:
            raise ValueError(f"class {c.name!r}: {exc}") from None
        plans.append(ClassPlan(position, c.name, c.folder, c.condition, k, recipe))
        shards.extend(Shard(position, chunk, start, min(n, start + size))
                      for chunk, start in enumerate(range(0, n, size)))
    plan = Plan(settings, plans, shards)
    check_distinct(plan)
    return plan


def check_distinct(plan: Plan) -> None:
    """No two images of the plan share a seed recipe (RuntimeError otherwise: a bug, never a user error).

    Within a class the recipes are distinct by construction; random seed integers are also checked across
    classes, since unconditional generation would render a repeated integer twice."""
    for c in plan.classes:
        keys = _recipe_keys(c.recipe)
        if len(strategies.first_of_equal_rows(keys)) != len(keys):
            raise RuntimeError(f"class {c.name!r}: the plan repeats a seed")
    if plan.settings.strategy == "random" and plan.classes:
        ints = np.concatenate([c.recipe["int"] for c in plan.classes])
        if len(np.unique(ints)) != len(ints):
            raise RuntimeError("the plan repeats a seed integer across classes")


def _recipe_keys(recipe: dict) -> np.ndarray:
    columns = [v.reshape(len(v), -1).astype(np.int64) for v in recipe.values() if isinstance(v, np.ndarray)]
    return np.concatenate(columns, axis=1)
