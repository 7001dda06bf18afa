"""``augment``: validate everything, plan, invert the references once, run the shards, assemble the manifest."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch

from ...backends.loading import dtype_name, load_model, with_options
from ...checks import check_write_size
from ...hardware import torch_threads
from ...progress import command_bar
from ...runs.provenance import model_reference
from . import references as refs
from . import writing
from .executors import make_executor
from .inversion import check_fixed_point, invert_classes, round_trips
from .planning import make_plan
from .settings import AugmentSettings
from .shards import check_refinable


@dataclass
class AugmentResult:
    """What :func:`augment` wrote: the data set folder (ImageFolder layout), its manifest, and what this call did."""

    out: Path
    manifest: Path
    classes: list[str]
    images: int
    generated: int
    shards: int
    shards_run: int
    seconds: float
    settings: AugmentSettings

    def entries(self) -> list[dict]:
        """The manifest: one dict per image, in plan order (class, then index)."""
        return [json.loads(line) for line in self.manifest.read_text(encoding="utf-8").splitlines()]


def _load(model, device: str, settings: AugmentSettings):
    """(model, its reference or None) from a reference string / folder, or a loaded model as given, at the
    settings' image size and fit."""
    ref = None
    if isinstance(model, (str, Path)) or model is None:
        ref = model_reference(model)
        try:
            return load_model(ref, device=device, dtype=settings.dtype, **settings.model_options), ref
        except OSError as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"cannot load model {ref}: {first_line}") from None
    return with_options(model, **settings.model_options), ref


def augment(model, references: str | Path | Mapping[str, torch.Tensor], out: str | Path,
            settings: AugmentSettings | None = None, *, executor: str = "local", workers: int = 1,
            ray_address: str | None = None, device: str = "auto", resume: bool = False,
            ray_options: dict | None = None, allow_large: bool = False, **options) -> AugmentResult:
    """Generate ``per_class`` synthetic images per class from a few reference images per class; write a data set.

    Args:
        model: a model reference ('testbed', a testbed or diffusers folder, a cached hub id) or, with the local
            executor, a loaded model.
        references: a folder of class sub-folders of images, or ``{class name: images (k, C, H, W) in [0, 1]}``.
            With ``condition='class'`` the class names must be classes of the model (or prompts).
        out: the data set folder (must not exist, unless ``resume``): ``OUT/<class>/<class>_<index>.png``,
            ``manifest.jsonl`` (one line per image: class, strategy, method, prior, sampler, steps, guidance and
            the seed's provenance), ``run.json``, ``references.safetensors`` (references and their inversions).
        settings: an :class:`AugmentSettings` (default: its defaults).
        **options: fields of :class:`AugmentSettings` as keywords (``per_class=...``); they override ``settings``.
        executor: 'local' (in-process) or 'ray' (``workers`` actors; ``ray_address`` joins a running cluster,
            else a local one is started); ``ray_options``: ``cpus_per_worker`` (default: the run's ``threads``),
            ``retries``, ``runtime_env``. The executor never changes the default thread count, so it never changes
            the bytes.
        device: where the model runs ('auto': a GPU when there is one).
        resume: continue the run in ``out``: finished shards are kept; the settings, model and references must be
            the saved run's (ValueError naming the first difference).
        allow_large: run even when the data set would hold more than ``LARGE_JOB_BYTES`` of pixels (refused
            before anything is written without it).

    The bytes are fixed by the settings (the thread count and dtype included), the classes and the references:
    image i of a class is the same file whatever the shard size, shard order, executor or number of workers.
    Every seed is fixed by the plan (settings, classes, number of references; for clusters also the inversions),
    every batch by ``batch_size`` and every kernel's arithmetic by ``threads`` and ``dtype``. Seeds: random
    -> N(0, I) from distinct integers; centroid -> c(S_i) for distinct subsets S_i of the inversions; clusters ->
    c(S_i) for distinct subsets S_i within each of M NAO clusters of the inversions (``clusters=M``, the clusters
    taken round robin); paths -> gamma_ij(t) on the geodesics between the centroid and the inversions and between
    inversions, t on a Sobol grid.
    """
    t0 = time.perf_counter()
    if settings is None:
        settings = AugmentSettings(**options)
    elif options:
        settings = dataclasses.replace(settings, **options)
    out = Path(out).expanduser()
    resuming = writing.check_new_out(out, resume)
    saved = writing.read_saved_run(out) if resuming else None
    if saved is not None and settings.threads is None:  # a resumed run computes with the recorded thread count
        settings = dataclasses.replace(settings, threads=saved["parameters"]["settings"].get("threads"))
    loaded, ref = _load(model, device, settings)
    ran_in = getattr(loaded, "dtype", None) or settings.dtype  # a loaded model runs in its own dtype
    settings = dataclasses.replace(settings, dtype=dtype_name(ran_in, device))  # what runs, never 'auto'
    settings = settings.resolved(loaded)
    if executor == "ray":  # Ray reserves the CPUs the run computes with unless told otherwise
        ray_options = {**(ray_options or {})}
        cpus = ray_options["cpus_per_worker"] = ray_options.get("cpus_per_worker") or settings.threads
        if cpus < settings.threads:  # measured 5x slower (docs/performance.md)
            warnings.warn(f"each ray worker computes with the run's {settings.threads} threads on {cpus} reserved "
                          f"CPU(s), more threads than cores: set threads to {cpus} or reserve {settings.threads} "
                          "CPUs per worker", RuntimeWarning, stacklevel=2)
    runner = make_executor(executor, loaded, ref, workers, ray_address, device, **(ray_options or {}))
    with torch_threads(settings.threads):
        return _run(loaded, ref, references, out, settings, runner, saved, t0, allow_large)


def _run(loaded, ref, references, out: Path, settings: AugmentSettings, runner, saved: dict | None, t0: float,
         allow_large: bool) -> AugmentResult:
    resuming = saved is not None
    phases = {"model load": time.perf_counter() - t0}
    classes = refs.resolve_classes(loaded, references, settings)
    size = len(classes) * settings.per_class * math.prod(refs.image_shape(loaded))  # a byte per pixel value
    check_write_size(size, allow_large or resuming, f"{len(classes)} classes x {settings.per_class} images")
    if settings.strategy == "seedselect":
        check_refinable(loaded)
    if settings.inversion == "fixed-point":
        check_fixed_point(loaded)
    model_id = ref or getattr(loaded, "name", type(loaded).__name__)
    parameters = {"settings": settings.to_record(),
                  "model": {"id": model_id, "name": loaded.name, "seed_shape": list(loaded.seed_shape),
                            "default_steps": loaded.default_steps, "default_guidance": loaded.default_guidance},
                  "classes": [c.record() for c in classes]}
    if resuming:
        writing.check_resumable(saved, out, parameters)
    references_file = out / refs.REFERENCES_FILE
    inversions, psnr = None, None
    if settings.strategy != "random":  # inverted and checked before anything is written
        started = time.perf_counter()
        inversions = (refs.load_references(references_file)[1] if references_file.is_file() else
                      invert_classes(loaded, classes, settings.inversion_steps, settings))
        phases["inversion"] = time.perf_counter() - started
        started = time.perf_counter()
        psnr = ((saved or {}).get("result") or {}).get("references_psnr")  # a finished run checked them
        if psnr is None or not references_file.is_file():
            psnr = round_trips(loaded, classes, inversions, settings)
        phases["round trip"] = time.perf_counter() - started
    started = time.perf_counter()
    plan = make_plan(classes, settings, inversions)
    phases["planning"] = time.perf_counter() - started

    record = writing.open_record(out, parameters, resuming, runner.describe())
    with record.guard():
        if not references_file.is_file():
            refs.save_references(references_file, classes, inversions)
        pending = [s for s in plan.shards if not writing.shard_finished(out, plan, s)]
        generated = sum(s.size for s in pending)
        with command_bar(total=plan.total_images, initial=plan.total_images - generated, desc="augment",
                         unit="image") as bar:
            started = time.perf_counter()
            runner.run(plan, out, pending, model_id, bar.update)
            phases["shards (seeds, generation, writing)"] = time.perf_counter() - started
        record["execution"] = runner.describe()  # as it ran (a joined Ray cluster may hold fewer workers)
        manifest = writing.assemble_manifest(out, plan)
        seconds = time.perf_counter() - t0
        result = {"images": plan.total_images, "shards": len(plan.shards), "references_psnr": psnr}
        if settings.keep_blank:
            blank = result["blank"] = sum("blank" in json.loads(line)
                                          for line in manifest.read_text(encoding="utf-8").splitlines())
            if blank:
                warnings.warn(f"{blank} of {plan.total_images} images came out blank and were kept (keep_blank; "
                              "marked in the manifest)", RuntimeWarning, stacklevel=3)
        record["result"] = result
        # what this call did and how long it took depend on earlier attempts and the clock: run.log, not run.json
        record.log(f"generated {generated} images in {len(pending)} shards, {seconds:.1f} s ("
                   + ", ".join(f"{name} {value:.1f} s" for name, value in phases.items()) + ")")
    return AugmentResult(out, manifest, [c.folder for c in classes], plan.total_images, generated, len(plan.shards),
                         len(pending), seconds, settings)
