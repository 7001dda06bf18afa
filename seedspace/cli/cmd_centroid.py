"""``seedspace centroid``: the centroid of several seeds or inverted images, and the paths to each input."""

from __future__ import annotations

from .. import outputs
from ..checks import MAX_FRAMES, check_frames
from ..geometry import CENTROID_METHODS
from ..seeds import describe_seed
from . import common
from .runs import Summary, run_frames_command

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
                   help=f"images per path from the centroid to each input, both ends counted, 2 to {MAX_FRAMES}")
    common.add_prior_option(g)
    common.add_model_options(p, resume=True)
    p.set_defaults(func=run)


def new_params(args):
    """(parameters, model) of a new run from the command-line options."""
    method = common.check_methods([args.method], CENTROID_METHODS)[0]
    check_frames(args.frames, "--frames")
    return common.new_run_params(args, common.seed_or_image_items(args), method=method, frames=args.frames)


def finish(folder, record, params, plan, images, model) -> Summary:
    """One grid row per input: the path from the centroid to it, then the input image itself."""
    entries = plan.record["inputs"]
    k, n = len(entries), params["frames"]
    rows = [list(images[1 + i * n: 1 + (i + 1) * n]) for i in range(k)]
    image_entries = [i for i, e in enumerate(entries) if "image" in e]
    if image_entries:
        originals = outputs.to_uint8(model.load_images([entries[i]["image"] for i in image_entries]))
        for row, original in zip(image_entries, originals):
            rows[row].append(original)
    cols = ["centroid"] + [f"t={j / (n - 1):.2f}" for j in range(1, n - 1)] + ["input"] + \
        (["image"] if image_entries else [])
    grid = outputs.make_grid(rows, [describe_seed(e) for e in entries], cols)
    return Summary(grid, f"centroid.png, {k} paths of {n} frames, grid.png, seeds, run.json")


def run(args) -> int:
    return run_frames_command(args, COMMAND, new_params, finish)
