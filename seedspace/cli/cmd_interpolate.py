"""``seedspace interpolate``: frames along a path between two seeds (integers, seed files or inverted images)."""

from __future__ import annotations

import torch

from .. import outputs
from . import common, frames

COMMAND = "interpolate"
COMPARE_DEFAULT = "lerp,slerp,cog,nao"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="frames along a seed path between two endpoints (grid, frames, path seeds, run.json)",
        description="Interpolate between two seeds (integers, .safetensors seed files or images, which are "
                    "DDIM-inverted first) and render the frames. t = 0 is the first endpoint; for NAO paths t is "
                    "the arc-length fraction.")
    common.add_seed_options(p, "exactly two endpoints, e.g. --seeds 11,42", default="11,42")
    g = p.add_argument_group("path")
    g.add_argument("--method", default="nao", help="interpolation method: lerp, slerp, cog, nao (or reference)")
    g.add_argument("--compare", nargs="?", const=COMPARE_DEFAULT, default=None, metavar="METHODS",
                   help=f"one grid row per method in one grid (bare --compare: {COMPARE_DEFAULT}); overrides --method")
    g.add_argument("--frames", type=common.positive_int, default=9, help="frames per path, endpoints included")
    common.add_model_options(p, resume=True)
    p.set_defaults(func=run)


def check_methods(names, allowed, what="method") -> list[str]:
    names = [m.strip() for m in names if m.strip()]
    if not names:
        raise common.CLIError(f"no {what} given")
    for m in names:
        if m not in allowed:
            raise common.CLIError(f"unknown {what} {m!r}; choose from {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise common.CLIError(f"duplicate {what} in {','.join(names)}")
    return names


def plan(params: dict, model, progress: bool = False) -> common.Plan:
    """Endpoint seeds -> path seeds (one row per method) with per-frame metadata; deterministic in params."""
    import seedspace as ss

    cond = common.condition_from_record(params["condition"])
    seeds, entries = common.resolve_seeds(params["seeds"], model, cond, params["steps"], progress)
    if seeds.shape[0] != 2:
        raise common.CLIError(f"interpolate needs exactly two endpoint seeds, got {seeds.shape[0]}")
    n, methods = params["frames"], params["methods"]
    if n < 2:
        raise common.CLIError("--frames must be >= 2")
    rows, meta = [], []
    for r, method in enumerate(methods):
        rows.append(ss.interpolate(seeds[0], seeds[1], steps=n, method=method))
        for j in range(n):
            index = r * n + j
            name = f"frame{j:06d}.png" if len(methods) == 1 else f"{method}/frame{j:06d}.png"
            meta.append({"index": index, "file": f"frames/{name}", "method": method, "row": r, "position": j,
                         "t": j / (n - 1), "segment": 0, "endpoints": entries,
                         "seed_file": "seeds.safetensors", "seed_index": index})
    path = torch.cat(rows).float()
    return common.Plan(path, [cond] * path.shape[0], meta, {"endpoint_seeds": seeds})


def run(args) -> int:
    import seedspace as ss

    common.check_sampling_args(args)
    folder, params, model = common.resumed_run(args, COMMAND)
    if params is None:
        outputs.check_out_available(args.out)
        methods = check_methods((args.compare or args.method).split(","), ss.INTERPOLATION_METHODS)
        if args.frames < 2:
            raise common.CLIError("--frames must be >= 2")
        items = common.seed_items_from_args(args)
        ref = common.model_ref(args.model)
        model = common.load(ref, args.device, args.dtype, args.batch_size, args.negative_prompt)
        _, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
        params = {**common.sampling_params(args, model, ref, cond_record), "seeds": items, "methods": methods,
                  "frames": args.frames}
    methods, n = params["methods"], params["frames"]
    the_plan = plan(params, model, progress=not args.quiet)
    folder, record = common.open_record(args, COMMAND, params, folder, "seeds.safetensors", the_plan.seeds,
                                        methods=methods, endpoints=the_plan.frames[0]["endpoints"])
    with record.guard():
        seeds_meta = {"command": COMMAND, "methods": methods, "frames": n, "model": params["model"]["id"]}
        outputs.save_seeds(folder / "seeds.safetensors",
                           {"seeds": the_plan.seeds, "endpoints": the_plan.extra["endpoint_seeds"]}, seeds_meta)
        record.add_file(folder / "seeds.safetensors")
        images = frames.render_plan(args, COMMAND, model, params, the_plan, folder, record)
        grid = outputs.make_grid([list(images[r * n:(r + 1) * n]) for r in range(len(methods))], methods,
                                 [f"t={j / (n - 1):.2f}" for j in range(n)])
        outputs.save_png(folder / "grid.png", grid, outputs.JSON_PREFIX + outputs.canonical_json(
            {"command": COMMAND, "params": params}))
        record.add_file(folder / "grid.png")
    print(f"wrote {folder}: grid.png, {len(images)} frames, seeds.safetensors, run.json")
    return 0
