"""The skeleton every experiment of `seedspace evaluate` follows: collect seeds per key -> generate once -> score
-> tabulate. Each experiment is two functions, ``measure_X(runner) -> measurements`` (the first three steps) and
``tabulate_X(runner, measurements) -> section``, so a run's stored measurements (:mod:`.measurements`) give its
tables again without generating (the long-tail benchmark stores its finished replicates instead).

An experiment returns a section: ``{"title", "description", "tables": [...], "notes": [...], "items": {arm: [per-item
dicts]}}`` plus private keys (``_examples`` for the example grid, ``_feats`` for paired FID-style / KID tests) that
are not written to JSON. A table is ``{"name", "title", "metrics": [...], "rows": [{"label": {...}, "metrics": {m:
stat}}]}`` with ``stat = {"mean", "lo", "hi", "n"}``.
"""

from __future__ import annotations

import time
from typing import Hashable, Sequence

import numpy as np
import torch

from .runner import Runner


def section(title: str, description: str) -> dict:
    """An empty section of the report."""
    return {"title": title, "description": description, "tables": [], "notes": [], "items": {}}


def row(label: dict, metrics: dict, **extra) -> dict:
    """One table row: its label columns, its metric stats and extra fields (n_items, n_images, ...)."""
    return {"label": label, "metrics": metrics, **extra}


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), seconds)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def class_name(runner: Runner, c: int) -> str:
    """'c name' for a class index."""
    names = getattr(runner.model, "class_names", None) or []
    return f"{c} {names[c]}" if c < len(names) else str(c)


class SeedPlan:
    """Seeds collected per key (an arm and an item), then generated in one batched call and scored once."""

    def __init__(self):
        self._seeds: list[torch.Tensor] = []
        self._classes: list[int] = []
        self.spans: dict[Hashable, slice] = {}

    def add(self, key: Hashable, seeds: torch.Tensor, classes: int | Sequence[int]) -> None:
        """Seeds (n, *seed_shape) for ``key``, all generated for one class or one class per seed."""
        if key in self.spans:
            raise ValueError(f"seeds for {key!r} were already added")
        n = seeds.shape[0]
        start = len(self._classes)
        self._seeds.append(seeds)
        self._classes += [int(classes)] * n if np.isscalar(classes) else [int(c) for c in classes]
        self.spans[key] = slice(start, start + n)

    def __len__(self) -> int:
        return len(self._classes)

    def generate(self, runner: Runner, **sampling) -> "Scored":
        """Generate every seed (cached ones are not generated again) and score the images with the judge;
        ``sampling``: ``steps``, ``scheduler``, ``guidance`` of :meth:`Runner.generate` (default: the run's)."""
        images = runner.generate(torch.cat(self._seeds), self._classes, **sampling)
        return Scored(images, runner.judge.score(images, self._classes), dict(self.spans), list(self._classes))


class Scored:
    """Generated images, their classes and judge scores (per image: correct, conf, fdist, feats), looked up by key."""

    def __init__(self, images: torch.Tensor, scores: dict, spans: dict, classes: list[int]):
        self.images, self.scores, self.spans, self.classes = images, scores, spans, classes

    def images_of(self, key) -> torch.Tensor:
        return self.images[self.spans[key]]

    def feats(self, key) -> np.ndarray:
        return self.scores["feats"][self.spans[key]]

    def means(self, key, prefix: str = "") -> dict:
        """{prefix + acc, conf, fdist}: the judge scores of the key's images, averaged."""
        sl = self.spans[key]
        return {prefix + m: float(self.scores[s][sl].mean()) for m, s in
                (("acc", "correct"), ("conf", "conf"), ("fdist", "fdist"))}


def arm_metrics(runner: Runner, items: list[dict], keys: Sequence[str], feat_groups: dict, classes, *names) -> dict:
    """The metrics of one table row: for each per-item key the mean over items with its CI; for each entry
    ``{"fid": groups}`` (or "p_fid") of ``feat_groups`` the FID-style score and KID ("kid" / "p_kid") of the groups."""
    out = {k: runner.stat([it[k] for it in items], *names, k) for k in keys}
    for fid_key, groups in feat_groups.items():
        st = runner.feature_stats(groups, classes, *names, fid_key)
        out.update({fid_key.replace("fid", key): v for key, v in st.items()})
    return out
