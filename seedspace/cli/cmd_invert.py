"""``seedspace invert``: images -> seeds (DDIM inversion) with per-image reconstruction PSNR."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import outputs
from ..apps.metrics import image_psnr
from ..apps.provenance import model_record
from ..geometry import norm_report
from . import common

COMMAND = "invert"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="images to seeds (.safetensors) with per-image reconstruction PSNR",
        description="DDIM-invert images (guidance 1, as in the NAO code) to seeds; each seed is regenerated with "
                    "guidance 1 and compared with its image (PSNR, dB). Writes seeds.safetensors (key 'seeds'), "
                    "the reconstructions, a grid (inputs above reconstructions) and run.json.")
    p.add_argument("images", nargs="+", help="image files or folders of images")
    common.add_model_options(p, generate=False)
    p.set_defaults(func=run)



def run(args) -> int:
    common.check_sampling_args(args)
    outputs.check_out_available(args.out)
    paths = common.collect_images(args.images)
    ref = common.model_ref(args.model)
    model = common.load(ref, args.device, args.dtype, args.batch_size, args.negative_prompt)
    common.check_job_size(args, len(paths), len(paths), model)
    cond, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
    steps = int(args.steps or model.default_steps)
    images = model.load_images(paths)
    bs = args.batch_size
    seeds, recon = [], []
    with tqdm(total=len(paths), desc="inverting", unit="image", disable=args.quiet) as bar:
        for start in range(0, len(paths), bs):
            stop = min(len(paths), start + bs)
            s = model.invert(images[start:stop], cond, steps, progress=not args.quiet).float().cpu()
            recon.append(model.generate(s, cond, steps, 1.0, progress=not args.quiet))
            seeds.append(s)
            bar.update(stop - start)
    seeds, recon = torch.cat(seeds), torch.cat(recon)
    scores = [float(s) for s in image_psnr(images, recon)]
    reports = norm_report(seeds)
    names = [p.name for p in paths]
    params = {"model": model_record(model, ref), "condition": cond_record, "steps": steps, "guidance": 1.0,
              "dtype": args.dtype, "batch_size": bs,
              "images": [{"image": str(p.resolve()), "sha256": outputs.file_sha256(p)[:16]} for p in paths]}
    rows = [{"file": str(p), "psnr_db": round(s, 3), "norm_ratio": r.norm_ratio, "zscore": r.zscore,
             "atypical": r.atypical, "ks_pvalue": r.ks_pvalue, "seed_index": i}
            for i, (p, s, r) in enumerate(zip(paths, scores, reports))]

    with outputs.new_run_dir(COMMAND, args.out) as folder:
        record = outputs.RunRecord(folder, COMMAND, params, model=params["model"], images=rows)
    with record.guard():
        outputs.save_seeds(folder / "seeds.safetensors", {"seeds": seeds},
                           {"command": COMMAND, "files": names, "model": ref, "steps": str(steps),
                            "condition": cond_record, "psnr_db": [round(s, 3) for s in scores]})
        record.add_file(folder / "seeds.safetensors")
        text = outputs.JSON_PREFIX + outputs.canonical_json({"command": COMMAND, "params": params})
        inputs8, recon8 = outputs.to_uint8(images), outputs.to_uint8(recon)
        for i, image in enumerate(recon8):
            outputs.save_png(folder / "reconstructions" / f"rec{i:06d}.png", image, text)
        grid = outputs.make_grid([list(inputs8), list(recon8)], ["input", "reconstruction"],
                                 [f"{s:.1f}dB" for s in scores])
        outputs.save_png(folder / "reconstructions.png", grid, text)
        record.add_file(folder / "reconstructions.png")
        record["mean_psnr_db"] = float(np.mean(scores))
    width = max(len(n) for n in names + ["image"])
    print(f"{'image':<{width}}  {'PSNR dB':>8}  {'|x|/sqrt(d)':>11}  {'z':>7}  flag")
    for n, row in zip(names, rows):
        flag = "atypical norm" if row["atypical"] else ""
        print(f"{n:<{width}}  {row['psnr_db']:8.2f}  {row['norm_ratio']:11.4f}  {row['zscore']:7.2f}  {flag}")
    print(f"wrote {folder}: seeds.safetensors ({len(names)} seeds), reconstructions.png, run.json")
    return 0
