"""The explorer's four tasks, as the page's buttons call them: each turns the page's inputs into the parameters
the command line records, writes the same run folder through the same run writers (:mod:`seedspace.runs.writers`,
so ``seedspace regenerate --check`` accepts its frames), zips it for download and returns what the page shows.

    explorer = Explorer(load_model(), "testbed", Path("outputs"))
    result = explorer.interpolate("11", "42", methods=["slerp", "nao"], frames=7)
    result.folder, result.archive, result.image   # run folder, its .zip, grid.png

Bad input raises ValueError with one line that names the field.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import outputs
from ..backends.loading import dtype_name
from ..checks import check_guidance, check_int, check_steps
from ..conditions import condition_from_record, is_class_conditional, resolve_condition
from ..runs.run_settings import CentroidSettings, InterpolateSettings, NormsSettings, TravelSettings, VideoSettings
from ..runs.provenance import model_record
from ..backends.run_prior import prior_record
from ..runs.writers import run_frames, run_parameters, write_norms_run
from ..settings import model_sampling
from ..scoring.metrics import image_psnr
from ..seeds import describe_seed
from .inputs import one_item, typed_items, upload_items
from .plots import norm_plot, path_norm_ratios

MAX_PAGE_FRAMES = 33  # frames per path (or travel segment) the page offers: each answer stays interactive
MAX_PAGE_INPUTS = 32  # seeds or uploads per centroid, travel or norms request
PSNR_GUIDANCE = 1.0  # inversions are made and checked with guidance 1, as `seedspace invert` does

Progress = Callable[[float, str], None]


@dataclass
class TaskResult:
    """What a task shows: the run folder, its zip, the main picture (grid.png or norms.png), a summary line, and
    where the task has them a norm plot (matplotlib figure), videos and a table of rows."""

    folder: Path
    archive: Path
    image: Path
    text: str
    plot: object = None
    videos: dict = field(default_factory=dict)
    table: list = field(default_factory=list)


def _silent(fraction: float, text: str) -> None:
    return None


@dataclass
class Explorer:
    """The model the page explores (loaded once), how run.json names it, the folder that takes run folders
    (``<runs_dir>/<command>-NNNNN``) and uploads, and the norm prior of its NAO paths and centroids (``prior``:
    None or 'chi', 'scaled-chi:S' or a prior file, as ``--prior`` takes; recorded in every run as the command line
    records it)."""

    model: object
    ref: str
    runs_dir: Path
    batch_size: int = 16
    prior: object = None

    def __post_init__(self):
        # checked once; the page shows it (a run whose settings the model's prior does not fit says what it used)
        record = prior_record(self.prior, self.model)
        self.prior_record = {} if record is None else {"prior": record}

    @property
    def dtype(self) -> str:
        """The loaded model's dtype, as run.json records it."""
        return dtype_name(getattr(self.model, "dtype", None))

    # -- the four tasks ------------------------------------------------------------------------------------
    def interpolate(self, seed_a: str | None, seed_b: str | None, upload_a: str | None = None,
                    upload_b: str | None = None, methods=("lerp", "nao"), frames: int = 7,
                    class_value: str | None = None, prompt: str | None = None, steps: int | None = None,
                    guidance: float | None = None, progress: Progress = _silent) -> TaskResult:
        """`seedspace interpolate --compare METHODS`: one grid row per method between endpoints A and B (a seed,
        a blend or an upload each); uploaded images are inverted and their reconstruction PSNR (guidance 1) is
        reported; the plot shows |x| / sqrt(d) along each path."""
        own = InterpolateSettings.checked(methods=list(methods or []), frames=check_int(frames, "frames", 2,
                                                                                           MAX_PAGE_FRAMES))
        methods = own["methods"]
        items = [one_item(seed_a, upload_a, self.model, self.runs_dir, "endpoint A"),
                 one_item(seed_b, upload_b, self.model, self.runs_dir, "endpoint B")]
        folder, plan, _, params, notes = self._frame_run(InterpolateSettings, items, own, class_value, prompt, steps,
                                                         guidance, progress)
        lines = [f"{len(methods)} paths of {frames} frames", *notes]
        endpoints = plan.seed_files["seeds.safetensors"][0]["endpoints"]
        for label, item, seed in zip("AB", items, endpoints):
            if "image" in item:
                lines.append(f"endpoint {label} ({describe_seed(item)}): reconstruction PSNR "
                             f"{self._reconstruction_psnr(item, seed, params):.1f} dB")
        paths = plan.seeds.reshape(len(methods), frames, *plan.seeds.shape[1:])
        return self._result(folder, folder / "grid.png", lines, plot=norm_plot(paths, methods, "t (A -> B)"))

    def centroid(self, uploads=None, seeds: str | None = None, method: str = "nao", frames: int = 5,
                 class_value: str | None = None, prompt: str | None = None, steps: int | None = None,
                 guidance: float | None = None, progress: Progress = _silent) -> TaskResult:
        """`seedspace centroid`: the centroid of k >= 2 uploaded images (inverted) or seed files, or typed seeds,
        its image, the paths from it to each input and |x| / sqrt(d) along them."""
        own = CentroidSettings.checked(method=method, frames=check_int(frames, "frames", 2, MAX_PAGE_FRAMES))
        items = self._inputs(uploads, seeds, "centroid inputs")
        folder, plan, _, _, notes = self._frame_run(CentroidSettings, items, own, class_value, prompt, steps,
                                                    guidance, progress)
        k = len(plan.record["inputs"])
        paths = plan.seeds[1:].reshape(k, frames, *plan.seeds.shape[1:])
        labels = [describe_seed(e) for e in plan.record["inputs"]]
        norm = float(path_norm_ratios(plan.seeds[None, :1])[0, 0])
        return self._result(folder, folder / "grid.png",
                            [f"{method} centroid of {k} inputs: |c| / sqrt(d) = {norm:.3f}",
                             f"{k} paths of {frames} frames from the centroid to each input", *notes],
                            plot=norm_plot(paths, labels, "t (centroid -> input)"))

    def travel(self, keyframes: str | None, uploads=None, method: str = "nao", frames: int = 8, loop: bool = False,
               easing: str = "linear", fps: float = 12.0, class_value: str | None = None, prompt: str | None = None,
               steps: int | None = None, guidance: float | None = None,
               progress: Progress = _silent) -> TaskResult:
        """`seedspace travel`: frames along the path of each segment between keyframes (typed seeds, then
        uploads), eased, with an MP4 and a GIF."""
        check_int(frames, "frames per segment", 2, MAX_PAGE_FRAMES)
        own = TravelSettings.checked(method=method, frames=int(frames), loop=loop, easing=easing,
                                     video=VideoSettings(fps=fps))
        items = self._inputs(uploads, keyframes, "keyframes")
        folder, plan, images, _, notes = self._frame_run(TravelSettings, items, own, class_value, prompt, steps,
                                                         guidance, progress)
        segments = len(plan.record["frames_per_segment"])
        return self._result(folder, folder / "grid.png",
                            [f"{len(images)} frames over {segments} segments ({method}, {easing})", *notes],
                            videos={fmt: folder / f"travel.{fmt}" for fmt in ("mp4", "gif")})

    def norms(self, uploads=None, seeds: str | None = None, class_value: str | None = None,
              prompt: str | None = None, steps: int | None = None, typical: float = 0.999,
              progress: Progress = _silent) -> TaskResult:
        """`seedspace norms`: |x| / sqrt(d), chi z-score and percentile, KS test of the entries against N(0, 1)
        for typed seeds and uploaded seed files or images (inverted), with a histogram against chi(d); seeds
        outside the central ``typical`` interval or failing the KS test are flagged."""
        NormsSettings.checked(typical=typical)
        items = self._inputs(uploads, seeds, "seeds", minimum=1)
        condition = (self._condition(class_value, prompt) if any("image" in it for it in items) else {})
        params = NormsSettings(model=model_record(self.model, self.ref), condition=condition, steps=self._steps(steps),
                               seeds=items, typical=typical, dtype=self.dtype, batch_size=self.batch_size).to_record()
        progress(0.0, "loading seeds (uploaded images are inverted)")
        folder, summary = write_norms_run(params, self.model, base=self.runs_dir)
        table = [[r["seed"], round(r["norm_ratio"], 4), round(r["zscore"], 2), round(r["percentile"], 2),
                  float(f"{r['ks_pvalue']:.2g}"), ", ".join(r["flags"])] for r in summary["seeds"]]
        return self._result(folder, folder / "norms.png",
                            [f"{len(table)} seeds, {len(summary['flagged'])} flagged (d = {summary['d']})"],
                            table=table)

    # -- shared steps --------------------------------------------------------------------------------------
    def _condition(self, class_value, prompt) -> dict:
        if is_class_conditional(self.model):
            prompt = None
        else:
            class_value = None
            prompt = prompt or ""
        return resolve_condition(self.model, class_value or None, prompt)[1]

    def _steps(self, steps) -> int:
        return model_sampling(self.model, None if steps in (None, "") else check_steps(int(steps), "steps"), None)[0]

    def _sampling(self, class_value, prompt, steps, guidance) -> dict:
        """The sampling parameters the command line records, from the page's fields."""
        if guidance not in (None, ""):
            check_guidance(guidance, "guidance")
        return run_parameters(self.model, self.ref, self._condition(class_value, prompt), self._steps(steps),
                              None if guidance in (None, "") else float(guidance), self.dtype, self.batch_size)

    def _inputs(self, uploads, typed: str | None, what: str, minimum: int = 2) -> list[dict]:
        items = typed_items(typed, what) + upload_items(uploads, self.model, self.runs_dir, what)
        if not minimum <= len(items) <= MAX_PAGE_INPUTS:
            raise ValueError(f"{what}: give {minimum} to {MAX_PAGE_INPUTS} seeds or uploads, got {len(items)}")
        return items

    def _frame_run(self, settings_class, items: list[dict], own: dict, class_value, prompt, steps, guidance,
                   progress: Progress):
        """The run's record (``settings_class``'s, as the command line makes it), its plan, then the run folder
        written as the command line writes it; (folder, plan, images, record, the prior's note as a list of 0 or 1
        lines)."""
        command = settings_class.command
        params = settings_class.from_record({**self._sampling(class_value, prompt, steps, guidance), "seeds": items,
                                             **own}).to_record()
        progress(0.0, "loading seeds (uploaded images are inverted)")
        run = run_frames(command, params, self.model, self.prior, base=self.runs_dir,
                         on_frames=lambda done, total: progress(done / total, f"frames {done}/{total}"))
        return run.folder, run.plan, run.images, run.record, [run.note] if run.note else []

    def _reconstruction_psnr(self, item: dict, seed, params: dict) -> float:
        """PSNR (dB) of an uploaded image against the image regenerated from its inversion (guidance 1)."""
        original = self.model.load_images([item["image"]])
        again = self.model.generate(seed[None], condition_from_record(params["condition"]), params["steps"],
                                    PSNR_GUIDANCE)
        return float(image_psnr(original, again.cpu().float())[0])

    def _result(self, folder: Path, image: Path, lines: list[str], **extra) -> TaskResult:
        archive = zip_run(folder)
        text = "\n".join([f"Wrote `{folder}` (download: `{archive.name}`)", *[f"- {line}" for line in lines]])
        return TaskResult(folder, archive, image, text, **extra)


def zip_run(folder: Path) -> Path:
    """``<folder>.zip`` next to the run folder, holding the folder itself (written to a temporary name first)."""
    folder = Path(folder)
    archive = folder.with_suffix(".zip")
    with outputs.atomic_path(archive) as tmp:
        shutil.make_archive(str(tmp.with_suffix("")), "zip", root_dir=folder.parent, base_dir=folder.name)
    return archive
