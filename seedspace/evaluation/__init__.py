"""`seedspace evaluate`: the paper's claims, measured side by side on one model with one fixed judge.

    from seedspace.evaluation import EvalConfig, evaluate
    results = evaluate(model, EvalConfig.quick_preset(), out="runs/eval-quick")

See :mod:`.config` for the experiments, their counts and the cost arithmetic, :mod:`.judge` for the judge,
:mod:`.experiment` for the skeleton every experiment follows (one module each: :mod:`.norm`,
:mod:`.interpolation`, :mod:`.centroid`, :mod:`.rare`, :mod:`.paired`; opt-in: :mod:`.longtail`, :mod:`.fewshot`,
:mod:`.priors`, :mod:`.schedulers`) and :mod:`.report` for the presentation.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from ..backends.sampling import INVERTIBLE, scheduler_label
from ..hardware import cpu_has_native_bf16, cpu_model
from ..progress import progress_bars
from ..runs import RunRecord
from ..settings import check_unchanged
from .centroid import measure_centroid, tabulate_centroid
from .config import (BENCHMARK_EXPERIMENTS, CENTROID_METHODS, CLAIM_EXPERIMENTS, EXPERIMENT_SETTINGS, EXPERIMENTS,
                     INTERPOLATION_METHODS, METRICS, PAIRED_COMPARISONS, CentroidEvalSettings, EvalConfig,
                     InterpolationEvalSettings, NormEvalSettings, PriorsEvalSettings, RareEvalSettings,
                     SchedulersEvalSettings)
from .longtail_settings import FewshotSettings, LongtailSettings
from .fewshot import check_fewshot, measure_fewshot, tabulate_fewshot
from .interpolation import measure_interpolation, tabulate_interpolation
from .longtail import REPLICATES, replicate_file, run_longtail
from .measurements import load_measured, save_measured
from .norm import measure_norm, run_norm, tabulate_norm
from .paired import run_paired
from .priors import check_priors_config, measure_priors, tabulate_priors
from .rare import measure_rare, tabulate_rare
from .report import (RESULTS_BEGIN, RESULTS_END, has_markers, plot_grid, plot_norm, results_section, results_targets,
                     report_markdown, update_marked_file, write_json, write_text)
from .runner import Runner
from .schedulers import measure_schedulers, tabulate_schedulers

log = logging.getLogger(__name__)

__all__ = ["CENTROID_METHODS", "EXPERIMENT_SETTINGS", "EXPERIMENTS", "INTERPOLATION_METHODS", "METRICS",
           "PAIRED_COMPARISONS", "CentroidEvalSettings", "EvalConfig", "FewshotSettings",
           "InterpolationEvalSettings", "LongtailSettings", "NormEvalSettings", "PriorsEvalSettings",
           "RareEvalSettings", "Runner", "SchedulersEvalSettings", "check_config", "check_retabulable",
           "environment", "evaluate", "parse_experiments", "run_norm", "update_results_page", "write_outputs"]

# each experiment as (measure, tabulate), its measurements stored in <out>/measurements/<name>.safetensors; the
# long-tail benchmark stores its finished replicates instead (run_longtail reads them back), and paired compares the
# sections of the others
MEASURED = {"norm": (measure_norm, tabulate_norm), "interpolation": (measure_interpolation, tabulate_interpolation),
            "centroid": (measure_centroid, tabulate_centroid), "rare": (measure_rare, tabulate_rare),
            "priors": (measure_priors, tabulate_priors), "schedulers": (measure_schedulers, tabulate_schedulers),
            "fewshot": (measure_fewshot, tabulate_fewshot)}


def parse_experiments(text: str | None) -> tuple:
    """'norm,paired' -> ('norm', 'paired') in canonical order; 'all' or None -> the paper's claims (norm,
    interpolation, centroid, rare, paired); 'benchmark' -> longtail and fewshot; 'priors' and 'schedulers' (opt-in)
    by name."""
    if text in (None, "", "all"):
        return CLAIM_EXPERIMENTS
    if text == "benchmark":
        return BENCHMARK_EXPERIMENTS
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    return tuple(e for e in EXPERIMENTS if e in names)


def check_config(config: EvalConfig, d: int) -> None:
    """ValueError for settings that would fail only later in the run (the priors experiment's prior file and fit
    family, for seeds of dimension ``d``; the few-shot curve's k against the head count); nothing to check for
    experiments not selected."""
    if "priors" in config.experiments:
        check_priors_config(config, d)
    if "fewshot" in config.experiments:
        check_fewshot(config.longtail, config.fewshot)


def environment() -> dict:
    """The machine a run happened on (for the report and the results page)."""
    cpu = cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"machine": f"{cpu}, {cores} cores available, {platform.system()} {platform.machine()}",
            "cpu": cpu, "cores": cores, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "native_bf16": cpu_has_native_bf16(), "python": sys.version.split()[0], "platform": platform.platform()}


def evaluate(model, config: EvalConfig | None = None, out: str | Path | None = None, runner: Runner | None = None,
             resume: bool = False, measured_in: str | Path | None = None) -> dict:
    """Run the selected experiments and (when ``out`` is given) write results.json, report.md and PNGs, and the
    measurements of the experiments of :data:`MEASURED` (``out/measurements``).

    With ``resume``, ``out`` is an interrupted evaluation of the same settings and model (ValueError naming the first
    that differs): the experiments whose measurements it stored are tabulated from them, the others run again (the
    long-tail benchmark reads its finished replicates back: each depends on its index and the settings only).
    With ``measured_in``, a finished evaluation of the same settings and model: its tables are made again from its
    stored measurements, without generating (ValueError, before any work, for an experiment it did not store)."""
    config = config or EvalConfig()
    check_config(config, math.prod(model.seed_shape))
    t0 = time.perf_counter()
    experiments = tuple(config.experiments)
    if "paired" in experiments and not {"interpolation", "centroid", "rare"} & set(experiments):
        log.info("paired needs per-item results: adding interpolation and centroid")
        experiments = tuple(e for e in EXPERIMENTS if e in set(experiments) | {"interpolation", "centroid"})
    stored = Path(measured_in) if measured_in is not None else Path(out) if resume else None
    if measured_in is not None:
        check_retabulable(stored, config)
    runner = runner or Runner(model, config, workdir=datasets_folder(out) if out is not None else None)
    if measured_in is not None:  # the new run holds the measurements it is tabulated from
        copy_measurements(stored, runner.workdir("longtail") / REPLICATES, None if out is None else Path(out))
    sections = {}
    # run.json: running -> completed, or interrupted / failed naming the experiments finished so far (whose results
    # are in results.json and report.md already)
    parameters = {"config": runner.cfg.to_dict(), "experiments": list(experiments)}
    model_entry = {"name": getattr(model, "name", "?"), "folder": str(getattr(model, "folder", ""))}
    if out is None:
        record = None
    elif resume:
        record = RunRecord.resume(Path(out))
        recorded = dict(record.data.get("parameters", {}))
        try:
            recorded["config"] = EvalConfig.from_record(recorded.get("config")).to_dict()  # an older record's form too
        except ValueError:
            pass  # compared as it is: the difference is named below
        try:
            check_unchanged(recorded, parameters, out)
            check_unchanged(record.data.get("model", {}), model_entry, out)
        except ValueError:
            record.finish("interrupted")  # as it was: nothing of it changed
            raise
        record["finished"] = []
    else:
        source = {} if measured_in is None else {"measured_in": str(measured_in)}
        record = RunRecord(Path(out), "evaluate", parameters, model=model_entry, finished=[], **source)
    # the log is the evaluation's progress: the bars of what it runs (augment, SeedSelect, the model) stay hidden
    with record.guard() if record is not None else contextlib.nullcontext(), progress_bars(False):
        for name in experiments:
            log.info(f"== {name}")
            t1, gen1 = time.perf_counter(), runner.counters["generate_s"] + runner.counters["invert_s"]
            images1 = runner.counters["images"]
            if name == "paired":
                sections[name] = run_paired(runner, sections)
            elif name == "longtail":
                sections[name] = run_longtail(runner)
            else:
                measure, tabulate = MEASURED[name]
                kept = measurements_file(stored, name) if stored is not None else None
                if kept is not None and kept.is_file():
                    measured = load_measured(kept)
                    log.info(f"{name}: tabulated from {kept}")
                else:
                    measured = measure(runner)
                    if out is not None:
                        save_measured(measurements_file(out, name), measured)
                sections[name] = tabulate(runner, measured)
            sec = sections[name]
            sec["time_s"] = time.perf_counter() - t1
            sec["model_s"] = runner.counters["generate_s"] + runner.counters["invert_s"] - gen1
            sec["images"] = runner.counters["images"] - images1
            log.info(f"{name}: {sec['time_s']:.0f} s ({sec['model_s']:.0f} s generating/inverting, "
                     f"{sec.get('images', 0)} images)")
            if record is not None:  # what is finished survives a later failure or Ctrl-C
                write_outputs({**collect_results(model, runner, experiments, sections),
                               "wall_time_s": time.perf_counter() - t0}, out, figures=False)
                record["finished"] = list(sections)
                record.write()
        results = collect_results(model, runner, experiments, sections)
        results["wall_time_s"] = time.perf_counter() - t0
        if out is not None:
            write_outputs(results, out)
            results["wall_time_s"] = time.perf_counter() - t0
            write_outputs(results, out, figures=False)  # the final wall time includes the plots
    return results


def measurements_file(run: str | Path, experiment: str) -> Path:
    """Where an evaluation run stores an experiment's measurements."""
    return Path(run) / "measurements" / f"{experiment}.safetensors"


def datasets_folder(run: str | Path) -> Path:
    """Where an evaluation run keeps the data sets its experiments write (the runner's ``workdir``)."""
    return Path(run) / "datasets"


def stored_replicates(run: str | Path) -> Path:
    """Where an evaluation run keeps the long-tail benchmark's finished replicates."""
    return datasets_folder(run) / "longtail" / REPLICATES


def check_retabulable(run: Path, config: EvalConfig) -> None:
    """ValueError unless every experiment of ``config`` can be tabulated from the measurements stored in ``run``."""
    missing = [e for e in config.experiments if e in MEASURED and not measurements_file(run, e).is_file()]
    if "longtail" in config.experiments and not all(
            replicate_file(stored_replicates(run), i).is_file() for i in range(config.longtail.replicates)):
        missing.append("longtail (its replicates)")
    if missing:
        raise ValueError(f"{run} has no stored measurements of {', '.join(missing)} (an unfinished experiment, or a "
                         "run made before measurements were stored)")


def copy_measurements(run: Path, replicates: Path, out: Path | None) -> None:
    """The measurements stored in ``run``: the long-tail replicates into ``replicates``, the claims experiments'
    into ``out`` (when given)."""
    pairs = [(stored_replicates(run), replicates)]
    if out is not None:
        pairs.append((run / "measurements", out / "measurements"))
    for source, target in pairs:
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)


def collect_results(model, runner: Runner, experiments: tuple, sections: dict) -> dict:
    """The results of the experiments run so far, with the configuration, machine, model and judge."""
    return {
        "config": {**runner.cfg.to_dict(), "experiments": list(experiments)},
        "environment": environment(),
        "model": {"name": getattr(model, "name", "?"), "folder": str(getattr(model, "folder", "")),
                  "seed_shape": list(model.seed_shape), "d": runner.d, "steps": runner.steps,
                  "guidance": runner.guidance, "inversion_steps": runner.inversion_steps,
                  "sampler": scheduler_label(model.default_scheduler), "inversion": INVERTIBLE[model.default_scheduler],
                  "classes": list(getattr(model, "class_names", []) or []),
                  "head_classes": runner.groups()["head"], "tail_classes": runner.groups()["tail"]},
        "judge": {"references": runner.judge.references.source, "per_class": runner.judge.per_class,
                  "feature_dim": int(next(iter(runner.judge.ref_feats.values())).shape[1]),
                  "calibration": runner.judge.calibration()},
        "metrics": {k: {"title": v[0], "better": v[1]} for k, v in METRICS.items()},
        "experiments": sections,
        "counters": dict(runner.counters),
    }


def write_outputs(results: dict, out: str | Path, figures: bool = True) -> Path:
    """results.json, report.md and (with ``figures``) the PNGs of a run into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, sec in results["experiments"].items():
        files = []
        if name == "norm":
            files.append("norm_bias.png")
            if figures:
                plot_norm(sec["tables"][0], out / files[-1])
        if sec.get("_examples") and sec["_examples"]["rows"]:
            files.append(f"{name}_examples.png")
            if figures:
                plot_grid(sec["_examples"], out / files[-1],
                          sec["_examples"].get("caption") or f"{sec['title']}: one example, each method in a row")
        sec["figures"] = files
    write_json(out / "results.json", results)
    write_text(out / "report.md", report_markdown(results))
    return out


def update_results_page(results: dict, page: str | Path, link: str | None = None) -> bool:
    """Replace the results sections of a Markdown page (docs/results.md) with this run's report: each experiment of
    :data:`~.report.OWN_SECTIONS` (priors, schedulers) between its own markers, with a one-line judge note,
    every other experiment between the seedspace-evaluate markers, with the judge section. Returns False (and
    changes nothing) when a section the run needs has no markers."""
    targets = results_targets(results["experiments"])
    if not all(has_markers(page, begin, end) for begin, end, _ in targets):
        return False
    for begin, end, names in targets:
        part = {**results, "experiments": {n: results["experiments"][n] for n in names}}
        update_marked_file(page, results_section(part, link, judge=(begin, end) == (RESULTS_BEGIN, RESULTS_END)),
                           begin, end)
    return True
