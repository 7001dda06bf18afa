"""Throughput of ``seedspace augment``: images per second with the local executor and with Ray on the same cores
(one worker with all of them, or one worker per core), in one run, interleaved; and the time to plan 1,000
classes x 1,000 images without generating anything.

    python benchmarks/bench_augment.py                      # defaults below
    python benchmarks/bench_augment.py --classes 4 --per-class 500 --repeats 1 --out reports/bench_augment.md

The data set job is the embedded testbed's tail classes, k real few-shot images each, strategy paths / nao. Each
executor runs the whole ``augment`` call (model load, inversions, planning, generation, writing) into a fresh
folder; images/s = images / wall time of the call. Ray runs on a local cluster started once before the runs (its
start-up is reported apart), so its times include starting the actors and loading the model in each (an actor per
worker, the model loaded once per actor, shards handed out by a fixed-size pool). Planning uses synthetic stand-in
classes (random tensors as references: the planner only needs their number), so it is measured alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from seedspace.methods.augment import AugmentSettings, augment
from seedspace.methods.augment.planning import make_plan
from seedspace.methods.augment.references import ClassReferences
from seedspace.backends.loading import load_model
from seedspace.noise import seeds_from_ints
from seedspace.hardware import cpu_model


def testbed_references(classes: int, k: int) -> dict:
    """k shipped few-shot images of each of the testbed's last ``classes`` classes (the rarest in training)."""
    model = load_model()
    names = model.class_names[-classes:]
    return {name: model.fewshot(model.class_names.index(name))[0][:k] for name in names}


BARE = "the generator alone (model.generate)"


def throughput(args, refs: dict) -> dict:
    import ray  # the Ray runs need the extra: pip install seedspace[ray]

    started = time.perf_counter()
    if not args.local_only:
        ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - started
    settings = AugmentSettings(per_class=args.per_class, strategy="paths", method="nao", steps=args.steps,
                               inversion_steps=args.inversion_steps, shard_size=args.shard_size,
                               batch_size=args.batch_size)
    c = args.cores  # every arm gets the same cores
    arms = {"local": dict(executor="local"),
            f"ray, 1 worker x {c} threads": dict(executor="ray", workers=1, ray_options={"cpus_per_worker": c}),
            # a worker computes with the run's recorded threads: one-thread workers need a run that records 1
            f"ray, {c} workers x 1 thread": dict(executor="ray", workers=c, ray_options={"cpus_per_worker": 1},
                                                  threads=1)}
    if args.local_only:
        arms = {"local": arms["local"]}
    rates = {BARE: [], **{name: [] for name in arms}}
    phases = {}  # each arm's last run.log line: where its time went
    model = load_model("testbed", device="cpu", dtype=settings.dtype)
    model.batch_size = args.batch_size
    classes = list(refs)
    root = Path(tempfile.mkdtemp(prefix="bench_augment_"))
    try:
        for r in range(args.repeats):  # interleaved, so drifts in machine load hit every arm alike
            t0 = time.perf_counter()  # the generator alone: the same images in the same batches, nothing written
            for position, name in enumerate(classes):
                seeds = seeds_from_ints(range(position * args.per_class, (position + 1) * args.per_class),
                                        model.seed_shape)
                model.generate(seeds, name, args.steps)
            rates[BARE].append(len(classes) * args.per_class / (time.perf_counter() - t0))
            for name, options in arms.items():
                out = root / f"{r}-{name.replace(' ', '').replace(',', '-')}"
                result = augment("testbed", refs, out, settings, device="cpu", **options)
                rates[name].append(result.images / result.seconds)
                phases[name] = next(line for line in (out / "run.log").read_text().splitlines()[::-1]
                                    if " generated " in line).split(" ", 1)[1]
                shutil.rmtree(out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if ray.is_initialized():
            ray.shutdown()
    return {"rates": rates, "ray_start": ray_start, "images": len(refs) * args.per_class, "phases": phases}


def planning(args) -> dict:
    out = {}
    for strategy, k in (("random", 5), ("paths", 5), ("centroid", 10)):
        classes = [ClassReferences(f"c{i}", f"c{i}", torch.zeros(k, 1, 1, 1)) for i in range(args.plan_classes)]
        settings = AugmentSettings(per_class=args.plan_images, strategy=strategy, seed=0)
        times = []
        for _ in range(args.plan_repeats):
            t0 = time.perf_counter()
            plan = make_plan(classes, settings)
            times.append(time.perf_counter() - t0)
        out[(strategy, k)] = (statistics.median(times), len(plan.shards))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=4, help="tail classes of the testbed")
    p.add_argument("--k", type=int, default=5, help="reference images per class")
    p.add_argument("--per-class", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="DDIM steps")
    p.add_argument("--inversion-steps", type=int, default=50,
                   help="DDIM inversion steps (at 10 some testbed references come back black at 10 steps)")
    p.add_argument("--shard-size", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--cores", type=int, default=2, help="cores of every arm: the local executor's torch threads, "
                   "one Ray worker with that many threads, or that many Ray workers of one thread")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--local-only", action="store_true", help="the local executor and the generator alone, no Ray arms")
    p.add_argument("--plan-classes", type=int, default=1000)
    p.add_argument("--plan-images", type=int, default=1000)
    p.add_argument("--plan-repeats", type=int, default=3)
    p.add_argument("--out", default=None, help="also write the Markdown here")
    args = p.parse_args()
    torch.set_num_threads(args.cores)

    refs = testbed_references(args.classes, args.k)
    tp = throughput(args, refs)
    plans = planning(args)

    med = {name: statistics.median(v) for name, v in tp["rates"].items()}
    lines = [
        "### seedspace augment: throughput and planning",
        "",
        f"- machine: {cpu_model()}, os.cpu_count() = {os.cpu_count()}, "
        f"{platform.system()}; torch {torch.__version__}; {args.cores} cores per arm",
        f"- job: {args.classes} testbed tail classes x {args.per_class} images (strategy paths, method nao), "
        f"k = {args.k} references, {args.steps} DDIM steps ({args.inversion_steps} inverting), shards of {args.shard_size}, batches of "
        f"{args.batch_size}; {tp['images']} images per call",
        f"- images/s = images / wall time of the whole `augment` call (model load, inversions, plan, generation, "
        f"writing; for Ray also starting the actors, each loading the model); median of {args.repeats} interleaved "
        f"runs" + ("" if args.local_only else f"; the local Ray cluster's own start ({tp['ray_start']:.1f} s) is "
                  "not included"),
        "",
        "| executor | images/s (median) | runs | ratio to local | ratio to the generator alone |",
        "|---|---:|---|---:|---:|",
    ]
    for name, values in tp["rates"].items():
        lines.append(f"| {name} | {med[name]:.2f} | {', '.join(f'{v:.2f}' for v in values)} | "
                     f"{med[name] / med['local']:.2f} | {med[name] / med[BARE]:.2f} |")
    ray_arms = [v for k, v in med.items() if k not in ("local", BARE)]
    if ray_arms:
        lines += ["", "Ray overhead at equal cores (1 - best Ray arm / local): "
                      f"{100 * (1 - max(ray_arms) / med['local']):.0f}%"]
    lines += ["", "The generator alone: the same number of images from random seeds in the same batches, threads and "
              "dtype, nothing inverted, planned or written (its `dtype` is the run's).", "",
              "Where each arm's time went (its last run, from its run.log):", "",
              *[f"- {name}: {line}" for name, line in tp["phases"].items()], "",
              f"#### Planning {args.plan_classes} classes x {args.plan_images} images (no generation)", "",
              "| strategy | k | seconds (median of %d) | shards |" % args.plan_repeats, "|---|---:|---:|---:|"]
    for (strategy, k), (seconds, shards) in plans.items():
        lines.append(f"| {strategy} | {k} | {seconds:.2f} | {shards} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
