"""``seedspace travel``: seed travel through several keyframes (NAO geodesic per segment), frames + MP4 + GIF."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import outputs
from . import common, frames
from .cmd_interpolate import check_methods

COMMAND = "travel"
EASINGS = ("linear", "ease-in-out")
FORMATS = ("mp4", "gif")
DENSE_PER_FRAME = 32  # dense path samples per frame interval when easing needs off-grid positions


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
                   help="frames per segment, both keyframes counted: one number or a comma list, one per segment")
    g.add_argument("--loop", action="store_true", help="return from the last keyframe to the first")
    g.add_argument("--easing", default="linear", choices=EASINGS, help="frame positions along each segment")
    g.add_argument("--fps", type=float, default=12.0, help="frames per second of the MP4 and GIF")
    g.add_argument("--upscale", type=int, default=0,
                   help="nearest-neighbour video upscaling factor; 0 = smallest factor giving >= 256 px")
    g.add_argument("--formats", default="mp4,gif", help="videos to write: mp4, gif, both, or 'none'")
    common.add_model_options(p, resume=True)
    p.epilog = ("--class may be a comma list with one class per keyframe (and --prompt a '|'-separated list); "
                "the condition switches at the middle of each segment.")
    p.set_defaults(func=run)


def parse_frames(text: str, segments: int) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        raise common.CLIError(f"--frames must be a number or a comma list of numbers, got {text!r}") from None
    if len(values) == 1:
        values = values * segments
    if len(values) != segments:
        raise common.CLIError(f"--frames lists {len(values)} numbers for {segments} segments")
    if min(values) < 2:
        raise common.CLIError("each segment needs --frames >= 2 (both keyframes counted)")
    return values


def ease(u: np.ndarray, easing: str) -> np.ndarray:
    if easing == "ease-in-out":
        return (1.0 - np.cos(np.pi * u)) / 2.0
    return u


def path_at(a: torch.Tensor, b: torch.Tensor, positions: np.ndarray, method: str) -> torch.Tensor:
    """Seeds at path positions in [0, 1] (arc-length fractions for NAO): exact on a uniform grid, otherwise
    resampled from a dense path (linear between neighbouring dense points, which are very close)."""
    import seedspace as ss

    n = len(positions)
    uniform = np.linspace(0.0, 1.0, n)
    if n >= 2 and np.allclose(positions, uniform, rtol=0, atol=1e-12) and positions[0] == 0 and positions[-1] == 1:
        return ss.interpolate(a, b, steps=n, method=method)
    dense_n = DENSE_PER_FRAME * max(n - 1, 1) + 1
    dense = ss.interpolate(a, b, steps=dense_n, method=method).double()
    x = np.clip(positions, 0.0, 1.0) * (dense_n - 1)
    k = np.minimum(np.floor(x).astype(int), dense_n - 2)
    frac = torch.from_numpy(x - k).reshape(-1, *([1] * a.dim()))
    out = dense[k] * (1 - frac) + dense[k + 1] * frac
    return out.to(a.dtype)


def plan(params: dict, model, progress: bool = False) -> common.Plan:
    cond = common.condition_from_record(params["condition"])
    inversion_cond = cond
    if isinstance(cond, list):  # one condition per keyframe: image keyframes are inverted with their own
        inversion_cond = cond[0] if len(cond) == 1 else _keyframe_conditions(cond, len(params["seeds"]))
    seeds, entries = common.resolve_seeds(params["seeds"], model, inversion_cond, params["steps"], progress)
    k = seeds.shape[0]
    if k < 2:
        raise common.CLIError(f"travel needs at least two keyframes, got {k}")
    loop = params["loop"]
    segments = k if loop else k - 1
    counts = parse_frames(params["frames"], segments)
    conds = _keyframe_conditions(cond, k)
    parts, meta, conditions = [], [], []
    for s in range(segments):
        i, j = s, (s + 1) % k
        n = counts[s]
        u = np.linspace(0.0, 1.0, n)
        pos = ease(u, params["easing"])
        path = path_at(seeds[i], seeds[j], pos, params["method"])
        keep = n if (s == segments - 1 and not loop) else n - 1
        for f in range(keep):
            index = len(meta)
            meta.append({"index": index, "file": f"frames/frame{index:06d}.png", "segment": s, "position": f,
                         "u": float(u[f]), "t": float(pos[f]), "method": params["method"],
                         "endpoints": [entries[i], entries[j]], "keyframe": i if f == 0 else (j if f == n - 1 else None),
                         "seed_file": "seeds.safetensors", "seed_index": index})
            conditions.append(conds[i] if u[f] < 0.5 else conds[j])
        parts.append(path[:keep])
    return common.Plan(torch.cat(parts).float(), conditions, meta, {"keyframe_seeds": seeds, "counts": counts})


def _keyframe_conditions(cond, k: int) -> list:
    if not isinstance(cond, list):
        return [cond] * k
    if len(cond) == 1:
        return cond * k
    if len(cond) != k:
        raise common.CLIError(f"got {len(cond)} conditions for {k} keyframes (give one, or one per keyframe)")
    return cond


def new_params(args):
    """(parameters, model) of a new run from the command-line options."""
    import seedspace as ss

    outputs.check_out_available(args.out)
    method = check_methods([args.method], ss.INTERPOLATION_METHODS)[0]
    spec = {"none": "", "both": "mp4,gif"}.get(args.formats.strip(), args.formats)
    formats = check_methods(spec.split(","), FORMATS, "format") if spec else []
    if args.fps <= 0:
        raise common.CLIError("--fps must be > 0")
    if args.upscale < 0:
        raise common.CLIError("--upscale must be >= 0")
    items = common.seed_items_from_args(args)
    ref = common.model_ref(args.model)
    model = common.load(ref, args.device, args.dtype, args.batch_size, args.negative_prompt)
    prompt = args.prompt
    if prompt is not None and "|" in prompt:
        prompt = [p.strip() for p in prompt.split("|")]
    if isinstance(prompt, list):
        if common.is_class_model(model):
            raise common.CLIError(f"{model.name} is class-conditional: use --class, not --prompt")
        cond_record = {"prompt": prompt, "negative_prompt": getattr(model, "negative_prompt", "")}
    else:
        cond, cond_record = common.resolve_condition(model, args.class_, prompt, args, allow_list=True)
        if "prompt" in cond_record:
            cond_record["prompt"] = cond[0]
        elif cond_record.get("class") is not None and len(cond_record["class"]) == 1:
            cond_record = {"class": cond_record["class"][0], "class_name": cond_record["class_name"][0]}
    params = {**common.sampling_params(args, model, ref, cond_record), "seeds": items, "method": method,
              "frames": args.frames, "loop": bool(args.loop), "easing": args.easing,
              "video": {"formats": formats, "fps": args.fps, "upscale": args.upscale}}
    return params, model


def run(args) -> int:
    common.check_sampling_args(args)
    folder, params, model = common.resumed_run(args, COMMAND)
    if params is None:
        params, model = new_params(args)
    video_opts = params["video"]
    method = params["method"]
    the_plan = plan(params, model, progress=not args.quiet)
    folder, record = common.open_record(args, COMMAND, params, folder, "seeds.safetensors", the_plan.seeds,
                                        method=method, frames_per_segment=the_plan.extra["counts"],
                                        keyframes=[f["endpoints"][0] for f in the_plan.frames if f["position"] == 0])
    with record.guard():
        outputs.save_seeds(folder / "seeds.safetensors", {"seeds": the_plan.seeds,
                                                          "keyframes": the_plan.extra["keyframe_seeds"]},
                           {"command": COMMAND, "method": method, "model": params["model"]["id"]})
        record.add_file(folder / "seeds.safetensors")
        images = frames.render_plan(args, COMMAND, model, params, the_plan, folder, record)
        rows, current = [], None
        for frame, image in zip(the_plan.frames, images):
            if frame["segment"] != current:
                rows.append([])
                current = frame["segment"]
            rows[-1].append(image)
        grid = outputs.make_grid(rows, [f"segment {s}" for s in range(len(rows))])
        outputs.save_png(folder / "grid.png", grid,
                         outputs.JSON_PREFIX + outputs.canonical_json({"command": COMMAND, "params": params}))
        record.add_file(folder / "grid.png")
        factor = video_opts["upscale"] or outputs.auto_upscale(min(images.shape[1:3]), 256)
        video = outputs.upscale(images, factor)
        if video.shape[1] % 2 or video.shape[2] % 2:  # yuv420p needs even sizes
            video = np.pad(video, ((0, 0), (0, video.shape[1] % 2), (0, video.shape[2] % 2), (0, 0)), mode="edge")
        formats, fps = video_opts["formats"], video_opts["fps"]
        for fmt in formats:
            path = folder / f"travel.{fmt}"
            (outputs.save_mp4 if fmt == "mp4" else outputs.save_gif)(path, video, fps)
            record.add_file(path)
        record["video"] = {"fps": fps, "upscale": factor, "size": [int(video.shape[2]), int(video.shape[1])],
                           "duration_s": math.ceil(1000 * len(images) / fps) / 1000}
    print(f"wrote {folder}: {len(images)} frames, {', '.join(f'travel.{f}' for f in formats) or 'no video'}, "
          f"grid.png, seeds.safetensors, run.json")
    return 0
