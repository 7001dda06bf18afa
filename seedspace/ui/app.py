"""The Gradio page of ``seedspace ui``: a tab per task (Interpolate, Centroid, Travel, Norms) over one
:class:`~seedspace.ui.tasks.Explorer`, shared sampling fields above them, progress while a task runs and one
message line per tab (the result's summary, or the error in one line: the page never shows a traceback and the
server keeps serving)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import gradio as gr

from ..checks import FPS_RANGE, GUIDANCE_RANGE
from ..conditions import is_class_conditional
from ..geometry import CENTROID_METHODS, INTERPOLATION_METHODS, prior_from_record
from ..runs.frames import EASINGS
from ..runs.frames import FRAME_METHODS
from .inputs import SEED_FILE_SUFFIX
from .tasks import MAX_PAGE_FRAMES, Explorer, TaskResult

INTRO = ("**seedspace explorer.** Seeds of a diffusion model are drawn from N(0, I); their norms sit on a thin "
         "shell near sqrt(d), and images from seeds off it are poor. LERP cuts through the inside of the shell "
         "(its middle frames wash out); NAO follows the norm-aware geodesic. Every result is a run folder, the same "
         "as the command line writes: download it below each result.")
UPLOAD_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", SEED_FILE_SUFFIX]
MAX_PAGE_STEPS = 200
ERROR_PREFIX = "**Error:** "


def error_message(exc: BaseException) -> str:
    """One line for the page: the message of a user error, the type and message of anything else."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (ValueError, OSError)):
        return ERROR_PREFIX + text
    return f"{ERROR_PREFIX}internal error: {type(exc).__name__}: {text}"


def page_callback(task: Callable[..., TaskResult], shown: Callable[[TaskResult], list], n_outputs: int):
    """A button's callback: ``task(*inputs, progress=...)``, its result as ``shown(result)`` (the outputs) plus
    the message line; any exception becomes empty outputs and a one-line error (logged on the server's stderr)."""

    def callback(*inputs, progress=gr.Progress()):
        try:
            result = task(*inputs, progress=lambda fraction, text: progress(fraction, desc=text))
        except Exception as exc:  # every failure is shown in the page; the server keeps serving
            message = error_message(exc)
            print(f"seedspace ui: {message.removeprefix(ERROR_PREFIX)}", file=sys.stderr)
            return [None] * n_outputs + [message]
        return [*shown(result), result.text]

    return callback


def _condition_field(model):
    if not is_class_conditional(model):
        return gr.Textbox(label="prompt", value="")
    names = list(getattr(model, "class_names", None) or [])
    if model.conditioning == "none":
        return gr.Textbox(label="class (this model is unconditional)", value="", interactive=False)
    choices = names + ["unconditional"] if names else None
    if choices:
        return gr.Dropdown(choices=choices, value=names[0], label="class", elem_id="condition")
    return gr.Textbox(label="class (index)", value="0")


def _image(label: str, elem_id: str):
    return gr.Image(label=label, type="filepath", format="png", interactive=False, elem_id=elem_id)


def build_app(explorer: Explorer) -> gr.Blocks:
    """The page: shared condition / steps / guidance fields, then the four task tabs. One task runs at a time (they
    share the model)."""
    model = explorer.model
    run = {"concurrency_limit": 1, "concurrency_id": "model"}
    with gr.Blocks(title="seedspace explorer", analytics_enabled=False) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            prior = explorer.prior_record.get("prior")
            gr.Markdown(f"model: `{model.name}` ({explorer.ref}), seeds of shape {tuple(model.seed_shape)}; NAO "
                        f"prior: {'chi(d)' if prior is None else repr(prior_from_record(prior))}")
            condition = _condition_field(model)
            steps = gr.Slider(1, MAX_PAGE_STEPS, value=int(model.default_steps), step=1, label="DDIM steps")
            guidance = gr.Slider(GUIDANCE_RANGE[0], 20.0, value=float(model.default_guidance), step=0.1,
                                 label="guidance scale")

        with gr.Tab("Interpolate"):
            with gr.Row():
                with gr.Column():
                    seed_a = gr.Textbox(label="endpoint A: seed or blend (e.g. 11, 1111:0.2|2222:0.8)", value="11")
                    upload_a = gr.File(label="or upload image A (inverted)", file_types=UPLOAD_TYPES,
                                       elem_id="upload-a")
                with gr.Column():
                    seed_b = gr.Textbox(label="endpoint B: seed or blend", value="42")
                    upload_b = gr.File(label="or upload image B (inverted)", file_types=UPLOAD_TYPES,
                                       elem_id="upload-b")
            with gr.Row():
                methods = gr.CheckboxGroup(list(FRAME_METHODS), value=["slerp", "nao", "nao@chi"],
                                           label="methods (one row each)", elem_id="interpolate-methods")
                frames = gr.Slider(2, MAX_PAGE_FRAMES, value=7, step=1, label="frames per path")
            go = gr.Button("Interpolate", variant="primary", elem_id="interpolate-run")
            status = gr.Markdown(elem_id="interpolate-status")
            grid = _image("grid (one row per method)", "interpolate-grid")
            plot = gr.Plot(label="|x| / sqrt(d) along each path")
            download = gr.File(label="run folder (.zip)", interactive=False)
            go.click(page_callback(
                lambda a, ua, b, ub, m, n, c, s, g, progress: explorer.interpolate(
                    a, b, ua, ub, m, int(n), c, c, s, g, progress=progress),
                lambda r: [str(r.image), r.plot, str(r.archive)], 3),
                [seed_a, upload_a, seed_b, upload_b, methods, frames, condition, steps, guidance],
                [grid, plot, download, status], **run)

        with gr.Tab("Centroid"):
            with gr.Row():
                uploads = gr.File(label="images of one class (or seed files)", file_count="multiple",
                                  file_types=UPLOAD_TYPES)
                seeds = gr.Textbox(label="and/or seeds (e.g. 1,2,3)", value="")
            with gr.Row():
                method = gr.Dropdown(list(CENTROID_METHODS), value="nao", label="centroid method")
                c_frames = gr.Slider(2, MAX_PAGE_FRAMES, value=5, step=1, label="frames per path")
            go = gr.Button("Centroid", variant="primary")
            status = gr.Markdown(elem_id="centroid-status")
            with gr.Row():
                centroid_image = _image("centroid", "centroid-image")
                c_plot = gr.Plot(label="|x| / sqrt(d) from the centroid to each input")
            c_grid = _image("paths from the centroid to each input", "centroid-grid")
            c_download = gr.File(label="run folder (.zip)", interactive=False)
            go.click(page_callback(
                lambda u, s_, m, n, c, s, g, progress: explorer.centroid(
                    u, s_, m, int(n), c, c, s, g, progress=progress),
                lambda r: [str(r.folder / "centroid.png"), r.plot, str(r.image), str(r.archive)], 4),
                [uploads, seeds, method, c_frames, condition, steps, guidance],
                [centroid_image, c_plot, c_grid, c_download, status], **run)

        with gr.Tab("Travel"):
            with gr.Row():
                keyframes = gr.Textbox(label="keyframes: seeds or blends, in order", value="1,2,3")
                t_uploads = gr.File(label="and/or keyframe images (after the typed ones)", file_count="multiple",
                                    file_types=UPLOAD_TYPES)
            with gr.Row():
                t_method = gr.Dropdown(list(INTERPOLATION_METHODS), value="nao", label="path method")
                t_frames = gr.Slider(2, MAX_PAGE_FRAMES, value=8, step=1, label="frames per segment")
                easing = gr.Radio(list(EASINGS), value="linear", label="easing")
                loop = gr.Checkbox(label="loop back to the first keyframe", value=False)
                fps = gr.Slider(*FPS_RANGE, value=12, step=0.1, label="fps")
            go = gr.Button("Travel", variant="primary")
            status = gr.Markdown(elem_id="travel-status")
            with gr.Row():
                video = gr.Video(label="MP4", interactive=False)
                gif = gr.Image(label="GIF", type="filepath", format="gif", interactive=False)
            t_grid = _image("frames (one row per segment)", "travel-grid")
            t_download = gr.File(label="run folder (.zip)", interactive=False)
            go.click(page_callback(
                lambda k, u, m, n, e, lp, f, c, s, g, progress: explorer.travel(
                    k, u, m, int(n), bool(lp), e, float(f), c, c, s, g, progress=progress),
                lambda r: [str(r.videos["mp4"]), str(r.videos["gif"]), str(r.image), str(r.archive)], 4),
                [keyframes, t_uploads, t_method, t_frames, easing, loop, fps, condition, steps, guidance],
                [video, gif, t_grid, t_download, status], **run)

        with gr.Tab("Norms"):
            with gr.Row():
                n_seeds = gr.Textbox(label="seeds or blends", value="1,2,3,4,5,6,7,8")
                n_uploads = gr.File(label="and/or images (inverted) or seed files", file_count="multiple",
                                    file_types=UPLOAD_TYPES)
                typical = gr.Number(value=0.999, label="typical interval probability")
            go = gr.Button("Norms", variant="primary")
            status = gr.Markdown(elem_id="norms-status")
            histogram = _image("norms against chi(d)", "norms-histogram")
            table = gr.Dataframe(headers=["seed", "|x|/sqrt(d)", "z", "percentile", "KS p", "flags"],
                                 label="per seed (flagged: atypical norm or non-Gaussian entries)")
            n_download = gr.File(label="run folder (.zip)", interactive=False)
            go.click(page_callback(
                lambda s_, u, t, c, s, progress: explorer.norms(u, s_, c, c, s, float(t), progress=progress),
                lambda r: [str(r.image), r.table, str(r.archive)], 3),
                [n_seeds, n_uploads, typical, condition, steps],
                [histogram, table, n_download, status], **run)
    return app


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int | None = None, block: bool = True) -> gr.Blocks:
    """Start the page on ``host:port`` (Gradio prints the address); ``block=False`` returns with the server
    running in the background (``app.close()`` stops it). Blocking, Ctrl-C and SIGTERM stop the server and
    propagate (Gradio's own wait swallows them, which made the command exit 0)."""
    app = build_app(explorer)
    app.queue()
    app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False,
               prevent_thread_lock=True, allowed_paths=[str(Path(explorer.runs_dir).resolve())],
               footer_links=[], quiet=not block)
    if block:
        try:
            while True:
                time.sleep(0.5)
        finally:
            app.close()
    return app
