"""The long-tail benchmark's synthesis against the generator alone: one replicate's synthetic arms made as the
benchmark makes them, each beside the bare ``model.generate`` of the same images.

    python benchmarks/bench_longtail_synthesis.py                   # the default benchmark's replicate 0
    python benchmarks/bench_longtail_synthesis.py --out reports/bench_longtail_synthesis.md

For every arm of the default settings that generates (the controls only copy real images), three runs in turn
(their order rotates from arm to arm, so drifts in machine load hit all alike):

- the benchmark's own code (``longtail.added_images``: one ``augment`` call per class into a fresh folder, with
  its inversions, the references' round trip, planning, seeds, generation and PNGs, then the images read back),
  with the model every arm shares, as in the benchmark: a class's inversion and round trip made for an earlier
  arm with the same condition are remembered (``augment.inversion``);
- the same with a freshly loaded model, which remembers nothing (every arm inverts its references again: the
  synthesis before that memo);
- the generator alone: the same number of images per class from random seeds, in the same batches of 64, at the
  same steps, guidance, condition, dtype and threads, nothing inverted or written.

images/s = images / wall time; ratio = generator alone's time / the synthesis's.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from seedspace.backends.loading import load_model
from seedspace.evaluation.config import EvalConfig
from seedspace.evaluation.longtail import added_images, draw_replicate, plan_benchmark
from seedspace.evaluation.longtail_settings import CONTROL_ARMS, arm_label, parse_arm
from seedspace.evaluation.runner import Runner
from seedspace.hardware import cpu_model
from seedspace.methods.augment.references import model_condition
from seedspace.noise import seeds_from_ints

BATCH = 64  # the benchmark's synthesis batches (evaluation.synthesis.synthesize)


def bare(model, fill: dict, condition: str, steps: int) -> float:
    """Seconds the generator alone takes for ``fill`` ({class: images}) in batches of BATCH."""
    model.batch_size = BATCH
    t0 = time.perf_counter()
    for c, n in fill.items():
        if n > 0:
            model.generate(seeds_from_ints(range(n), model.seed_shape),
                           model_condition(model, model.class_names[c], condition), steps)
    return time.perf_counter() - t0


def phases(folder: Path) -> Counter:
    """Seconds by phase, summed over the augment calls under ``folder`` (each call's last run.log line)."""
    total = Counter()
    for log in folder.rglob("run.log"):
        line = next(x for x in log.read_text().splitlines()[::-1] if " generated " in x)
        for name, seconds in re.findall(r"([a-z ,()]+?) ([0-9.]+) s", line.split("s (", 1)[1]):
            total[name.strip(", ")] += float(seconds)
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="testbed")
    p.add_argument("--replicate", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="also write the Markdown here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    config = EvalConfig(experiments=("longtail",))
    cfg = config.longtail
    rows, spent = [], Counter()
    with tempfile.TemporaryDirectory(prefix="bench_lt_synthesis_") as tmp:
        runner = Runner(load_model(args.model), config, workdir=Path(tmp))
        plan = plan_benchmark(runner, cfg)
        rep = draw_replicate(runner, cfg, args.replicate, plan.pools, plan.counts, plan.ranks)
        model = runner.synthesis_model()
        arms = [(a, c) for a, c in plan.arms if parse_arm(a).strategy not in CONTROL_ARMS]
        for i, (arm, condition) in enumerate(arms):
            def synthesis(fresh: bool) -> float:
                folder = Path(tmp) / f"{i}-{'fresh' if fresh else 'shared'}"
                by = runner
                if fresh:  # another runner and model: nothing remembered (their loading is not timed)
                    by = Runner(load_model(args.model), config, workdir=Path(tmp))
                    by.synthesis_model()
                t0 = time.perf_counter()
                added_images(by, cfg, rep, arm, condition, plan.fill, folder)
                seconds = time.perf_counter() - t0
                spent.update({f"{k} ({'fresh' if fresh else 'shared'} model)": v for k, v in phases(folder).items()})
                return seconds
            runs = {"shared": lambda: synthesis(False), "fresh": lambda: synthesis(True),
                    "alone": lambda: bare(model, plan.fill, condition or "class", cfg.steps)}
            order = list(runs)[i % 3:] + list(runs)[:i % 3]
            seconds = {name: runs[name]() for name in order}
            rows.append((arm_label(arm, condition), sum(plan.fill.values()), seconds))
            print(rows[-1], flush=True)

    images = sum(r[1] for r in rows)
    total = {name: sum(r[2][name] for r in rows) for name in ("shared", "fresh", "alone")}
    lines = ["### The long-tail benchmark's synthesis against the generator alone", "",
             f"- machine: {cpu_model()}, os.cpu_count() = {os.cpu_count()}, {platform.system()}; torch "
             f"{torch.__version__}; {args.threads} threads; model {args.model} in {model.dtype}",
             f"- the default benchmark settings' replicate {args.replicate}: {cfg.steps} DDIM steps, batches of "
             f"{BATCH}, one augment call per class and arm; seconds of each run (wall time); ratio = the "
             "generator alone's time / the synthesis's", "",
             "| arm | images | synthesis, shared model | synthesis, fresh model | generator alone | ratio, shared | "
             "ratio, fresh |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, n, t in rows + [("all arms", images, total)]:
        lines.append(f"| {label} | {n} | {t['shared']:.1f} | {t['fresh']:.1f} | {t['alone']:.1f} | "
                     f"{t['alone'] / t['shared']:.2f} | {t['alone'] / t['fresh']:.2f} |")
    lines += ["", f"images/s: synthesis {images / total['shared']:.2f} (shared model), "
              f"{images / total['fresh']:.2f} (fresh model), generator alone {images / total['alone']:.2f}.", "",
              "Where the synthesis's augment calls spent their time (sums over the calls' run.log lines): "
              + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(spent.items())) + "."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
