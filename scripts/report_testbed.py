#!/usr/bin/env python
"""Acceptance report of a testbed model: sample accuracy per class, inversion quality (DDIM or reverse Euler), the norm sweep and
speed on this machine. Writes report.json, report.md and PNGs into --out (numbers for docs/models.md and the model card).

    .venv/bin/python scripts/report_testbed.py                      # the embedded testbed -> reports/testbed/
    .venv/bin/python scripts/report_testbed.py --model runs/testbed --out reports/testbed
    .venv/bin/python scripts/report_testbed.py --quick --out /tmp/tb  # a tiny run (plumbing check)

Targets: head classes >= 85% judge accuracy on samples from random seeds (default sampler settings); DDIM
inversion + regeneration (guidance 1 both ways, 50 steps) >= 25 dB mean PSNR on the real few-shot images.

Cost on 2 cores (0.3 s per 64 images per guided DDIM step; half that unguided), default counts:
samples 10 x 100 x 50 steps ~= 235 s; inversion round trips of 200 images at 20/50/100 steps (fp32) and 50 (bf16) ~= 180 s;
norm sweep 11 norms x 2 groups x 102 ~= 525 s; speed 3 x (64 generated + 64 inverted + 64 generated in bf16) ~= 100 s: ~17 min.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import seedspace  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seedspace.evaluation import EvalConfig, NormEvalSettings, environment, run_norm  # noqa: E402
from seedspace.scoring.judge import resize_images  # noqa: E402
from seedspace.evaluation.report import (CI_METHODS, EXCLUDED_MARK, EXCLUDED_NOTE, fmt_stat,  # noqa: E402
                                              plot_grid, plot_norm, table_markdown, update_marked_file, write_json,
                                              write_text)
from seedspace.evaluation.runner import Runner  # noqa: E402
from seedspace.evaluation.roundtrip import roundtrip  # noqa: E402
from seedspace.backends.sampling import INVERTIBLE, scheduler_label  # noqa: E402

MARKER = "seedspace-testbed-report"  # docs/models.md / model card block: <!-- BEGIN MARKER --> ... <!-- END MARKER -->
HEAD_TARGET, PSNR_TARGET = 0.85, 25.0


def sample_accuracy(runner: Runner, per_class: int) -> dict:
    """Per class: judge accuracy/confidence/FID-style/KID of samples from random seeds at the default settings."""
    C = runner.num_classes
    seeds = runner.random_seeds(C * per_class, "report-samples")
    classes = [c for c in range(C) for _ in range(per_class)]
    t0 = time.perf_counter()
    images = runner.generate(seeds, classes)
    seconds = time.perf_counter() - t0
    sc = runner.judge.score(images, classes)
    groups = runner.groups()
    counts = (runner.model.info.get("train_counts") if hasattr(runner.model, "info") else None) or _train_counts(runner.model)
    rows = []
    for c in range(C):
        sl = slice(c * per_class, (c + 1) * per_class)
        role = "head" if c in groups["head"] else "tail" if c in groups["tail"] else ""
        label = {"class": f"{c} {runner.model.class_names[c]}", "group": role,
                 "train images": str(counts[c]) if counts and c < len(counts) else "?"}
        rows.append({"label": label, "metrics": {
            "acc": runner.stat(sc["correct"][sl], "samples", c, "acc"),
            "conf": runner.stat(sc["conf"][sl], "samples", c, "conf"),
            "fdist": runner.stat(sc["fdist"][sl], "samples", c, "fdist"),
            **runner.feature_stats([f[None] for f in sc["feats"][sl]], [c], "samples", c)}})
    head_acc = float(np.mean([sc["correct"][c * per_class:(c + 1) * per_class].mean() for c in groups["head"]]))
    tail_acc = float(np.mean([sc["correct"][c * per_class:(c + 1) * per_class].mean() for c in groups["tail"]]))
    grid = {"rows": [list(images[c * per_class:c * per_class + 8]) for c in range(C)],
            "row_labels": [runner.model.class_names[c] for c in range(C)], "col_labels": []}
    return {"table": {"name": "samples", "title": f"Samples from random seeds, {per_class} per class "
                      f"({runner.steps} {scheduler_label(runner.model.default_scheduler)} steps, guidance {runner.guidance})",
                      "metrics": ["acc", "conf", "fdist", "fid", "kid"], "rows": rows},
            "head_accuracy": head_acc, "tail_accuracy": tail_acc, "overall_accuracy": float(sc["correct"].mean()),
            "head_target": HEAD_TARGET, "head_pass": bool(head_acc >= HEAD_TARGET), "seconds": seconds,
            "_grid": grid}


def _train_counts(model):
    path = Path(getattr(model, "folder", "")) / "training.json"
    try:
        return json.loads(path.read_text()).get("train_counts")
    except (OSError, ValueError):
        return None


def inversion_quality(runner: Runner, per_class: int, steps_list, bf16_model=None) -> dict:
    """Inversion (the model's: DDIM, or reverse Euler for flow models; guidance 1) then regeneration (guidance 1)
    of real few-shot images: PSNR per step count
    (fp32), plus one bf16 row at the middle step count when ``bf16_model`` is given."""
    model = runner.model
    images, conds = [], []
    for c in range(runner.num_classes):
        imgs, _ = model.fewshot(c)
        order = runner.rng("report-inversion", c).permutation(imgs.shape[0])[:per_class]
        images.append(imgs[torch.as_tensor(order, dtype=torch.long)])
        conds += [c] * len(order)
    real = resize_images(torch.cat(images), model.seed_shape[-2:])
    runs = [(model, steps, "float32") for steps in steps_list]
    if bf16_model is not None:
        runs.append((bf16_model, steps_list[len(steps_list) // 2], "bfloat16"))
    rows = []
    for m, steps, dtype in runs:
        trip = roundtrip(m, real, conds, steps)
        p, norms, t_inv, t_gen = trip["psnr"], runner.norms(trip["seeds"]), trip["invert_s"], trip["regenerate_s"]
        tag = (steps,) if dtype == "float32" else (steps, dtype)  # bootstrap seeds of the fp32 rows unchanged
        rows.append({"steps": steps, "dtype": dtype, "n": int(p.size), "psnr": runner.stat(p, "psnr", *tag),
                     "norm": runner.stat(norms, "inv-norm", *tag), "norm_min": float(norms.min()),
                     "norm_max": float(norms.max()), "invert_s": t_inv, "regenerate_s": t_gen,
                     "pass": bool(p.mean() >= PSNR_TARGET) if steps == 50 and dtype == "float32" else None})
    return {"rows": rows, "target_db": PSNR_TARGET, "images": int(real.shape[0])}


def speed(runner: Runner, n: int, steps: int, repeats: int, bf16_model=None) -> dict:
    """Median wall times of generating and inverting n images; with ``bf16_model`` also bf16 generation of the
    same seeds, interleaved with fp32 (so machine noise hits both alike), and its largest pixel difference."""
    model = runner.model
    seeds = runner.random_seeds(n, "report-speed")
    conds = [i % runner.num_classes for i in range(n)]
    gen, inv, gen_bf16 = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        images = model.generate(seeds, condition=conds, steps=steps)
        gen.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.invert(images, condition=conds, steps=steps)
        inv.append(time.perf_counter() - t0)
        if bf16_model is not None:
            t0 = time.perf_counter()
            images_bf16 = bf16_model.generate(seeds, condition=conds, steps=steps)
            gen_bf16.append(time.perf_counter() - t0)
    out = {"images": n, "steps": steps, "guidance": runner.guidance, "repeats": repeats,
           "generate_s": statistics.median(gen), "invert_s": statistics.median(inv), "generate_runs": gen,
           "invert_runs": inv, "threads": torch.get_num_threads()}
    if bf16_model is not None:
        diff = (images.float() - images_bf16.float()).abs()
        out["bf16"] = {"generate_s": statistics.median(gen_bf16), "generate_runs": gen_bf16,
                       "max_pixel_diff": float(diff.max()), "mean_pixel_diff": float(diff.mean()),
                       "judge_agreement": float(np.mean(runner.judge.classify(images).argmax(1)
                                                                 == runner.judge.classify(images_bf16).argmax(1)))}
    return out


def markdown(rep: dict) -> str:
    m, env = rep["model"], rep["environment"]
    s, inv, sp = rep["samples"], rep["inversion"], rep["speed"]
    ok = lambda b: "PASS" if b else "FAIL"  # noqa: E731
    lines = ["# Testbed acceptance report", "",
             f"- model: `{m['name']}` ({m['folder']}), seed shape {m['seed_shape']}, default {m['steps']} {m['sampler']} steps, "
             f"guidance {m['guidance']}",
             f"- machine: {env['machine']}; torch {env['torch']} with {env['threads']} threads; "
             f"wall time {rep['wall_time_s']:.0f} s{' (--quick)' if rep['config']['quick'] else ''}",
             f"- judge references: {rep['judge']['references']}",
             f"- {CI_METHODS}", "",
             "## Samples from random seeds", "",
             f"Head classes {rep['groups']['head']}: accuracy {s['head_accuracy']:.3f} (target ≥ {HEAD_TARGET:.2f}: "
             f"**{ok(s['head_pass'])}**); tail classes {rep['groups']['tail']}: {s['tail_accuracy']:.3f}; all classes: "
             f"{s['overall_accuracy']:.3f}.", "", table_markdown(s["table"]), "",
             "Judge on real reference images (its own accuracy, for calibration): " + ", ".join(
                 f"{c['name']} {c['accuracy']:.2f}" for c in rep["judge"]["calibration"]) + ".", "",
             "![samples](samples.png)", "",
             f"## Inversion ({m['inversion']})", "",
             f"{inv['images']} real few-shot images inverted and regenerated with guidance 1 both ways.", "",
             "| steps | PSNR dB | norm/√d of the inversions | min – max | invert s | regenerate s |",
             "|---|---|---|---|---|---|"]
    for r in inv["rows"]:
        lines.append(f"| {r['steps']}{' (bf16)' if r['dtype'] == 'bfloat16' else ''} | {fmt_stat(r['psnr'])} | {fmt_stat(r['norm'])} | {r['norm_min']:.3f} – "
                     f"{r['norm_max']:.3f} | {r['invert_s']:.1f} | {r['regenerate_s']:.1f} |")
    at50 = [r for r in inv["rows"] if r["pass"] is not None]
    if at50:
        lines += ["", f"Target ≥ {PSNR_TARGET:g} dB at 50 steps: **{ok(at50[0]['pass'])}**."]
    lines += ["", "## Norm sweep", "", "Fixed seed directions rescaled to norm s·√d (code shared with "
              "`seedspace evaluate --experiments norm`).", "", table_markdown(rep["norm"]["tables"][0]), "",
              "![norm sweep](norm_sweep.png)", "",
              "## Speed", "",
              f"{sp['images']} images × {sp['steps']} {m['sampler']} steps (guidance {sp['guidance']}): "
              f"**{sp['generate_s']:.1f} s**; inversion of {sp['images']} images ({sp['steps']} steps): "
              f"**{sp['invert_s']:.1f} s** (median of {sp['repeats']}, {sp['threads']} torch threads)."]
    if "bf16" in sp:
        b = sp["bf16"]
        lines += ["", f"With bfloat16 weights (`--dtype bfloat16`, same seeds, runs interleaved with fp32): "
                      f"**{b['generate_s']:.1f} s** ({sp['generate_s'] / b['generate_s']:.2f}x fp32's speed); largest pixel "
                      f"difference to fp32 {b['max_pixel_diff']:.3f} (mean {b['mean_pixel_diff']:.4f}, images in [0, 1]); "
                      f"the judge gives the same class for {b['judge_agreement']:.0%} of the images."]
    text = "\n".join(lines) + "\n"
    return text + f"\n{EXCLUDED_NOTE}\n" if EXCLUDED_MARK in text else text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="testbed-format folder (default: the embedded testbed)")
    p.add_argument("--out", default="reports/testbed", help="output folder (default: reports/testbed)")
    p.add_argument("--quick", action="store_true", help="a tiny run (plumbing check)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-class", type=int, default=None, help="samples per class (default 100; quick 8)")
    p.add_argument("--norm-per-group", type=int, default=None, help="seeds per norm and group (default 100; quick 8)")
    p.add_argument("--references", default="auto", choices=["auto", "fashion-mnist", "fewshot"])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--marker", default=MARKER, help=f"the marked block --update replaces (default {MARKER})")
    p.add_argument("--update", action="append", default=[], metavar="FILE",
                   help="replace the text between the --marker block's BEGIN and END comments in FILE (docs/models.md, model card); repeatable")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from seedspace import load_model

    t_start = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="[report] %(message)s")  # this script's notes and the evaluation's
    log = logging.getLogger("report_testbed").info
    if args.model is None:
        from seedspace.backends.testbed import WEIGHTS_DIR

        if not (WEIGHTS_DIR / "testbed.json").is_file():
            p.error(f"the embedded testbed weights are missing ({WEIGHTS_DIR}); train them or pass --model")
    model = load_model(args.model)
    q = args.quick
    scales = (0.5, 1.0, 1.5) if q else tuple(round(0.5 + 0.1 * i, 1) for i in range(11))
    norm = NormEvalSettings(scales=scales, per_group=args.norm_per_group or (8 if q else 100))
    cfg = EvalConfig(seed=args.seed, references=args.references, quick=False, ref_per_class=200 if q else 500,
                     n_boot=500 if q else 1000, fid_boot=50 if q else 200, norm=norm)
    runner = Runner(model, cfg)
    per_class = args.per_class or (8 if q else 100)
    log(f"samples: {per_class} per class")
    samples = sample_accuracy(runner, per_class)
    log("inversion")
    bf16_model = load_model(args.model, dtype="bfloat16")
    inversion = inversion_quality(runner, 2 if q else 20, (50,) if q else (20, 50, 100), bf16_model)
    log(f"norm sweep: {len(scales)} norms")
    norm = run_norm(runner)
    log("speed")
    sp = speed(runner, 8 if q else 64, 50, 1 if q else 3, bf16_model=bf16_model)
    rep = {"config": {"quick": q, "seed": args.seed, "per_class": per_class, "scales": list(scales),
                      "norm_per_group": args.norm_per_group or (8 if q else 100), "model": args.model},
           "environment": environment(),
           "model": {"name": model.name, "folder": str(getattr(model, "folder", "")), "seed_shape": list(model.seed_shape),
                     "steps": runner.steps, "guidance": runner.guidance,
                     "sampler": scheduler_label(model.default_scheduler), "inversion": INVERTIBLE[model.default_scheduler]},
           "groups": runner.groups(),
           "judge": {"references": runner.judge.references.source, "calibration": runner.judge.calibration()},
           "samples": samples, "inversion": inversion, "norm": norm, "speed": sp}
    rep["wall_time_s"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_norm(norm["tables"][0], out / "norm_sweep.png")
    plot_grid(samples["_grid"], out / "samples.png", "Samples from random seeds, one class per row")
    write_json(out / "report.json", rep)
    md = markdown(rep)
    write_text(out / "report.md", md)
    for f in args.update:
        body = "\n".join(line for line in md.splitlines() if not line.startswith("![")).replace("\n# ", "\n### ")
        body = body.replace("# Testbed acceptance report", "### Testbed acceptance report", 1).replace("\n## ", "\n#### ")
        begin, end = f"<!-- BEGIN {args.marker} -->", f"<!-- END {args.marker} -->"
        log(f"{f}: {'updated' if update_marked_file(f, body, begin, end) else 'no markers, not changed'}")
    log(f"done in {rep['wall_time_s']:.0f} s: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
