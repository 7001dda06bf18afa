"""``seedspace centroid``: the centroid of several seeds or inverted images, and the paths to each input."""

from __future__ import annotations

from ..checks import MAX_FRAMES
from ..runs.run_settings import CentroidSettings
from . import common
from .runs import run_frames_command

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
    return common.new_run_params(args, CentroidSettings, common.seed_or_image_items(args), method=args.method.strip(),
                                 frames=args.frames)


def run(args) -> int:
    return run_frames_command(args, COMMAND, new_params)
