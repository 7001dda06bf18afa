"""``seedspace norms``: norm and Gaussianity diagnostics of seeds or inversions under the chi prior."""

from __future__ import annotations

import math

from .. import outputs
from ..runs.provenance import model_record
from ..runs.run_settings import NormsSettings
from ..runs.writers import KS_ALPHA, NORMS_COMMAND as COMMAND, write_norms_run
from ..settings import model_sampling
from . import common

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


def run(args) -> int:
    common.check_sampling_args(args)
    outputs.check_out_available(args.out)
    NormsSettings.checked(typical=args.typical)
    items = common.seed_or_image_items(args)
    ref = common.model_ref(args.model)
    model = common.load_for(args, ref)
    common.check_job_size(args, len(items), 0, model)
    needs_condition = any("image" in it for it in items)
    _, cond_record = (common.resolve_condition(model, args.class_, args.prompt, args) if needs_condition
                      else (None, {}))
    params = NormsSettings(model=model_record(model, ref), condition=cond_record,
                           steps=model_sampling(model, args.steps, None)[0], seeds=items, typical=args.typical,
                           dtype=args.dtype, batch_size=args.batch_size, **common.size_params(model),
                           **common.image_params(args, model, items)).to_record()
    folder, summary = write_norms_run(params, model, args.out)
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


