"""Experiment 9 (opt-in, ``--experiments schedulers``), samplers: do the interpolation and centroid findings hold
when the same seeds are rendered by another deterministic sampler?

The seeds are those of experiments 2 and 3 (:func:`.interpolation.endpoints`, :func:`.interpolation.arm_paths`,
:func:`.centroid.centroid_input_sets`, :func:`.centroid.centroid_seeds`): DDIM inversions of real few-shot images, the NAO and
SLERP paths between two of them, and the NAO, COG and normalized centroids of k of them. They are generated once per
*run* (a sampler at a number of steps) and scored by the same judge (:class:`.experiment.SeedPlan`).

Budgets: for each budget B, every sampler runs at B steps ("equal steps") and at the most steps whose number of
network evaluations (NFE, :func:`~seedspace.backends.sampling.network_evaluations`) is at most B ("equal NFE"). DDIM,
DPM-Solver++ 2M, Euler and UniPC evaluate the network once per step, so both are the same run; Heun evaluates it twice
per step except the last (2 s - 1 NFE for s steps), so equal NFE runs it at floor((B + 1) / 2) steps.
"""

from __future__ import annotations

import logging

import torch

from ..backends.sampling import check_scheduler, network_evaluations, scheduler_label
from ..scoring.metrics import image_psnr
from .centroid import centroid_input_sets, centroid_seeds
from .config import METRICS
from .experiment import SeedPlan, arm_metrics, row, section
from .interpolation import arm_paths, endpoints
from .paired import MIN_PAIRED_ITEMS, paired_stats, verdict
from .runner import Runner

log = logging.getLogger(__name__)

JUDGE_METRICS = ["acc", "conf", "fdist"]
TABLE_METRICS = JUDGE_METRICS + ["fid", "kid"]
BASELINE = "ddim"  # every other sampler is compared with it on the same seeds


def sampler_runs(model, samplers, budgets) -> list[dict]:
    """The runs of the study: for each budget B each sampler at B steps ('equal steps') and at the most steps s with
    NFE(s) <= B ('equal NFE'); a run in both (or in several budgets) is listed once, with every setting it is in.
    Each run: {"key", "sampler", "steps", "nfe", "budget" (its first budget), "settings"}; ValueError for a
    sampler that does not fit the model or a budget below 1."""
    runs: dict[tuple, dict] = {}
    for budget in budgets:
        if isinstance(budget, bool) or int(budget) != budget or int(budget) < 1:
            raise ValueError(f"sampler budgets must be whole numbers of steps >= 1, got {budget!r}")
        budget = int(budget)
        for name in samplers:
            name = check_scheduler(name, model.prediction_type, model.name)
            steps_for_nfe = next(s for s in range(budget, 0, -1) if network_evaluations(model, name, s) <= budget)
            for steps, setting in ((budget, "equal steps"), (steps_for_nfe, "equal NFE")):
                run = runs.setdefault((name, steps), {
                    "key": f"{name}@{steps}", "sampler": name, "steps": steps, "budget": budget, "settings": [],
                    "nfe": network_evaluations(model, name, steps)})
                if f"{setting} {budget}" not in run["settings"]:
                    run["settings"].append(f"{setting} {budget}")
    return list(runs.values())


def run_label(run: dict) -> dict:
    """The label columns of a run: sampler, steps, NFE and the settings it belongs to."""
    settings = {}
    for text in run["settings"]:  # 'equal steps 25', 'equal NFE 25' -> 'B = 25: steps, NFE'
        kind, budget = text.rsplit(" ", 1)
        settings.setdefault(budget, []).append(kind.split()[-1])
    return {"sampler": scheduler_label(run["sampler"]), "steps": run["steps"], "NFE": run["nfe"],
            "equal": "; ".join(f"{', '.join(kinds)} (B = {b})" for b, kinds in settings.items())}


def verdicts(stats: dict, a: str, b: str, n: int) -> str:
    """The metrics whose paired CI excludes 0, with the method it favours (see :func:`.paired.verdict`)."""
    if n < MIN_PAIRED_ITEMS:
        return f"too few items for a verdict (n < {MIN_PAIRED_ITEMS})"
    found = [f"{METRICS[m][0]}: {v}" for m, st in stats.items()
             if (v := verdict(st, a, b, METRICS[m][1], n)) != "no clear difference"]
    return "; ".join(found) or "no clear difference"


def _key(*parts: str) -> str:
    """The key of a run's experiment and method in the measurements (and the section's items)."""
    return "/".join(parts)


def measure_schedulers(runner: Runner) -> dict:
    """The same seeds (interpolation frames, centroids) rendered by every run (sampler, steps), and the endpoints'
    reconstructions, scored: per-item scores and judge features per run, experiment and method; the example grid."""
    cfg, model, notes = runner.cfg, runner.model, []
    runs = sampler_runs(model, cfg.schedulers.samplers, cfg.schedulers.budgets)
    T, k = int(cfg.schedulers.points), int(cfg.schedulers.k)
    # the centroid inversions first (the larger set), then the interpolation pairs take the first of them from the cache
    classes = runner.classes()
    inv = runner.inversions(classes, max(cfg.inversions_per_class, k))
    sets = centroid_input_sets(runner, classes, inv, notes, cfg.schedulers.sets, ks=(k,))
    _, _, pairs, A, B = endpoints(runner, notes, cfg.schedulers.pairs_per_class)
    plan, recon = SeedPlan(), SeedPlan()  # the same seeds for every run
    all_pairs = list(range(len(pairs)))
    paths, _ = arm_paths(A, B, T, {m: (m, None, all_pairs) for m in cfg.schedulers.interp_methods})
    for m in cfg.schedulers.interp_methods:
        for q, (c, *_rest) in enumerate(pairs):
            plan.add(("interpolation", m, q), paths[m][q, 1:-1].reshape(-1, *model.seed_shape), c)
    for q, (c, _, _, idx) in enumerate(sets):
        for m in cfg.schedulers.centroid_methods:
            cen, _, _ = centroid_seeds(inv[c][0][idx], m, 2, 0, ())
            plan.add(("centroid", m, q), cen[None], c)
    ends = sorted({(c, i) for c, i, j, _ in pairs} | {(c, j) for c, i, j, _ in pairs})
    for c, i in ends:
        recon.add((c, i), inv[c][0][i][None], c)
    log.info(f"schedulers: {len(runs)} runs x ({len(plan)} images + {len(recon)} reconstructions)")
    guidance1 = float(getattr(model, "inversion_guidance", 1.0))
    arms = {"interpolation": (cfg.schedulers.interp_methods, pairs), "centroid": (cfg.schedulers.centroid_methods, sets)}
    items, feats, recon_items, examples = {}, {}, {}, {"rows": [], "row_labels": [], "col_labels": []}
    for run in runs:
        key, sampling = run["key"], {"steps": run["steps"], "scheduler": run["sampler"]}
        log.info(f"schedulers: {scheduler_label(run['sampler'])}, {run['steps']} steps ({run['nfe']} NFE)")
        scored = plan.generate(runner, **sampling)
        for exp, (methods, units) in arms.items():
            for m in methods:
                its, fs = [], []
                for q, unit in enumerate(units):
                    its.append({"key": list(unit[:3]), "class": unit[0], **scored.means((exp, m, q))})
                    fs.append(scored.feats((exp, m, q)))
                items[_key(key, exp, m)], feats[_key(key, exp, m)] = its, fs
        for m in cfg.schedulers.interp_methods:
            examples["rows"].append(scored.images_of(("interpolation", m, 0)))
            examples["row_labels"].append(f"{scheduler_label(run['sampler'])} {run['steps']}: {m}")
        rs = recon.generate(runner, guidance=guidance1, **sampling)
        psnr = image_psnr(torch.cat([rs.images_of(e) for e in ends]), torch.stack([inv[c][1][i] for c, i in ends]))
        recon_items[key] = [{"key": [c, i], "class": c, "psnr": float(p), **rs.means((c, i))}
                            for (c, i), p in zip(ends, psnr)]
    examples["col_labels"] = [f"t{t + 1}" for t in range(T)]
    examples["caption"] = "Samplers: the same seeds rendered by each sampler"
    examples["title"] = f"the first path (class {pairs[0][0]}), one row per sampler, steps and method"
    return {"pairs": len(pairs), "sets": len(sets), "reconstructions": len(ends), "items": items, "feats": feats,
            "recon_items": recon_items, "notes": notes, "examples": examples}


def tabulate_schedulers(runner: Runner, measured: dict) -> dict:
    """The section of :func:`measure_schedulers`'s measurements."""
    cfg = runner.cfg
    runs = sampler_runs(runner.model, cfg.schedulers.samplers, cfg.schedulers.budgets)
    T, k = int(cfg.schedulers.points), int(cfg.schedulers.k)
    heun = [r for r in runs if r["sampler"] == "heun"]
    sec = section("Samplers", (
        f"The seeds of the interpolation and centroid experiments rendered by {len({r['sampler'] for r in runs})} "
        "deterministic samplers: "
        f"{', '.join(dict.fromkeys(scheduler_label(r['sampler']) for r in runs))}. Seeds: DDIM inversions (guidance 1, "
        f"{runner.inversion_steps} steps) of real few-shot images, the only inversion this model has (the other "
        "samplers have none), so every sampler renders seeds found by DDIM. Interpolation: the "
        f"{' and '.join(cfg.schedulers.interp_methods)} paths between {cfg.schedulers.pairs_per_class} pair(s) of inversions "
        f"per class ({T} interior frames each); centroids: {', '.join(cfg.schedulers.centroid_methods)} of k = {k} "
        f"inversions ({cfg.schedulers.sets} input set(s) per class); the same pairs and sets as the first ones of those "
        f"experiments. For each budget B in {list(cfg.schedulers.budgets)}, every sampler runs at B steps (equal steps) and "
        "at the most steps within B network evaluations (equal NFE; NFE = guided network evaluations, each a "
        "conditional and an unconditional pass at guidance ≠ 1)"
        + ("; Heun costs 2 NFE per step except the last (2s − 1), so it runs at "
           + ", ".join(f"{r['steps']} steps = {r['nfe']} NFE" for r in heun) if heun else "")
        + f". Guidance {runner.guidance:g}; endpoint reconstructions at guidance 1."))
    sec["notes"] += measured["notes"]
    items, feats, recon_items = measured["items"], measured["feats"], measured["recon_items"]
    arms = {"interpolation": cfg.schedulers.interp_methods, "centroid": cfg.schedulers.centroid_methods}
    sec["items"] = items
    sec["_examples"] = measured["examples"]

    def method_rows(exp: str) -> list:
        out = []
        for run in runs:
            for m in arms[exp]:
                its = items[_key(run["key"], exp, m)]
                met = arm_metrics(runner, its, JUDGE_METRICS, {"fid": feats[_key(run["key"], exp, m)]},
                                  sorted({it["class"] for it in its}), "sched", exp, run["key"], m)
                out.append(row({**run_label(run), "method": m}, met, n_items=len(its),
                               n_images=len(its) * (T if exp == "interpolation" else 1)))
        return out

    sec["tables"].append({"name": "schedulers_interpolation", "title": f"Interpolation frames ({measured['pairs']} paths x "
                          f"{T} frames per method and run)", "metrics": TABLE_METRICS,
                          "rows": method_rows("interpolation")})
    sec["tables"].append({"name": "schedulers_centroid", "title": f"Centroid images (k = {k}, {measured['sets']} input sets "
                          "per method and run)", "metrics": TABLE_METRICS, "rows": method_rows("centroid")})
    recon_rows = []
    for run in runs:
        its = recon_items[run["key"]]
        met = {m: runner.stat([it[m] for it in its], "sched-recon", run["key"], m) for m in ("psnr", "acc")}
        recon_rows.append(row(run_label(run), met, n_items=len(its), n_images=len(its)))
    sec["tables"].append({"name": "schedulers_reconstruction", "title": f"Endpoint reconstructions ({measured['reconstructions']} "
                          "inverted images regenerated at guidance 1 by each sampler; PSNR against the real image)",
                          "metrics": ["psnr", "acc"], "rows": recon_rows})

    def diff_row(label: dict, exp: str, a_key: str, b_key: str, a: str, b: str, *names) -> dict:
        stats, n = paired_stats(runner, items[a_key], items[b_key], feats[a_key], feats[b_key], TABLE_METRICS,
                                "sched-paired", *names)
        return row(label, stats, n_items=n, n_images=n * (T if exp == "interpolation" else 1),
                   verdict=verdicts(stats, a, b, n))

    within = []
    for run in runs:
        for exp, methods in arms.items():
            for b in methods[1:]:
                a = methods[0]
                within.append(diff_row({**run_label(run), "experiment": exp, "comparison": f"{a} − {b}"}, exp,
                                       _key(run["key"], exp, a), _key(run["key"], exp, b), a, b, run["key"], exp, a, b))
    sec["tables"].append({"name": "schedulers_within", "title": f"{cfg.schedulers.interp_methods[0]} − baseline within "
                          "each run (paired over the same paths / input sets; cells: a − b)",
                          "metrics": TABLE_METRICS, "rows": within})
    versus = []
    baselines = {r["budget"]: r for r in runs if r["sampler"] == BASELINE and r["steps"] == r["budget"]}
    for run in runs:
        base = baselines.get(run["budget"])
        if base is None or run is base:
            continue
        a, b = scheduler_label(run["sampler"]), scheduler_label(BASELINE)
        for exp, methods in arms.items():
            for m in methods:
                versus.append(diff_row({**run_label(run), "experiment": exp, "method": m}, exp, _key(run["key"], exp, m),
                                       _key(base["key"], exp, m), a, b, "vs", run["key"], base["key"], exp, m))
    if versus:
        sec["tables"].append({"name": "schedulers_vs_ddim", "title": "Each sampler − DDIM at the same budget's "
                              "steps, the same seeds and method (paired; cells: sampler − DDIM)",
                              "metrics": TABLE_METRICS, "rows": versus})
    else:
        sec["notes"].append("No sampler − DDIM comparison: DDIM is not among the samplers.")
    sec["notes"].append("Rows of one table have the same n, so their FID-style scores compare; KID is the unbiased "
                        "one. Paired cells: mean difference a − b [95% bootstrap CI]; the verdict lists the metrics "
                        "whose CI excludes 0.")
    return sec
