"""``seedspace cluster``: cluster seeds or inverted images in the NAO metric, one centroid image per cluster."""

from __future__ import annotations

import torch

from .. import outputs
from ..apps.runs import check_methods
from ..backends.loading import resolve_model_prior
from ..geometry import CLUSTER_METRICS, cluster, load_prior
from ..seeds import describe_seed, load_seeds
from . import common

COMMAND = "cluster"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="cluster seeds or inverted images (NAO k-means); centroid image, members and a grid per cluster",
        description="Invert a folder of images (or read seeds), cluster them with k-means in the NAO metric "
                    "(k-means++ start, NAO centroids) and render each cluster's centroid. Grid: one row per "
                    "cluster, its centroid then its members.")
    g = p.add_argument_group("inputs")
    g.add_argument("--images", default=None, help="a folder of images (sorted by name) or a comma list of images")
    common.add_seed_options(p, "or use --images")
    g = p.add_argument_group("clustering")
    g.add_argument("--k", type=common.positive_int, required=True, help="number of clusters")
    g.add_argument("--method", default="nao", help=f"distance and centre: {', '.join(CLUSTER_METRICS)}")
    g.add_argument("--seed", type=int, default=0, help="seed of the k-means++ initialisation")
    common.add_prior_option(g)
    common.add_model_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    common.check_sampling_args(args)
    outputs.check_out_available(args.out)
    method = check_methods([args.method], CLUSTER_METRICS)[0]
    items = common.seed_or_image_items(args)
    ref = common.model_ref(args.model)
    model = common.load(ref, args.device, args.dtype, args.batch_size, args.negative_prompt)
    condition, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
    seeds = load_seeds(items, model, condition, args.steps, progress=not args.quiet).seeds
    if args.k > seeds.shape[0]:
        raise common.CLIError(f"--k {args.k} is more than the {seeds.shape[0]} inputs")
    common.note_model_prior(args, model)
    prior = load_prior(resolve_model_prior(args.prior, model), seeds[0].numel()) if method == "nao" else None
    result = cluster(seeds.double(), args.k, method, prior=prior, seed=args.seed)
    params = {**common.sampling_params(args, model, ref, cond_record), "seeds": items, "k": args.k,
              "method": method, "seed": args.seed, "prior": prior.to_record() if prior is not None else None}
    centroids = result.centroids.float()
    steps, guidance = params["steps"], params["guidance"]
    images = outputs.to_uint8(model.generate(centroids, condition, steps, guidance, progress=not args.quiet))
    originals = _member_images(model, items, seeds, condition, steps, guidance, args.quiet)
    clusters = [{"cluster": j, "members": [int(i) for i in result.members(j)],
                 "inputs": [describe_seed(items[i]) for i in result.members(j)]} for j in range(args.k)]
    folder = outputs.allocate_run_dir(COMMAND, args.out)
    record = outputs.RunRecord(folder, COMMAND, params, model=params["model"], clusters=clusters,
                               objective=result.objective)
    with record.guard():
        outputs.save_seeds(folder / "centroids.safetensors", {"seeds": centroids.contiguous(),
                                                              "labels": torch.from_numpy(result.labels).contiguous()})
        record.add_file(folder / "centroids.safetensors")
        for j, image in enumerate(images):
            text = outputs.JSON_PREFIX + outputs.canonical_json({"command": COMMAND, "params": params,
                                                                 "cluster": clusters[j]})
            outputs.save_png(folder / f"centroid_{j:02d}.png", image, text)
            record.add_file(folder / f"centroid_{j:02d}.png")
        rows = [[images[j]] + [originals[i] for i in result.members(j)] for j in range(args.k)]
        width = max(len(r) for r in rows)
        grid = outputs.make_grid(rows, [f"cluster {j} ({len(r) - 1})" for j, r in enumerate(rows)],
                                 ["centroid"] + [""] * (width - 1))
        outputs.save_png(folder / "grid.png", grid, outputs.JSON_PREFIX + outputs.canonical_json(
            {"command": COMMAND, "params": params}))
        record.add_file(folder / "grid.png")
    print(f"wrote {folder}: {args.k} clusters of {seeds.shape[0]} inputs, centroid_NN.png, centroids.safetensors, "
          f"grid.png, run.json")
    return 0


def _member_images(model, items, seeds, condition, steps, guidance, quiet):
    """The inputs as images: image inputs as read, seeds rendered."""
    if all("image" in it for it in items):
        return outputs.to_uint8(model.load_images([it["image"] for it in items]))
    return outputs.to_uint8(model.generate(seeds, condition, steps, guidance, progress=not quiet))
