"""``seedspace interpolate``: frames along a path between two seeds (integers, seed files or inverted images)."""

from __future__ import annotations

from ..checks import MAX_FRAMES
from ..runs.run_settings import InterpolateSettings
from . import common
from .runs import run_frames_command

COMMAND = "interpolate"
COMPARE_DEFAULT = "lerp,slerp,cog,nao,nao@chi"  # nao under --prior (the model's) beside the paper's


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="frames along a seed path between two endpoints (grid, frames, path seeds, run.json)",
        description="Interpolate between two seeds (integers, .safetensors seed files or images, which are "
                    "DDIM-inverted first) and render the frames. t = 0 is the first endpoint; for NAO paths t is "
                    "the arc-length fraction.")
    common.add_seed_options(p, "exactly two endpoints, e.g. --seeds 11,42", default="11,42")
    g = p.add_argument_group("path")
    g.add_argument("--method", default="nao", help="interpolation method: lerp, slerp, cog, nao (under --prior), "
                   "nao@chi (NAO under the paper's chi prior) or reference")
    g.add_argument("--compare", nargs="?", const=COMPARE_DEFAULT, default=None, metavar="METHODS",
                   help=f"one grid row per method in one grid (bare --compare: {COMPARE_DEFAULT}); overrides --method")
    g.add_argument("--frames", type=common.positive_int, default=9,
                   help=f"frames per path, endpoints included, 2 to {MAX_FRAMES}")
    common.add_prior_option(g)
    common.add_model_options(p, resume=True)
    p.set_defaults(func=run)


def new_params(args):
    """(parameters, model) of a new run from the command-line options."""
    methods = [m.strip() for m in (args.compare or args.method).split(",") if m.strip()]
    return common.new_run_params(args, InterpolateSettings, common.seed_items_from_args(args), methods=methods,
                                 frames=args.frames)


def run(args) -> int:
    return run_frames_command(args, COMMAND, new_params)
