"""``seedspace invert``: images -> seeds (DDIM inversion) with per-image reconstruction PSNR."""

from __future__ import annotations

from .. import outputs
from ..runs.writers import INVERT_COMMAND as COMMAND
from ..runs.writers import invert_parameters, write_invert_run
from ..settings import model_sampling
from . import common


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
    model = common.load_for(args, ref)
    common.check_job_size(args, len(paths), len(paths), model)
    _, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
    params = invert_parameters(model, ref, paths, cond_record, model_sampling(model, args.steps, None)[0], args.dtype,
                               args.batch_size, **common.size_params(model),
                               **common.image_params(args, model, [{"image": str(p)} for p in paths]))
    folder, rows = write_invert_run(params, model, paths, args.out)
    names = [p.name for p in paths]
    width = max(len(n) for n in names + ["image"])
    print(f"{'image':<{width}}  {'PSNR dB':>8}  {'|x|/sqrt(d)':>11}  {'z':>7}  flag")
    for n, row in zip(names, rows):
        flag = "atypical norm" if row["atypical"] else ""
        print(f"{n:<{width}}  {row['psnr_db']:8.2f}  {row['norm_ratio']:11.4f}  {row['zscore']:7.2f}  {flag}")
    print(f"wrote {folder}: seeds.safetensors ({len(names)} seeds), reconstructions.png, run.json")
    return 0
