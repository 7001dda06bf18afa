"""``seedspace cluster``: cluster seeds or inverted images in the NAO metric, one centroid image per cluster."""

from __future__ import annotations

from .. import outputs
from ..geometry import CLUSTER_METRICS, cluster, load_prior
from ..backends.run_prior import run_prior_of
from ..runs.writers import CLUSTER_COMMAND as COMMAND
from ..runs.run_settings import ClusterSettings
from ..runs.writers import write_cluster_run
from ..seeds import image_paths, load_seeds
from . import common


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
    own = ClusterSettings.checked(k=args.k, method=args.method.strip(), seed=args.seed)
    items = common.seed_or_image_items(args)
    ref = common.model_ref(args.model)
    model = common.load_for(args, ref)
    condition, cond_record = common.resolve_condition(model, args.class_, args.prompt, args)
    seeds = load_seeds(items, model, condition, args.steps).seeds
    if args.k > seeds.shape[0]:
        raise common.CLIError(f"--k {args.k} is more than the {seeds.shape[0]} inputs")
    method = own["method"]
    params = {**common.sampling_params(args, model, ref, cond_record), "seeds": items, **own,
              **common.image_params(args, model, items)}
    if method == "nao":  # the prior is recorded as every command records it: absent for chi(d)
        record, prior_note = run_prior_of(args.prior, model, params["steps"], params.get("scheduler"),
                                          bool(image_paths(items)), seeds)
        params.update({} if record is None else {"prior": record})
        if prior_note:
            common.log.info(prior_note)
    params = ClusterSettings.from_record(params).to_record()
    prior = load_prior(params.get("prior", "chi"), seeds[0].numel()) if method == "nao" else None
    result = cluster(seeds.double(), args.k, method, prior=prior, seed=args.seed)
    folder = write_cluster_run(params, model, seeds, result, args.out)
    print(f"wrote {folder}: {args.k} clusters of {seeds.shape[0]} inputs, centroid_NN.png, centroids.safetensors, "
          f"grid.png, run.json")
    return 0

