"""``seedspace norms``: norm and Gaussianity diagnostics of seeds or inversions under the chi prior."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import outputs
from ..apps.provenance import model_record
from ..conditions import condition_from_record
from ..geometry import ChiPrior, norm_report
from ..seeds import describe_seed, load_seeds
from . import common

COMMAND = "norms"
KS_ALPHA = 0.01


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="norm / sqrt(d), chi z-score and percentile, KS test vs N(0, 1); histogram; flags atypical seeds",
        description="Diagnose seeds (integers, seed files, or images, which are inverted first): norm / sqrt(d), "
                    "z-score and percentile of the norm under chi(d), and a Kolmogorov-Smirnov test of the entries "
                    "against N(0, 1). Seeds whose norm falls outside the central --typical interval of chi(d), or "
                    f"whose entries fail the KS test at p < {KS_ALPHA}, are flagged. Writes norms.json and norms.png.")
    common.add_seed_options(p, "e.g. --seeds 1,2,3 or --seeds inversions.safetensors")
    p.add_argument("--images", default=None, help="images or image folders (comma list) to invert and diagnose")
    p.add_argument("--typical", type=float, default=0.999, help="probability of chi(d)'s central 'typical' interval")
    common.add_model_options(p, generate=False)
    p.set_defaults(func=run)


def plot(path: Path, ratios: np.ndarray, d: int, prob: float, flagged: np.ndarray) -> None:
    import matplotlib  # lazy: plotting is heavy to import and only this command's last step needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prior = ChiPrior(d)
    lo, hi = prior.typical_interval(prob)
    lo, hi = lo / math.sqrt(d), hi / math.sqrt(d)
    span = max(hi - lo, 1e-3)
    x_min = max(0.0, min(lo - span, float(ratios.min()) - 0.1 * span))
    x_max = max(hi + span, float(ratios.max()) + 0.1 * span)
    x = np.linspace(x_min, x_max, 600)
    density = np.exp(prior.log_prob(x * math.sqrt(d))) * math.sqrt(d)  # density of |x| / sqrt(d)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.axvspan(lo, hi, color="tab:green", alpha=0.12, label=f"typical ({100 * prob:g}%)")
    bins = np.linspace(x_min, x_max, max(10, min(60, 4 * int(math.sqrt(len(ratios))) + 10)))
    ax.hist(ratios, bins=bins, density=True, color="tab:blue", alpha=0.6, label=f"seeds (n={len(ratios)})")
    ax.plot(x, density, color="black", lw=1.5, label=f"chi({d}) density")
    if len(ratios) <= 50:
        ax.plot(ratios, np.zeros_like(ratios), "|", color="tab:blue", ms=14)
    if flagged.any():
        ax.plot(ratios[flagged], np.zeros(int(flagged.sum())), "x", color="tab:red", ms=9, label="flagged")
    ax.set_xlabel("|x| / sqrt(d)")
    ax.set_ylabel("density")
    ax.set_title(f"seed norms against the chi({d}) prior")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def run(args) -> int:
    common.check_sampling_args(args)
    outputs.check_out_available(args.out)
    if not 0.0 < args.typical < 1.0:
        raise common.CLIError(f"--typical must be in (0, 1), got {args.typical}")
    items = common.seed_or_image_items(args)
    ref = common.model_ref(args.model)
    model = common.load(ref, args.device, args.dtype, args.batch_size, args.negative_prompt)
    common.check_job_size(args, len(items), 0, model)
    needs_condition = any("image" in it for it in items)
    _, cond_record = (common.resolve_condition(model, args.class_, args.prompt, args) if needs_condition
                      else (None, {}))
    params = {"model": model_record(model, ref), "condition": cond_record,
              "steps": int(args.steps or model.default_steps), "seeds": items, "typical": args.typical,
              "dtype": args.dtype, "batch_size": args.batch_size}
    folder, summary = write_norms_run(params, model, args.out, progress=not args.quiet)
    rows, d = summary["seeds"], summary["d"]
    lo, hi = summary["chi"]["typical_interval"]
    width = max(len(r["seed"]) for r in rows + [{"seed": "seed"}])
    print(f"d = {d}, sqrt(d) = {math.sqrt(d):.2f}; typical |x|/sqrt(d) in [{lo / math.sqrt(d):.4f}, "
          f"{hi / math.sqrt(d):.4f}] ({100 * args.typical:g}%)")
    print(f"{'seed':<{width}}  {'|x|/sqrt(d)':>11}  {'z':>7}  {'pct':>6}  {'KS D':>6}  {'KS p':>8}  flags")
    for r in rows:
        print(f"{r['seed']:<{width}}  {r['norm_ratio']:11.4f}  {r['zscore']:7.2f}  {r['percentile']:6.2f}  "
              f"{r['ks_statistic']:6.3f}  {r['ks_pvalue']:8.2g}  {', '.join(r['flags'])}")
    print(f"wrote {folder}: norms.json, norms.png, run.json ({len(summary['flagged'])} flagged)")
    return 0


def write_norms_run(params: dict, model, out=None, base="outputs", progress: bool = False) -> tuple[Path, dict]:
    """Diagnose the seeds of ``params`` (as run.json records them: model, condition, steps, seeds, typical,
    dtype, batch_size) and write the run folder (``out``, or the next ``<base>/norms-NNNNN``): norms.json,
    norms.png, seeds.safetensors, run.json. Returns (folder, the norms.json summary). The command line and
    ``seedspace ui`` share it."""
    typical = params["typical"]
    seeds, entries = load_seeds(params["seeds"], model, condition_from_record(params["condition"]),
                                params["steps"], progress=progress)
    reports = norm_report(seeds, typical_prob=typical)
    d = int(np.prod(model.seed_shape))
    prior = ChiPrior(d)
    rows = []
    for entry, r in zip(entries, reports):
        flags = (["atypical norm"] if r.atypical else []) + (["non-Gaussian entries"] if r.ks_pvalue < KS_ALPHA else [])
        rows.append({"seed": describe_seed(entry), "source": entry, **r.as_dict(), "flags": flags})

    with outputs.new_run_dir(COMMAND, out, base) as folder:
        record = outputs.RunRecord(folder, COMMAND, params, model=params["model"])
    with record.guard():
        lo, hi = prior.typical_interval(typical)
        summary = {"d": d, "sqrt_d": math.sqrt(d), "chi": {"mean": prior.mean, "std": prior.std, "mode": prior.mode,
                                                           "typical_interval": [lo, hi], "typical_prob": typical},
                   "ks_alpha": KS_ALPHA, "seeds": rows,
                   "flagged": [r["seed"] for r in rows if r["flags"]]}
        outputs.write_json(folder / "norms.json", summary)
        ratios = np.array([r["norm_ratio"] for r in rows])
        plot(folder / "norms.png", ratios, d, typical, np.array([bool(r["flags"]) for r in rows]))
        outputs.save_seeds(folder / "seeds.safetensors", {"seeds": seeds},
                           {"command": COMMAND, "model": params["model"]["id"]})
        for name in ("norms.json", "norms.png", "seeds.safetensors"):
            record.add_file(folder / name)
        record["flagged"] = summary["flagged"]
    return folder, summary
