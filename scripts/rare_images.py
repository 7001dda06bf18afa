"""The judge's view of the images each arm of the rare-concept study (issue 35) adds to the few-shot classes, beside
the accuracies of scripts/rare_report.py: accuracy, precision / recall against the class's test images, diversity
and the distance to the nearest reference (:mod:`seedspace.evaluation.image_scores`), mean over replicates with a
95% t interval, one table per set of runs on a results page.

  .venv/bin/python scripts/rare_images.py --runs runs/rare/bench-digits-tail-e*-k5 --name digits-images \\
      --page docs/results.md

A benchmark run since the benchmark scores images has them in its results.json; an older one is scored here from
its stored data sets (nothing is generated; a missing data set stops with one line), and the scores are kept in
``<run>/images.json`` so a rerun only reads them. The page gets the table between ``<!-- rare-report:NAME -->`` and
``<!-- /rare-report:NAME -->``, as scripts/rare_report.py writes its blocks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from seedspace.backends.loading import load_model
from seedspace.evaluation import datasets_folder
from seedspace.evaluation.config import EvalConfig
from seedspace.evaluation.image_scores import ARM_IMAGE_SCORES, NEAREST
from seedspace.evaluation.longtail import score_stored_images
from seedspace.evaluation.runner import Runner
from seedspace.outputs.files import write_text
from seedspace.runs.record import read_record

_spec = importlib.util.spec_from_file_location("rare_report", Path(__file__).with_name("rare_report.py"))
rare_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rare_report)

STORED = "images.json"
HEADINGS = {"acc": "judge accuracy", "precision": "precision", "recall": "recall", "diversity": "diversity",
            NEAREST: "distance to nearest reference"}


def scores_of(run: Path, results: dict) -> dict:
    """{arm: [per replicate scores]} of a finished long-tail benchmark (``results``: its results.json): from its
    results where the benchmark scored its images, else from ``images.json`` or, the first time, from its stored
    data sets."""
    section = results["experiments"]["longtail"]
    scored = section.get("image_items") or {}
    if scored and all(len(reps) == results["config"]["longtail"]["replicates"] for reps in scored.values()):
        return scored
    if (run / STORED).is_file():
        return json.loads((run / STORED).read_text(encoding="utf-8"))
    record = read_record(run, "evaluate")
    if record.get("status") != "completed":
        raise ValueError(f"{run} is not a completed evaluation")
    config = EvalConfig.from_record(record["parameters"]["config"])
    model = load_model(record["model"]["folder"], dtype="float32")
    runner = Runner(model, config, workdir=datasets_folder(run))
    scores = score_stored_images(runner)
    write_text(run / STORED, json.dumps(scores, indent=1))
    return scores


def table(rows: list[tuple[str, dict]], heading: str) -> str:
    """One row per (run, arm): each score's mean ± the half-width of its 95% t interval over replicates."""
    lines = [f"| {heading} | arm | " + " | ".join(HEADINGS[m] for m in ARM_IMAGE_SCORES) + " |",
             "|---|---|" + "---:|" * len(ARM_IMAGE_SCORES)]
    for label, scores in rows:
        for arm, reps in scores.items():
            cells = []
            for m in ARM_IMAGE_SCORES:
                t = rare_report.t_interval(np.array([r[m] for r in reps], dtype=np.float64))
                cells.append(f"{t['mean']:.3f} ± {(t['hi'] - t['lo']) / 2:.3f}")
            lines.append(f"| {label} | {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", required=True, help="finished long-tail benchmark run folders")
    p.add_argument("--axis", choices=sorted(rare_report.AXES), default="exposure",
                   help="what tells the runs apart (default: exposure)")
    p.add_argument("--name", required=True, help="the page block's name")
    p.add_argument("--page", type=Path, default=None, help="the results page to write the table into")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="rare_images: %(message)s")  # the scoring's notes
    position, _, heading = rare_report.AXES[args.axis]
    rows = []
    try:
        for folder in map(Path, args.runs):
            results = rare_report.read_results(folder)
            key, label = position(folder, results)
            rows.append((key, label, scores_of(folder, results)))
    except (OSError, ValueError, KeyError) as exc:
        print(f"rare_images: {exc}", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: r[0])
    text = (f"The images each arm adds to the few-shot classes (fill dose), as the judge sees them: mean over "
            f"replicates ± the half-width of the 95% t interval; precision and recall (5 nearest neighbours) against "
            f"the benchmark's test images of the class, diversity and the distance to the nearest reference in units "
            f"of their spread (oversample's repeats inflate its recall); runs: {', '.join(args.runs)}.\n\n"
            + table([(label, scores) for _, label, scores in rows], heading))
    print(text)
    if args.page is not None:
        rare_report.update_page(args.page, args.name, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
