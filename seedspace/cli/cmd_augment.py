"""``seedspace augment``: synthetic training images for rare classes from a few references per class."""

from __future__ import annotations

import sys

from ..checks import LARGE_JOB_BYTES
from ..methods.augment import CONDITIONS, EXECUTORS, METHODS, STRATEGIES, AugmentError, AugmentSettings, augment
from ..methods.augment.references import testbed_split
from . import common

COMMAND = "augment"


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="generate a training data set for rare classes from a few reference images per class",
        description="From k reference images per class, generate N images per class and write an ImageFolder data "
                    "set OUT/<class>/<class>_<index>.png with manifest.jsonl (one line per image: class, strategy, "
                    "method, sampler, steps, guidance and where its seed came from) and run.json. Strategies: random "
                    "(random seeds), centroid (centroids of subsets of the references' DDIM inversions), clusters "
                    "(the inversions split into --clusters NAO clusters, centroids of subsets within each), paths "
                    "(points on the geodesics between their centroid and the inversions and between inversions, t "
                    "by a Sobol sequence), seedselect (paths refined by a few SeedSelect steps); --method picks the "
                    "geometry. The plan is fixed by the inputs and --seed, the arithmetic by --batch-size, --threads and "
                    "--dtype: on one machine the bytes do not depend on the executor, the workers, the shard size or "
                    "order; --resume continues an interrupted run with the recorded settings.",
        epilog="Example: seedspace augment --testbed-split 5 --out data/paths --per-class 100 --strategy paths "
               "--method nao --condition unconditional")
    g = p.add_argument_group("data set")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--references", metavar="DIR", help="a folder of class sub-folders holding the reference images")
    src.add_argument("--testbed-split", type=int, metavar="K",
                     help="take K reference images per class from the testbed's long-tailed training split")
    g.add_argument("--out", required=True, help="the data set folder (must not exist, unless --resume)")
    g.add_argument("--per-class", type=int, required=True, metavar="N", help="images per class")
    g.add_argument("--strategy", default="paths", choices=STRATEGIES, help="how seeds are made from the references")
    g.add_argument("--method", default="nao", choices=tuple(METHODS),
                   help="geometry of centroids and paths (normalized: centroids only)")
    g.add_argument("--condition", default="class", choices=CONDITIONS,
                   help="generate with the class (folder names are the model's classes or prompts) or unconditionally "
                        "(the class given only by the references)")
    g.add_argument("--seed", type=int, default=0, help="the integer every random choice of the plan derives from")
    g.add_argument("--clusters", type=int, default=None, metavar="M",
                   help="clusters of --strategy clusters, 1 <= M <= references per class (default: min(3, k // 2))")
    g.add_argument("--seedselect-steps", type=int, default=3, help="SeedSelect steps of --strategy seedselect")
    common.add_prior_option(g)
    g.add_argument("--keep-blank", action="store_true",
                   help="write images that come out blank (the model drew nothing) as data, marked in the manifest, "
                        "instead of failing")
    g.add_argument("--resume", action="store_true", help="continue the run in --out, keeping its finished shards")
    g.add_argument("--allow-large", action="store_true",
                   help=f"run even when the data set would hold more than {LARGE_JOB_BYTES >> 20} MB of pixels "
                        "(refused without it)")

    m = p.add_argument_group("model and sampling")
    common.add_model_choice(m)
    m.add_argument("--steps", "--num-inference-steps", dest="steps", type=int, default=None,
                   help="DDIM steps (default: the model's)")
    m.add_argument("--inversion-steps", type=int, default=None, help="DDIM inversion steps (default: --steps)")
    m.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance (default: the model's)")
    common.add_size_options(m)
    common.add_fit_option(m)
    m.add_argument("--batch-size", type=int, default=16, help="images per model call")
    m.add_argument("--shard-size", type=int, default=64,
                   help="images per shard (the unit of work and of resuming), a multiple of --batch-size")
    m.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads every inversion and image is computed with, in this process and in each "
                        "Ray worker (default: the resumed run's, else torch's count in this process, whatever the "
                        "executor). Part of what fixes the bytes: run.json records it")
    m.add_argument("--quiet", action="store_true", help="no progress bars")

    x = p.add_argument_group("execution")
    x.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local: in this process; ray: Ray actors (pip install seedspace[ray])")
    x.add_argument("--workers", type=int, default=1, help="Ray workers (actors), each loading the model once")
    x.add_argument("--ray-address", default=None, help="join this running Ray cluster (default: start a local one)")
    x.add_argument("--cpus-per-worker", type=int, default=None,
                   help="CPUs Ray reserves for each worker (default: the run's thread count, which each worker "
                        "computes with: fewer CPUs than threads oversubscribes the cores)")
    x.add_argument("--retries", type=int, default=3, help="times a shard is retried when its Ray worker dies")
    p.set_defaults(func=run)


def run(args) -> int:
    settings = AugmentSettings(
        per_class=args.per_class, strategy=args.strategy, method=args.method, condition=args.condition, seed=args.seed,
        steps=args.steps, guidance=args.guidance_scale, inversion_steps=args.inversion_steps,
        seedselect_steps=args.seedselect_steps, shard_size=args.shard_size, batch_size=args.batch_size,
        dtype=args.dtype, prior=args.prior, clusters=args.clusters, threads=args.threads, height=args.height,
        width=args.width, fit=args.fit, keep_blank=args.keep_blank)
    ray_options = {"cpus_per_worker": args.cpus_per_worker, "retries": args.retries} if args.executor == "ray" else None
    model = common.model_ref(args.model)
    references = args.references
    if args.testbed_split is not None:
        references = testbed_split(common.load(model, "cpu", args.dtype), args.testbed_split, args.seed)
    try:
        result = augment(model, references, args.out, settings, executor=args.executor, workers=args.workers,
                         ray_address=args.ray_address, device=args.device, resume=args.resume,
                         ray_options=ray_options, allow_large=args.allow_large)
    except AugmentError as exc:
        print(f"seedspace: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.out}: {result.images} images in {len(result.classes)} classes ({result.generated} generated "
          f"now, {result.shards_run} of {result.shards} shards), manifest.jsonl, run.json")
    return 0
