"""``seedspace centroid``: the centroid of several seeds or inverted images, and the paths to each input."""

from __future__ import annotations


import torch

from .. import outputs
from . import common, frames
from .cmd_interpolate import check_methods

COMMAND = "centroid"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="centroid of seeds or inverted images, with images along the paths to each input",
        description="Invert a folder of images (or read seeds), take their centroid (NAO by default), and render "
                    "the centroid image and the images along the paths from the centroid to each input, as the "
                    "NAO paper uses them. Grid: one row per input, the path frames, then the input image.")
    g = p.add_argument_group("inputs")
    g.add_argument("--images", default=None, help="a folder of images (sorted by name) or a comma list of images")
    common.add_seed_options(p, "or use --images")
    g = p.add_argument_group("centroid")
    g.add_argument("--method", default="nao", help="centroid method: nao, euclidean, normalized, spherical, cog")
    g.add_argument("--frames", type=common.positive_int, default=5,
                   help="images per path from the centroid to each input, both ends counted")
    common.add_model_options(p, resume=True)
    p.set_defaults(func=run)


def plan(params: dict, model, progress: bool = False) -> common.Plan:
    import seedspace as ss

    cond = common.condition_from_record(params["condition"])
    seeds, entries = common.resolve_seeds(params["seeds"], model, cond, params["steps"], progress)
    k, n = seeds.shape[0], params["frames"]
    if k < 2:
        raise common.CLIError(f"a centroid needs at least two inputs, got {k}")
    c, paths = ss.centroid(seeds, method=params["method"], return_paths=True, steps=n)
    c = c.reshape(1, *seeds.shape[1:]).float()
    paths = paths.float()
    meta = [{"index": 0, "file": "centroid.png", "method": params["method"], "t": 0.0, "inputs": entries,
             "seed_file": "centroid.safetensors", "seed_index": 0}]
    for i in range(k):
        for j in range(n):
            index = 1 + i * n + j
            meta.append({"index": index, "file": f"paths/path{i:03d}/frame{j:06d}.png", "method": params["method"],
                         "path": i, "position": j, "t": j / (n - 1) if n > 1 else 0.0,
                         "endpoints": ["centroid", entries[i]], "seed_file": "paths.safetensors",
                         "seed_index": i * n + j})
    all_seeds = torch.cat([c, paths.reshape(k * n, *seeds.shape[1:])])
    return common.Plan(all_seeds, [cond] * all_seeds.shape[0], meta, {"inputs": seeds, "entries": entries})


def run(args) -> int:
    import seedspace as ss

    common.check_sampling_args(args)
    folder, params, model = common.resumed_run(args, COMMAND)
    if params is None:
        outputs.check_out_available(args.out)
        method = check_methods([args.method], ss.CENTROID_METHODS)[0]
        if args.frames < 2:
            raise common.CLIError("--frames must be >= 2 (the centroid and the input)")
        items = common.seed_or_image_items(args)
        ref = common.model_ref(args.model)
        model = common.load(ref, args.device, args.dtype, args.batch_size, args.negative_prompt)
        _, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
        params = {**common.sampling_params(args, model, ref, cond_record), "seeds": items, "method": method,
                  "frames": args.frames}
    method = params["method"]
    the_plan = plan(params, model, progress=not args.quiet)
    entries = the_plan.extra["entries"]
    folder, record = common.open_record(args, COMMAND, params, folder, "paths.safetensors", the_plan.seeds[1:],
                                        method=method, inputs=entries)
    with record.guard():
        k, n = the_plan.extra["inputs"].shape[0], params["frames"]
        meta = {"command": COMMAND, "method": method, "model": params["model"]["id"]}
        outputs.save_seeds(folder / "centroid.safetensors", {"seeds": the_plan.seeds[:1]}, meta)
        outputs.save_seeds(folder / "paths.safetensors", {"seeds": the_plan.seeds[1:]}, {**meta, "frames": n, "paths": k})
        outputs.save_seeds(folder / "inputs.safetensors", {"seeds": the_plan.extra["inputs"]}, meta)
        for name in ("centroid.safetensors", "paths.safetensors", "inputs.safetensors"):
            record.add_file(folder / name)
        images = frames.render_plan(args, COMMAND, model, params, the_plan, folder, record)
        rows = [list(images[1 + i * n: 1 + (i + 1) * n]) for i in range(k)]
        image_entries = [i for i, e in enumerate(entries) if "image" in e]
        if image_entries:
            originals = outputs.to_uint8(common.load_images(model, [entries[i]["image"] for i in image_entries]))
            for row, original in zip(image_entries, originals):
                rows[row].append(original)
        labels = [common.item_label(e) for e in entries]
        cols = ["centroid"] + [f"t={j / (n - 1):.2f}" for j in range(1, n - 1)] + ["input"] + \
            (["image"] if image_entries else [])
        grid = outputs.make_grid(rows, labels, cols if n > 1 else None)
        outputs.save_png(folder / "grid.png", grid,
                         outputs.JSON_PREFIX + outputs.canonical_json({"command": COMMAND, "params": params}))
        record.add_file(folder / "grid.png")
    print(f"wrote {folder}: centroid.png, {k} paths of {n} frames, grid.png, seeds, run.json")
    return 0
