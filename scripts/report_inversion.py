#!/usr/bin/env python
"""Inversion round trips per model kind: real images -> seeds (the sampler's inversion) -> images (the same sampler),
PSNR at 20 / 50 / 100 steps. Both directions at the model's inversion guidance (1: no classifier-free guidance).
Writes report.json and report.md (machine, command, wall time, one table) into --out.

    .venv/bin/python scripts/report_inversion.py                                   # the embedded DDPM testbed
    .venv/bin/python scripts/report_inversion.py --model testbed --model runs/testbed-flow --update docs/results.md
    .venv/bin/python scripts/report_inversion.py --model models/sd15 --images refs/*.png --condition "a photo"

Samplers (--samplers, default auto): each model's default, i.e. DDIM inversion for epsilon / v-prediction models
and reverse Euler for flow-matching models, plus reverse Heun ('flow-heun', 2 steps - 1 network evaluations each
way) on flow models with a fixed shift. Images: --per-class real few-shot images of each class of a testbed-format
model (the same seeded choice as scripts/report_testbed.py), or --images for any model.

Cost on 2 cores for the 32x32 testbeds (an unguided network evaluation of one image ~0.0025 s): 200 images x
(20 + 50 + 100) steps x 2 directions ~= 170 s per sampler with one evaluation per step; reverse Heun + Heun costs
about twice that: DDPM testbed ~3 min, flow testbed (Euler and Heun) ~9 min.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import seedspace  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seedspace.evaluation import environment  # noqa: E402
from seedspace.scoring.judge import resize_images  # noqa: E402
from seedspace.evaluation.report import fmt_stat, update_marked_file, write_json, write_text  # noqa: E402
from seedspace.evaluation.runner import stable_seed  # noqa: E402
from seedspace.scoring.metrics import bootstrap_ci  # noqa: E402
from seedspace.evaluation.roundtrip import roundtrip, roundtrip_samplers  # noqa: E402
from seedspace.backends.sampling import INVERTIBLE, check_inversion, scheduler_label  # noqa: E402

BEGIN, END = "<!-- BEGIN seedspace-inversion-report -->", "<!-- END seedspace-inversion-report -->"
STEPS = (20, 50, 100)


def fewshot_images(model, per_class: int, seed: int = 0) -> tuple[torch.Tensor, list]:
    """``per_class`` real few-shot images of each class of a testbed-format model in a seeded order (the choice of
    scripts/report_testbed.py) and their classes; ValueError for a model without shipped images."""
    images, conds = [], []
    for c in range(len(model.class_names or [])):
        imgs, _ = model.fewshot(c)
        order = np.random.default_rng([seed, stable_seed("report-inversion", c)]).permutation(imgs.shape[0])[:per_class]
        images.append(imgs[torch.as_tensor(order, dtype=torch.long)])
        conds += [c] * len(order)
    if not images:
        raise ValueError(f"{model.name} has no classes with few-shot images: pass --images")
    return resize_images(torch.cat(images), model.image_shape[-2:]), conds


def measure(model, images: torch.Tensor, conditions, steps_list, samplers, seed: int = 0, n_boot: int = 1000,
            log=lambda msg: None) -> list[dict]:
    """One row per (sampler, steps): PSNR of the round trip with a BCa CI, seed norms, NFE and seconds."""
    rows = []
    for name in samplers:
        for steps in steps_list:
            log(f"{model.name}: {scheduler_label(name)} inversion, {steps} steps")
            trip = roundtrip(model, images, conditions, steps, name)
            mean, lo, hi = bootstrap_ci(trip["psnr"], n_boot=n_boot, seed=stable_seed(seed, "psnr", name, steps))
            rows.append({"model": model.name, "kind": model.prediction_type, "sampler": name,
                         "inversion": INVERTIBLE[name], "steps": steps, "nfe": trip["nfe"], "n": int(len(trip["psnr"])),
                         "psnr": {"mean": mean, "lo": lo, "hi": hi, "n": int(len(trip["psnr"]))},
                         "psnr_min": float(trip["psnr"].min()), "norm_mean": float(trip["norm"].mean()),
                         "norm_min": float(trip["norm"].min()), "norm_max": float(trip["norm"].max()),
                         "invert_s": trip["invert_s"], "regenerate_s": trip["regenerate_s"],
                         "guidance": trip["guidance"]})
    return rows


def markdown(rep: dict) -> str:
    """The report: machine, command, wall time, then one table of every model, sampler and step count."""
    env = rep["environment"]
    lines = ["### Inversion round trips", "",
             f"- command: `{rep['command']}`",
             f"- machine: {env['machine']}; torch {env['torch']} with {env['threads']} threads; wall time "
             f"{rep['wall_time_s']:.0f} s",
             "- round trip: real image → seed by the sampler's inversion → image by the same sampler at the same "
             "steps, both at the model's inversion guidance (1: no classifier-free guidance); PSNR in dB against the "
             "real image, mean [95% BCa bootstrap CI] over images. NFE: network evaluations per image, inversion + "
             "generation (Heun: 2 steps − 1 each way).", ""]
    for m in rep["models"]:
        lines.append(f"- `{m['name']}` ({m['kind']} prediction): {m['images']}")
    lines += ["", "| model | inversion → sampler | steps | NFE | PSNR dB ↑ | min PSNR | norm/√d of the seeds "
              "(min – max) | invert s | regenerate s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rep["rows"]:
        lines.append(f"| {r['model']} | {r['inversion']} → {scheduler_label(r['sampler'])} | {r['steps']} | {r['nfe']} | "
                     f"{fmt_stat(r['psnr'])} | {r['psnr_min']:.1f} | {r['norm_mean']:.3f} ({r['norm_min']:.3f} – "
                     f"{r['norm_max']:.3f}) | {r['invert_s']:.1f} | {r['regenerate_s']:.1f} |")
    return "\n".join(lines) + "\n"


def report(models: dict, steps_list=STEPS, samplers: str = "auto", per_class: int = 20, images=None,
           condition=None, seed: int = 0, n_boot: int = 1000, command: str = "", log=lambda msg: None) -> dict:
    """Round trips of every model (``{label: model}``): rows of :func:`measure` for each model's samplers ('auto':
    :func:`~seedspace.evaluation.roundtrip.roundtrip_samplers`, else a comma list applied where it fits) on ``images``
    (with one ``condition``) or the model's few-shot images."""
    t0 = time.perf_counter()
    rows, described = [], []
    for label, model in models.items():
        if samplers == "auto":
            names = roundtrip_samplers(model)
        else:
            names = [check_inversion(n, model.prediction_type, model.name) for n in samplers.split(",") if n.strip()]
        if images is None:
            batch, conds = fewshot_images(model, per_class, seed)
            what = f"{batch.shape[0]} real few-shot images ({per_class} per class), conditioned on their class"
        else:
            batch, conds = resize_images(images, model.image_shape[-2:]), condition
            what = f"{batch.shape[0]} given images" + (f", condition {condition!r}" if condition is not None else "")
        described.append({"name": model.name, "label": label, "kind": model.prediction_type, "images": what,
                          "samplers": names})
        rows += measure(model, batch, conds, steps_list, names, seed, n_boot, log)
    return {"command": command, "environment": environment(), "models": described, "rows": rows,
            "steps": list(steps_list), "wall_time_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=None,
                   help="a model name or folder as seedspace.load_model takes it; repeatable (default: testbed)")
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS), help="step counts (default: 20 50 100)")
    p.add_argument("--samplers", default="auto",
                   help="comma-separated samplers with an inversion (ddim, flow-euler, flow-heun), or auto: each "
                        "model's default, plus flow-heun on flow models it fits (default: auto)")
    p.add_argument("--per-class", type=int, default=20, help="few-shot images per class (default: 20)")
    p.add_argument("--images", nargs="+", default=None, help="image files instead of the few-shot images")
    p.add_argument("--condition", default=None, help="the condition of --images (a class or a prompt)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/inversion", help="output folder (default: reports/inversion)")
    p.add_argument("--update", action="append", default=[], metavar="FILE",
                   help=f"replace the text between {BEGIN} and {END} in FILE; repeatable")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="2 images per class at 5 and 10 steps (a plumbing check)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from seedspace import load_model

    t_start = time.perf_counter()
    log = lambda msg: print(f"[inversion] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    command = "python scripts/report_inversion.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        if any(s < 1 for s in args.steps) or args.per_class < 1:
            raise ValueError("--steps and --per-class must be >= 1")
        models = {name: load_model(name) for name in (args.model or ["testbed"])}
        images = None
        if args.images:
            images = next(iter(models.values())).load_images(args.images)
        rep = report(models, (5, 10) if args.quick else tuple(args.steps), args.samplers,
                     2 if args.quick else args.per_class, images, args.condition, args.seed,
                     200 if args.quick else 1000, command.strip(), log)
    except ValueError as exc:
        print(f"report_inversion: error: {exc}", file=sys.stderr)
        return 2
    rep["wall_time_s"] = time.perf_counter() - t_start  # model loading included
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", rep)
    md = markdown(rep)
    write_text(out / "report.md", md)
    for f in args.update:
        log(f"{f}: {'updated' if update_marked_file(f, md, BEGIN, END) else 'no markers, not changed'}")
    log(f"done in {rep['wall_time_s']:.0f} s: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
