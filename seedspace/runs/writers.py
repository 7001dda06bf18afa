"""The writers of every command's run folder, shared by the command line and the browser explorer: the frame
commands (seed files -> rendered frames with their metadata -> each command's own summary outputs), the norms
diagnosis, inversion and clustering. The interfaces turn their inputs into the recorded parameters and call these.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

from .. import outputs
from ..backends.run_prior import run_prior_of
from ..backends.sampling import check_scheduler
from ..checks import check_write_size
from ..conditions import condition_from_record
from ..geometry import ChiPrior, norm_report
from ..progress import progress_bar
from ..scoring.metrics import image_psnr
from ..seeds import describe_seed, image_paths, load_seeds
from ..settings import model_sampling
from .frames import FramePlan, load_endpoints, plan_frames, render_batches
from .provenance import frame_text, model_record
from .record import RunRecord, open_run
from .run_settings import FRAME_SETTINGS, InvertSettings

log = logging.getLogger(__name__)

NORMS_COMMAND = "norms"
INVERT_COMMAND = "invert"
CLUSTER_COMMAND = "cluster"
KS_ALPHA = 0.01  # entries failing a KS test against N(0, 1) at this level are flagged


def run_parameters(model, ref: str, condition_record: dict, steps: int | None, guidance: float | None,
                   dtype: str, batch_size: int, scheduler: str | None = None) -> dict:
    """The parameters every generating run records (None: the model's default steps, guidance, sampler)."""
    steps, guidance = model_sampling(model, steps, guidance)
    return {
        "model": model_record(model, ref),
        "condition": condition_record,
        "steps": steps,
        "guidance": guidance,
        "dtype": dtype,
        "batch_size": int(batch_size),
        "scheduler": check_scheduler(scheduler, model.prediction_type, model.name),
        **size_record(model),
        **({"compile": True} if getattr(model, "compile", False) is True else {}),  # absent: the eager forward
    }


def size_record(model) -> dict:
    """``{"height", "width"}`` of a model whose image size is chosen (a diffusers pipeline: ``set_size``), which
    regenerating its frames needs; {} for fixed-size models (testbeds, pixel UNets)."""
    if not hasattr(model, "set_size"):
        return {}
    return {"height": int(model.height), "width": int(model.width)}


class Summary(NamedTuple):
    """What a command's ``finish`` returns: the grid image (PIL) and the line printed at the end."""

    grid: object
    text: str


def run_bytes(model, n_seeds: int, n_images: int, per_seed: int = 1) -> int:
    """What a run of ``n_seeds`` seeds (``per_seed`` float32 tensors each) and ``n_images`` images writes, estimated
    at 4 bytes per seed entry and one byte per image value (PNG compresses)."""
    return n_seeds * per_seed * 4 * math.prod(model.seed_shape) + n_images * math.prod(model.image_shape)


def video_upscale(upscale: int | None, image_hw) -> int:
    """The factor a travel's videos upscale its frames by: ``upscale`` where given, else the smallest that brings
    the frames' short side (``image_hw``: height, width) to 256 pixels."""
    return upscale or outputs.auto_upscale(min(image_hw), 256)


class FrameRun(NamedTuple):
    """What :func:`run_frames` made: the folder, the run's parameters as run.json records them, the frame plan,
    every frame (N, H, W, C) uint8, the command's summary and the prior's note (None where the prior is the one
    asked for)."""

    folder: Path
    record: dict
    plan: FramePlan
    images: np.ndarray
    summary: Summary
    note: str | None


def run_frames(command: str, params: dict, model, prior="model", out=None, base="outputs", resume=None,
               allow_large: bool = False, on_frames: Callable[[int, int], None] | None = None) -> FrameRun:
    """An ``interpolate``, ``centroid`` or ``travel`` run, as the command line and the explorer make it: its prior
    chosen and its frames planned (:func:`plan_frame_run`; where the prior is not the one asked for, an INFO line
    says so before any frame is made), then its folder written (:func:`write_frame_run`; ``on_frames(done,
    total)`` after each batch of frames, and once at 0)."""
    record, plan, note = plan_frame_run(command, params, model, prior)
    if note:
        log.info(note)
    folder, images, summary = write_frame_run(command, record, model, plan, out, base, resume, allow_large, on_frames)
    return FrameRun(folder, record, plan, images, summary, note)


def plan_frame_run(command: str, params: dict, model, prior="model") -> tuple[dict, FramePlan, str | None]:
    """(record, plan, note or None) of an ``interpolate``, ``centroid`` or ``travel`` run: ``params`` is its
    record but the prior, ``prior`` the norm prior of its NAO paths and centroids as ``--prior`` takes it (None or
    'chi', 'model', 'scaled-chi:S', a prior file, or the record a resumed run keeps). 'model' is the model's
    calibrated prior where its calibration settings are the run's
    (:func:`~seedspace.backends.run_prior.prior_mismatch`), else a scaled chi fitted to the run's own endpoints
    (loaded once, for the fit and the plan), and chi(d) for a model without one; the note says which where it is
    not the model's own. The command line and the explorer both plan so."""
    loaded = []  # the endpoints, where the prior is fitted to them

    def endpoint_seeds():
        loaded.append(load_endpoints(command, params, model))
        return loaded[0].seeds

    record, note = run_prior_of(prior, model, params["steps"], params.get("scheduler"),
                                bool(image_paths(params["seeds"])), endpoint_seeds)
    params = FRAME_SETTINGS[command].from_record({**params, **({} if record is None else {"prior": record})})
    params = params.to_record()
    return params, plan_frames(command, params, model, loaded[0] if loaded else None), note


def write_frame_run(command: str, params: dict, model, plan: FramePlan, out=None, base="outputs", resume=None,
                    allow_large: bool = False,
                    on_frames: Callable[[int, int], None] | None = None) -> tuple[Path, np.ndarray, Summary]:
    """A frame command's run (interpolate, centroid, travel) from its record ``params`` and frame ``plan``: refused
    (ValueError, nothing written) past :func:`~seedspace.checks.check_write_size` unless ``allow_large``; then a new
    folder (``out``, or the next under ``base``) or the folder ``resume`` reopened (its finished batches kept), filled
    with the plan's seed files, every frame (:func:`render_plan`) and what the command's finisher
    (``FINISHERS[command](folder, record, params, plan, images (N, H, W, C) uint8, model) -> Summary``) writes, its
    grid saved as grid.png; run.json follows every step and ends completed (interrupted or failed on an error).
    Returns (folder, images, summary)."""
    n = int(plan.seeds.shape[0])
    video = params.get("video") or {}
    # a travel's videos hold its frames upscaled in memory while they are written
    upscale = video_upscale(video.get("upscale"), model.image_shape[1:]) if video.get("formats") else 0
    check_write_size(run_bytes(model, n, n * (1 + upscale ** 2)), allow_large or resume is not None)
    folder, record = open_run(command, params, out, base, resume=resume, **plan.record,
                              seed_files={name: tensors for name, (tensors, _) in plan.seed_files.items()})
    with record.guard():
        for name, (tensors, meta) in plan.seed_files.items():
            outputs.save_seeds(folder / name, tensors, meta)
            record.add_file(folder / name)
        images = render_plan(command, model, params, plan, folder, record, on_frames)
        summary = FINISHERS[command](folder, record, params, plan, images, model)
        save_grid_png(folder, record, command, params, summary.grid)
    return folder, images, summary


def save_grid_png(folder: Path, record: RunRecord, command: str, params: dict, grid) -> None:
    """grid.png with the run's parameters as its metadata."""
    outputs.save_png(folder / "grid.png", grid, outputs.JSON_PREFIX + outputs.canonical_json(
        {"command": command, "params": params}))
    record.add_file(folder / "grid.png")


def render_plan(command: str, model, params: dict, plan: FramePlan, folder: Path, record: RunRecord,
                on_frames: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Render every planned frame to ``folder/<frame['file']>`` (PNG with parameters), recording each finished
    batch in run.json; returns all images (N, H, W, C) uint8. Batches a resumed run already finished are read
    back from their PNGs instead (a batch renders the same pixels whenever it is rendered). ``on_frames(done,
    total)`` is called at the start and as each batch of frames is done."""
    plan.attach_batches(params["batch_size"])
    total = plan.seeds.shape[0]
    out: list = [None] * total
    finished = record.finished_frames()

    def done(start, stop):
        if not all(i in finished for i in range(start, stop)):
            return False
        for i in range(start, stop):
            out[i] = outputs.read_png_pixels(folder / plan.frames[i]["file"])
        return True

    def on_batch(start, stop, images):
        images = outputs.to_uint8(images)
        for k, image in enumerate(images):
            frame = plan.frames[start + k]
            outputs.save_png(folder / frame["file"], image, frame_text(command, params, frame, images.shape[1:3]))
            out[start + k] = image
        record.add_frames([dict(plan.frames[i]) for i in range(start, stop)])

    made = [0]  # a disabled bar counts nothing
    if on_frames is not None:
        on_frames(0, total)
    with progress_bar(total=total, desc="frames", unit="frame") as bar:
        def advanced(k: int) -> None:
            bar.update(k)
            made[0] += k
            if on_frames is not None:
                on_frames(made[0], total)

        render_batches(model, plan, params["steps"], params["guidance"], params["batch_size"], on_batch, done,
                       on_progress=advanced, scheduler=params.get("scheduler"))
    return np.stack(out)



def row_label(method: str, prior: dict | None) -> str:
    """A grid row's label: the method, and for NAO the prior it ran under ('nao@chi': the paper's)."""
    if method == "nao@chi" or method == "nao" and prior is None:
        return "nao, chi (paper)"
    if method == "nao":
        scale = prior.get("scale")
        return f"nao, {prior.get('family', 'prior')}" + (f" {scale:.3g}" if isinstance(scale, (int, float)) else "")
    return method


def finish_interpolate(folder, record, params, plan, images, model) -> Summary:
    """One grid row per method."""
    methods, n = params["methods"], params["frames"]
    labels = [row_label(m, params.get("prior")) for m in methods]
    grid = outputs.make_grid([list(images[r * n:(r + 1) * n]) for r in range(len(methods))], labels,
                             [f"t={j / (n - 1):.2f}" for j in range(n)])
    return Summary(grid, f"grid.png, {len(images)} frames, seeds.safetensors, run.json")



def finish_centroid(folder, record, params, plan, images, model) -> Summary:
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



def finish_travel(folder, record, params, plan, images, model) -> Summary:
    """The MP4 / GIF (upscaled, padded to even sizes for yuv420p) and a grid with one row per segment."""
    rows, current = [], None
    for frame, image in zip(plan.frames, images):
        if frame["segment"] != current:
            rows.append([])
            current = frame["segment"]
        rows[-1].append(image)
    video_opts = params["video"]
    factor = video_upscale(video_opts["upscale"], images.shape[1:3])
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
    grid = outputs.make_grid(rows, [f"segment {s}" for s in range(len(rows))])
    videos = ", ".join(f"travel.{f}" for f in formats) or "no video"
    return Summary(grid, f"{len(images)} frames, {videos}, grid.png, seeds.safetensors, run.json")



FINISHERS = {"interpolate": finish_interpolate, "centroid": finish_centroid, "travel": finish_travel}


def write_norms_run(params: dict, model, out=None, base="outputs") -> tuple[Path, dict]:
    """Diagnose the seeds of ``params`` (as run.json records them: model, condition, steps, seeds, typical,
    dtype, batch_size) and write the run folder (``out``, or the next ``<base>/norms-NNNNN``): norms.json,
    norms.png, seeds.safetensors, run.json. Returns (folder, the norms.json summary). The command line and
    ``seedspace ui`` share it."""
    typical = params["typical"]
    seeds, entries = load_seeds(params["seeds"], model, condition_from_record(params["condition"]),
                                params["steps"])
    reports = norm_report(seeds, typical_prob=typical)
    d = int(np.prod(model.seed_shape))
    prior = ChiPrior(d)
    rows = []
    for entry, r in zip(entries, reports):
        flags = (["atypical norm"] if r.atypical else []) + (["non-Gaussian entries"] if r.ks_pvalue < KS_ALPHA else [])
        rows.append({"seed": describe_seed(entry), "source": entry, **r.as_dict(), "flags": flags})

    folder, record = open_run(NORMS_COMMAND, params, out, base)
    with record.guard():
        lo, hi = prior.typical_interval(typical)
        summary = {"d": d, "sqrt_d": math.sqrt(d), "chi": {"mean": prior.mean, "std": prior.std, "mode": prior.mode,
                                                           "typical_interval": [lo, hi], "typical_prob": typical},
                   "ks_alpha": KS_ALPHA, "seeds": rows,
                   "flagged": [r["seed"] for r in rows if r["flags"]]}
        outputs.write_json(folder / "norms.json", summary)
        ratios = np.array([r["norm_ratio"] for r in rows])
        plot_norms(folder / "norms.png", ratios, prior, typical, np.array([bool(r["flags"]) for r in rows]))
        outputs.save_seeds(folder / "seeds.safetensors", {"seeds": seeds},
                           {"command": NORMS_COMMAND, "model": params["model"]["id"]})
        for name in ("norms.json", "norms.png", "seeds.safetensors"):
            record.add_file(folder / name)
        record["flagged"] = summary["flagged"]
    return folder, summary


def plot_norms(path: Path, ratios: np.ndarray, prior: ChiPrior, prob: float, flagged: np.ndarray) -> None:
    """norms.png: a histogram of |x| / sqrt(d) against the chi(d) density, its typical interval shaded."""
    import matplotlib  # lazy: plotting is heavy to import and only this command's last step needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = prior.d
    lo, hi = prior.typical_interval(prob)
    lo, hi = lo / math.sqrt(d), hi / math.sqrt(d)
    span = max(hi - lo, 1e-3)
    x_min = max(0.0, min(lo - span, float(ratios.min()) - 0.1 * span))
    x_max = max(hi + span, float(ratios.max()) + 0.1 * span)
    x = np.linspace(x_min, x_max, 600)
    density = np.exp(prior.log_prob(x * math.sqrt(d))) * math.sqrt(d)  # density of |x| / sqrt(d)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.axvspan(lo, hi, color="tab:green", alpha=0.12, label=f"typical ({100 * prob:g}%)")
    bins = np.linspace(x_min, x_max, max(10, min(60, 4 * int(math.sqrt(len(ratios))) + 10)))
    ax.hist(ratios, bins=bins, density=True, color="tab:blue", alpha=0.6, label=f"seeds (n={len(ratios)})")
    ax.plot(x, density, color="black", lw=1.5, label=f"chi({d}) density")
    if len(ratios) <= 50:
        ax.plot(ratios, np.zeros_like(ratios), "|", color="tab:blue", ms=14)
    if flagged.any():
        ax.plot(ratios[flagged], np.zeros(int(flagged.sum())), "x", color="tab:red", ms=9, label="flagged")
    ax.set_xlabel("|x| / sqrt(d)")
    ax.set_ylabel("density")
    ax.set_title(f"seed norms against the chi({d}) prior")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with outputs.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def invert_parameters(model, ref: str, paths, condition_record: dict, steps: int, dtype: str, batch_size: int,
                      **more) -> dict:
    """What an inversion run records (:class:`~seedspace.runs.run_settings.InvertSettings`): the model, condition,
    steps (guidance 1), dtype, batch size, each image's resolved path and sha256 prefix, and ``more`` (the image
    size and fit)."""
    return InvertSettings(model=model_record(model, ref), condition=condition_record, steps=steps, dtype=dtype,
                          batch_size=batch_size, **more,
                          images=[{"image": str(Path(p).resolve()), "sha256": outputs.file_sha256(p)[:16]}
                                  for p in paths]).to_record()


def write_invert_run(params: dict, model, paths, out=None, base="outputs") -> tuple[Path, list[dict]]:
    """DDIM-invert the images ``paths`` with ``params`` (:func:`invert_parameters`), regenerate each seed with
    guidance 1 and write the run folder: seeds.safetensors, reconstructions/ and reconstructions.png (inputs
    above reconstructions), run.json with a row per image (PSNR, norm report). Returns (folder, rows)."""
    condition, steps, bs = condition_from_record(params["condition"]), params["steps"], params["batch_size"]
    images = model.load_images([str(p) for p in paths])
    seeds, recon = [], []
    with progress_bar(total=len(paths), desc="inverting", unit="image") as bar:
        for start in range(0, len(paths), bs):
            stop = min(len(paths), start + bs)
            s = model.invert(images[start:stop], condition, steps).float().cpu()
            recon.append(model.generate(s, condition, steps, 1.0))
            seeds.append(s)
            bar.update(stop - start)
    seeds, recon = torch.cat(seeds), torch.cat(recon)
    scores = [float(s) for s in image_psnr(images, recon)]
    rows = [{"file": str(p), "psnr_db": round(s, 3), "norm_ratio": r.norm_ratio, "zscore": r.zscore,
             "atypical": r.atypical, "ks_pvalue": r.ks_pvalue, "seed_index": i}
            for i, (p, s, r) in enumerate(zip(paths, scores, norm_report(seeds)))]

    folder, record = open_run(INVERT_COMMAND, params, out, base, images=rows)
    with record.guard():
        outputs.save_seeds(folder / "seeds.safetensors", {"seeds": seeds},
                           {"command": INVERT_COMMAND, "files": [Path(p).name for p in paths],
                            "model": params["model"]["id"], "steps": str(steps), "condition": params["condition"],
                            "psnr_db": [round(s, 3) for s in scores]})
        record.add_file(folder / "seeds.safetensors")
        text = outputs.JSON_PREFIX + outputs.canonical_json({"command": INVERT_COMMAND, "params": params})
        inputs8, recon8 = outputs.to_uint8(images), outputs.to_uint8(recon)
        for i, image in enumerate(recon8):
            outputs.save_png(folder / "reconstructions" / f"rec{i:06d}.png", image, text)
        grid = outputs.make_grid([list(inputs8), list(recon8)], ["input", "reconstruction"],
                                 [f"{s:.1f}dB" for s in scores])
        outputs.save_png(folder / "reconstructions.png", grid, text)
        record.add_file(folder / "reconstructions.png")
        record["mean_psnr_db"] = float(np.mean(scores))
    return folder, rows


def write_cluster_run(params: dict, model, seeds, result, out=None, base="outputs") -> Path:
    """The run folder of a clustering (``result``, a :class:`~seedspace.geometry.ClusterResult` of ``seeds``,
    the inputs ``params["seeds"]``): each centroid rendered (centroid_NN.png), centroids.safetensors with the
    labels, a grid of each centroid beside its members, run.json with the members of each cluster."""
    items, k = params["seeds"], params["k"]
    condition, steps, guidance = condition_from_record(params["condition"]), params["steps"], params["guidance"]
    centroids = result.centroids.float()
    images = outputs.to_uint8(model.generate(centroids, condition, steps, guidance))
    if all("image" in it for it in items):  # the inputs as images: image inputs as read, seeds rendered
        originals = outputs.to_uint8(model.load_images([it["image"] for it in items]))
    else:
        originals = outputs.to_uint8(model.generate(seeds, condition, steps, guidance))
    clusters = [{"cluster": j, "members": [int(i) for i in result.members(j)],
                 "inputs": [describe_seed(items[i]) for i in result.members(j)]} for j in range(k)]
    folder, record = open_run(CLUSTER_COMMAND, params, out, base, clusters=clusters, objective=result.objective)
    with record.guard():
        outputs.save_seeds(folder / "centroids.safetensors", {"seeds": centroids.contiguous(),
                                                              "labels": torch.from_numpy(result.labels).contiguous()})
        record.add_file(folder / "centroids.safetensors")
        for j, image in enumerate(images):
            text = outputs.JSON_PREFIX + outputs.canonical_json({"command": CLUSTER_COMMAND, "params": params,
                                                                 "cluster": clusters[j]})
            outputs.save_png(folder / f"centroid_{j:02d}.png", image, text)
            record.add_file(folder / f"centroid_{j:02d}.png")
        rows = [[images[j]] + [originals[i] for i in result.members(j)] for j in range(k)]
        width = max(len(r) for r in rows)
        grid = outputs.make_grid(rows, [f"cluster {j} ({len(r) - 1})" for j, r in enumerate(rows)],
                                 ["centroid"] + [""] * (width - 1))
        outputs.save_png(folder / "grid.png", grid, outputs.JSON_PREFIX + outputs.canonical_json(
            {"command": CLUSTER_COMMAND, "params": params}))
        record.add_file(folder / "grid.png")
    return folder
