"""Running one shard: its seeds from the plan's recipes and the stored inversions, SeedSelect refinement for the
``seedselect`` strategy, generation in fixed batches of ``batch_size``, and writing. The same code runs in-process
and inside Ray actors, so the bytes do not depend on the executor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import outputs
from ...backends.sampling import scheduler_label
from ...hardware import torch_threads
from ..seedselect import SeedSelectSettings, seedselect
from . import strategies, writing
from .planning import ShardWork
from .references import REFERENCES_FILE, load_references


def check_refinable(model) -> None:
    """ValueError (before anything is written) when SeedSelect cannot run on ``model`` (no feature extractor)."""
    if not model.has_features:
        raise ValueError(f"{model.name} has no feature extractor, which the seedselect strategy needs for its loss")


def refine(model, seeds, references, condition, settings):
    """``seedselect_steps`` SeedSelect steps from ``seeds`` toward the class's references: the refined seeds."""
    refinement = SeedSelectSettings(init=seeds, steps=settings.seedselect_steps, sampler_steps=settings.steps,
                                    guidance=settings.guidance, num_seeds=seeds.shape[0])
    result = seedselect(model, references, condition, settings=refinement)
    return result.seed


def check_pictures(images, class_name: str, first_index: int, settings) -> list[str | None]:
    """Why each generated image carries no picture (:func:`~seedspace.outputs.degenerate`; None where it does);
    ValueError (before the shard is written) naming the first that may not be written: any such image, or with
    ``keep_blank`` one that is not finite."""
    reasons = [outputs.degenerate(image) for image in images]
    for i, reason in enumerate(reasons):
        if reason is None or (settings.keep_blank and reason != outputs.NOT_FINITE):
            continue
        blank = "" if reason == outputs.NOT_FINITE else ", or keep blank images as data (keep_blank, --keep-blank)"
        raise ValueError(f"class {class_name!r}: image {first_index + i} came out {reason}: its seed lies where the "
                         f"model draws nothing ({settings.strategy} / {settings.method}); the shard is not written "
                         f"(finished shards are kept). Raise inversion_steps or steps, or choose another method or "
                         f"strategy{blank}")
    return reasons


class ShardRunner:
    """Generates and writes shards into ``out`` with one loaded model (the references file must be written)."""

    def __init__(self, model, out: str | Path, model_id: str):
        self.model, self.out, self.model_id = model, Path(out), model_id
        self.references, self.inversions = load_references(self.out / REFERENCES_FILE)
        self._centres = {}  # per class: the paths' start, the same for every shard (a NAO centroid costs ~25 ms)

    def run(self, work: ShardWork) -> int:
        """Generate and write a shard (overwriting any half-written attempt) with the settings' thread count;
        returns its number of images."""
        with torch_threads(work.settings.threads):
            return self._run(work)

    def _run(self, work: ShardWork) -> int:
        s, c, n = work.settings, work.cls, work.shard.size
        if hasattr(self.model, "batch_size"):  # generate() must not split the fixed batches further
            self.model.batch_size = max(int(self.model.batch_size), s.batch_size)
        inversions = self.inversions.get(c.folder)
        if strategies.starts_at_centre(c.recipe) and c.folder not in self._centres:
            self._centres[c.folder] = strategies.paths_centre(inversions, s.centroid_method, s.prior)
        seeds = strategies.seeds_from_recipe(s.strategy, c.recipe, inversions, self.model.seed_shape,
                                             s.centroid_method, s.interpolation_method, s.prior,
                                             self._centres.get(c.folder))
        images, reasons = [], []
        for start in range(0, n, s.batch_size):
            batch = seeds[start:start + s.batch_size]
            if s.strategy == "seedselect":
                batch = refine(self.model, batch, self.references[c.folder], c.condition, s)
            generated = self.model.generate(batch, c.condition, s.steps, s.guidance)
            reasons += check_pictures(generated, c.name, work.shard.start + start, s)
            images.append(outputs.to_uint8(generated))
        entries = [writing.manifest_entry(s, c, work.shard.start + i,
                                          strategies.provenance(s.strategy, c.recipe, i, s.centroid_method,
                                                                s.interpolation_method, s.seedselect_steps),
                                          self.model_id, scheduler_label(getattr(self.model, "default_scheduler", None)))
                   for i in range(n)]
        for entry, reason in zip(entries, reasons):
            if reason is not None:  # kept (keep_blank): marked as what it is
                entry["blank"] = reason
        writing.write_shard(self.out, work, np.concatenate(images), entries)
        return n
