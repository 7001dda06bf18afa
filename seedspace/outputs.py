"""Everything the commands write: run folders, atomic files, PNGs with a ``parameters`` text chunk, grids,
seed files (safetensors, never pickles), videos, and the ``run.json`` record of a run.

Every file is written under a temporary name in its final folder and renamed into place (``os.replace``), so a
crash or Ctrl-C never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

PARAMETERS_KEY = "parameters"
JSON_PREFIX = "seedspace: "


# -- run folders ----------------------------------------------------------------------------------------
def check_out_available(out: str | Path | None) -> None:
    """Fail early (before any slow work) when ``--out`` names something that already exists."""
    if out is not None and Path(out).exists():
        raise FileExistsError(f"output folder {out} already exists; choose another --out or remove it")


def allocate_run_dir(command: str, out: str | Path | None = None, base: str | Path = "outputs") -> Path:
    """``--out`` (must not exist) or the next free ``<base>/<command>-NNNNN`` folder, created empty."""
    if out is not None:
        out = Path(out)
        check_out_available(out)
        out.mkdir(parents=True)
        return out
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(command)}-(\d+)$")
    used = [int(m.group(1)) for p in base.iterdir() if (m := pattern.match(p.name))]
    index = max(used, default=0) + 1
    while True:
        folder = base / f"{command}-{index:05d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:  # another process took it
            index += 1


# -- atomic writes --------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension); rename it to ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical_json(data) -> str:
    """Compact, key-sorted JSON: the same parameters always give the same bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=_json_default, ensure_ascii=True)


# -- images ---------------------------------------------------------------------------------------------
def to_uint8(images) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] (torch or numpy) -> (N, H, W, C) uint8."""
    arr = images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images, dtype=np.float32)
    arr = np.clip(np.rint(np.clip(arr, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    return arr.transpose(0, 2, 3, 1)


def pil_image(array: np.ndarray):
    """(H, W, C) uint8 -> PIL image (L for one channel, RGB for three)."""
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array)


def save_png(path: str | Path, image, parameters: str | None = None) -> Path:
    """Write a PNG atomically; ``parameters`` goes into a tEXt/iTXt chunk named ``parameters`` (as web UIs do).

    No timestamps or other varying data are written: the same pixels and parameters give the same bytes.
    """
    from PIL import PngImagePlugin

    img = pil_image(image) if isinstance(image, np.ndarray) else image
    info = None
    if parameters is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(PARAMETERS_KEY, parameters)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", pnginfo=info)
    return Path(path)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def image_files(folder: str | Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; ValueError when it is missing or holds none."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise ValueError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ValueError(f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


def read_png_pixels(path: str | Path) -> np.ndarray:
    """(H, W, C) uint8 pixels of a PNG written by :func:`save_png` (the inverse of it for L and RGB images)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert("L" if im.mode in ("L", "I", "I;16") else "RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    return array[:, :, None] if array.ndim == 2 else array


def read_png_parameters(path: str | Path) -> str:
    """The ``parameters`` text of a PNG written by seedspace (or a web UI)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            text = im.text.get(PARAMETERS_KEY) if hasattr(im, "text") else None
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    if text is None:
        raise ValueError(f"{path} has no '{PARAMETERS_KEY}' text chunk")
    return text


def format_parameters(record: dict, summary: dict) -> str:
    """Web-UI style text: a condition line, an optional negative prompt line, ``Key: value, ...`` and a last line
    ``seedspace: {json}`` holding everything needed to regenerate the image (see :func:`parse_parameters`)."""
    lines = [str(summary.pop("_condition", ""))]
    negative = summary.pop("_negative", None)
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(f"{k}: {v}" for k, v in summary.items() if v is not None))
    lines.append(JSON_PREFIX + canonical_json(record))
    return "\n".join(lines)


def parse_parameters(text: str) -> dict:
    """The JSON record from a ``parameters`` text written by :func:`format_parameters`."""
    for line in reversed(text.splitlines()):
        if line.startswith(JSON_PREFIX):
            try:
                return json.loads(line[len(JSON_PREFIX):])
            except json.JSONDecodeError as exc:
                raise ValueError(f"corrupt seedspace parameters: {exc}") from None
    raise ValueError("the parameters text holds no seedspace record (was the image written by seedspace?)")


def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (H, W, C) or (N, H, W, C) uint8 arrays by an integer factor."""
    if factor <= 1:
        return array
    return array.repeat(factor, axis=-3).repeat(factor, axis=-2)


def auto_upscale(size: int, target: int = 256) -> int:
    return max(1, math.ceil(target / max(size, 1)))


def make_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] | None = None,
              col_labels: Sequence[str] | None = None, min_cell: int = 64, pad: int = 2):
    """A labelled grid (PIL RGB image) of (H, W, C) uint8 cells; cells are upscaled (nearest) to ``min_cell``."""
    from PIL import Image, ImageDraw, ImageFont

    cells = [[c for c in row] for row in rows]
    h = max(c.shape[0] for row in cells for c in row)
    w = max(c.shape[1] for row in cells for c in row)
    factor = auto_upscale(min(h, w), min_cell)
    ch, cw = h * factor, w * factor
    font = ImageFont.load_default()
    char_w, text_h = 7, 12
    left = (max((len(s) for s in row_labels), default=0) * char_w + 8) if row_labels else 0
    top = (text_h + 6) if col_labels else 0
    ncols = max(len(row) for row in cells)
    width = left + ncols * (cw + pad) + pad
    height = top + len(cells) * (ch + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(cells):
        y = top + pad + r * (ch + pad)
        if row_labels:
            draw.text((4, y + ch // 2 - text_h // 2), row_labels[r], fill=(0, 0, 0), font=font)
        for c, cell in enumerate(row):
            x = left + pad + c * (cw + pad)
            canvas.paste(pil_image(upscale(cell, factor)).convert("RGB").resize((cw, ch), Image.NEAREST), (x, y))
    if col_labels:
        for c, label in enumerate(col_labels):
            x = left + pad + c * (cw + pad)
            draw.text((x + 2, 3), str(label)[: max(1, cw // char_w)], fill=(0, 0, 0), font=font)
    return canvas


# -- seeds ----------------------------------------------------------------------------------------------
def save_seeds(path: str | Path, tensors: dict, metadata: dict | None = None) -> Path:
    """Seeds as safetensors (``{"seeds": (N, *seed_shape), ...}``), written atomically; ``metadata`` is stored as
    canonical JSON under the metadata key ``seedspace`` (read it back with :func:`seed_file_metadata`)."""
    from safetensors.torch import save_file

    # one metadata key: safetensors writes its metadata map in hash order, so several keys would make the
    # bytes of identical runs differ
    meta = {"seedspace": canonical_json(metadata or {})}
    tensors = {k: v.detach().cpu().contiguous().float() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_seed_file(path: str | Path) -> "torch.Tensor":  # noqa: F821
    """A seed file: the tensor under key "seeds", or the only tensor in the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"seed file {path} does not exist")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"cannot read seed file {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if "seeds" in tensors:
        return tensors["seeds"]
    if len(tensors) == 1:
        return next(iter(tensors.values()))
    raise ValueError(f"seed file {path} holds several tensors ({', '.join(sorted(tensors))}) and none named 'seeds'")


def seed_file_metadata(path: str | Path) -> dict:
    """The metadata written by :func:`save_seeds` (an empty dict for other seed files)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta["seedspace"]) if "seedspace" in meta else meta


def file_sha256(path: str | Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# -- videos ---------------------------------------------------------------------------------------------
def save_mp4(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """(N, H, W, C) uint8 -> H.264 / yuv420p MP4 through imageio's ffmpeg plugin (even sizes required)."""
    import imageio.v2 as imageio

    if frames.shape[-1] == 1:
        frames = frames.repeat(3, axis=-1)
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(str(tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=2, ffmpeg_log_level="error",
                                    output_params=["-threads", "1", "-fflags", "+bitexact"])
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()
    return Path(path)


def save_gif(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """(N, H, W, C) uint8 -> looping GIF (Pillow)."""
    images = [pil_image(f) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=max(1, round(1000 / fps)), loop=0, optimize=False)
    return Path(path)


# -- run.json -------------------------------------------------------------------------------------------
class RunRecord:
    """The ``run.json`` of a run: parameters, model, inputs, one entry per finished frame, and a status
    (``running`` -> ``completed`` | ``interrupted`` | ``failed``). Rewritten atomically on every update."""

    def __init__(self, folder: Path, command: str, parameters: dict, **extra):
        from . import __version__

        self.folder = Path(folder)
        self.path = self.folder / "run.json"
        self.data = {"command": command, "status": "running", "seedspace_version": __version__,
                     "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "folder": str(self.folder), "parameters": parameters, **extra, "frames": [], "files": []}
        self.write()

    @classmethod
    def resume(cls, folder: Path) -> "RunRecord":
        """Reopen a run's record to continue it: its finished frames are kept, its status is ``running`` again
        and the time of the resume is appended to ``resumed``."""
        self = cls.__new__(cls)
        self.folder = Path(folder)
        self.path = self.folder / "run.json"
        self.data = json.loads(self.path.read_text())
        self.data["status"] = "running"
        self.data.pop("error", None)
        self.data["resumed"] = self.data.get("resumed", []) + [_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")]
        self.data["files"] = []
        self.write()
        return self

    def finished_frames(self) -> set[int]:
        """Indices of the frames recorded as finished whose files still exist."""
        return {f["index"] for f in self.data["frames"] if (self.folder / f["file"]).is_file()}

    def __setitem__(self, key, value):
        self.data[key] = value

    def write(self) -> None:
        write_json(self.path, self.data)

    def add_frames(self, frames: Sequence[dict]) -> None:
        self.data["frames"].extend(frames)
        self.write()

    def add_file(self, path: Path) -> None:
        self.data["files"].append(str(Path(path).relative_to(self.folder)))

    def finish(self, status: str, error: str | None = None) -> None:
        self.data["status"] = status
        self.data["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if error:
            self.data["error"] = error
        self.write()

    @contextlib.contextmanager
    def guard(self):
        """Finalise as completed; on Ctrl-C mark the run interrupted (finished frames stay), then re-raise."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted")
            raise
        except BaseException as exc:
            self.finish("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.finish("completed")
