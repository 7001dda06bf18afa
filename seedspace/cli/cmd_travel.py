"""``seedspace travel``: seed travel through several keyframes (NAO geodesic per segment), frames + MP4 + GIF."""

from __future__ import annotations

from ..checks import FPS_RANGE, MAX_FRAMES, MAX_UPSCALE
from ..conditions import is_class_conditional
from ..runs.frames import EASINGS
from ..runs.run_settings import TravelSettings, VideoSettings
from ..runs.writers import video_upscale
from . import common
from .runs import run_frames_command

COMMAND = "travel"
MAX_VIDEO_SIDE = 4096  # pixels; H.264 encoders and players stop around here


def register(subparsers, formatter_class) -> None:
    p = subparsers.add_parser(
        COMMAND, formatter_class=formatter_class,
        help="multi-keyframe seed travel: frames, MP4 (H.264) and GIF",
        description="Travel through keyframe seeds along NAO geodesics (or another --method), segment by segment; "
                    "frames are evenly spaced in arc length along each path (then eased), keyframes are not "
                    "duplicated, and the frames stay on disk next to the MP4 and GIF.")
    common.add_seed_options(p, "at least two keyframes, e.g. --seeds 1,2,3,4", default="1,2,3,4")
    g = p.add_argument_group("travel")
    g.add_argument("--method", default="nao", help="path method per segment: nao, slerp, lerp, cog")
    g.add_argument("--frames", default="12",
                   help=f"frames per segment, both keyframes counted, 2 to {MAX_FRAMES}: one number or a comma "
                        "list, one per segment")
    g.add_argument("--loop", action="store_true", help="return from the last keyframe to the first")
    g.add_argument("--easing", default="linear", choices=EASINGS, help="frame positions along each segment")
    g.add_argument("--fps", type=float, default=12.0,
                   help=f"frames per second of the MP4 and GIF, {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    g.add_argument("--upscale", type=int, default=0,
                   help=f"nearest-neighbour video upscaling factor up to {MAX_UPSCALE}; 0 = smallest factor giving "
                        f">= 256 px (videos are at most {MAX_VIDEO_SIDE} px wide and high)")
    g.add_argument("--formats", default="mp4,gif", help="videos to write: mp4, gif, both, or 'none'")
    common.add_prior_option(g)
    common.add_model_options(p, resume=True)
    p.epilog = ("--class may be a comma list with one class per keyframe (and --prompt a '|'-separated list); "
                "the condition switches at the middle of each segment.")
    p.setting_prefixes = {VideoSettings.field_prefix: ""}  # 'video.fps' -> --fps
    p.set_defaults(func=run)


def new_params(args):
    """(parameters, model) of a new run from the command-line options."""
    spec = {"none": "", "both": "mp4,gif"}.get(args.formats.strip(), args.formats)
    video = VideoSettings(formats=[f.strip() for f in spec.split(",") if f.strip()], fps=args.fps,
                          upscale=args.upscale)
    own = TravelSettings.checked(method=args.method.strip(), frames=args.frames, loop=args.loop, easing=args.easing,
                                 video=video)
    items = common.seed_items_from_args(args)
    ref = common.model_ref(args.model)
    model = common.load_for(args, ref)
    side = max(model.image_shape[1:]) * video_upscale(args.upscale, model.image_shape[1:])
    if video.formats and side > MAX_VIDEO_SIDE:
        raise common.CLIError(f"--upscale {args.upscale} makes {side} px videos; the limit is {MAX_VIDEO_SIDE} px")
    prompt = args.prompt
    if prompt is not None and "|" in prompt:
        prompt = [p.strip() for p in prompt.split("|")]
    if isinstance(prompt, list):
        if is_class_conditional(model):
            raise common.CLIError(f"{model.name} is class-conditional: use --class, not --prompt")
        cond_record = {"prompt": prompt, "negative_prompt": getattr(model, "negative_prompt", "")}
    else:
        cond, cond_record = common.resolve_condition(model, args.class_, prompt, args, allow_list=True)
        if "prompt" in cond_record:
            cond_record["prompt"] = cond[0]
        elif cond_record.get("class") is not None and len(cond_record["class"]) == 1:
            cond_record = {"class": cond_record["class"][0], "class_name": cond_record["class_name"][0]}
    return common.frame_record(args, TravelSettings, model, ref, cond_record, items, own), model


def run(args) -> int:
    return run_frames_command(args, COMMAND, new_params)
