"""Images: float tensors to uint8, PNGs with a ``parameters`` chunk, image folders, upscaling and labelled grids."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin, UnidentifiedImageError

from .files import atomic_path
from .metadata import PARAMETERS_KEY


def to_uint8(images) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] (torch or numpy) -> (N, H, W, C) uint8."""
    arr = images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images, dtype=np.float32)
    arr = np.clip(np.rint(np.clip(arr, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)
    return arr.transpose(0, 2, 3, 1)


NOT_FINITE = "not finite (NaN or infinite values)"


def degenerate(image) -> str | None:
    """Why a generated image (C, H, W) of floats in [0, 1] carries no picture, or None when it does: values that
    are not finite, or one value everywhere once written as 8-bit pixels (all black, all white, one grey). A model
    draws such images from seeds far off its shell; they are failures to report, never data to write as a success."""
    arr = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image, dtype=np.float32)
    if not np.isfinite(arr).all():
        return NOT_FINITE
    pixels = to_uint8(arr[None])
    if pixels.min() != pixels.max():
        return None
    value = int(pixels.flat[0])
    return "constant (all black)" if value == 0 else "constant (all white)" if value == 255 else f"constant ({value})"


def first_degenerate(images) -> tuple[int, str] | None:
    """(index, why) of the first image of a batch (N, C, H, W) that carries no picture (:func:`degenerate`), or
    None when every image does."""
    return next(((i, why) for i, image in enumerate(images) if (why := degenerate(image)) is not None), None)


def pil_image(array: np.ndarray):
    """(H, W, C) uint8 -> PIL image (L for one channel, RGB for three)."""
    if array.ndim == 3 and array.shape[2] == 1:
        return Image.fromarray(array[:, :, 0], mode="L")
    return Image.fromarray(array)


def save_png(path: str | Path, image, parameters: str | None = None) -> Path:
    """Write a PNG atomically; ``parameters`` goes into a tEXt/iTXt chunk named ``parameters`` (as web UIs do).

    No timestamps or other varying data are written: the same pixels and parameters give the same bytes.
    """
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
    named = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    broken = next((p for p in named if p.is_symlink() and not p.exists()), None)
    if broken is not None:  # skipping it would quietly leave an image out
        raise ValueError(f"{broken} is a link to {os.readlink(broken)}, which does not exist")
    images = [p for p in named if p.is_file()]
    if not images:
        raise ValueError(f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return images


MAX_IMAGE_PIXELS = 8192 * 8192  # larger inputs are refused before decoding (Pillow's own guard is 179 megapixels)


def read_image(path: str | Path) -> Image.Image:
    """An image file, decoded in full; ValueError naming the file when it is a folder, unreadable, or over
    ``MAX_IMAGE_PIXELS`` (checked from its header, before decoding: a small file can claim a huge size)."""
    if Path(path).is_dir():
        raise ValueError(f"cannot read image {path}: it is a folder")
    size = "its size"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = f"{im.size[0]}x{im.size[1]} pixels"
                if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
                    raise Image.DecompressionBombError(size)
                im.load()
                return im.copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = min(MAX_IMAGE_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_IMAGE_PIXELS)
        raise ValueError(f"image {path} is too large ({size}; seedspace reads images of up to "
                         f"{limit / 1e6:g} megapixels)") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None


def read_png_pixels(path: str | Path) -> np.ndarray:
    """(H, W, C) uint8 pixels of a PNG written by :func:`save_png` (the inverse of it for L and RGB images)."""
    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert("L" if im.mode in ("L", "I", "I;16") else "RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    return array[:, :, None] if array.ndim == 2 else array



def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (H, W, C) or (N, H, W, C) uint8 arrays by an integer factor."""
    if factor <= 1:
        return array
    return array.repeat(factor, axis=-3).repeat(factor, axis=-2)


def auto_upscale(size: int, target: int = 256) -> int:
    """The smallest integer factor that brings ``size`` pixels to at least ``target``."""
    return max(1, math.ceil(target / max(size, 1)))


def make_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str] | None = None,
              col_labels: Sequence[str] | None = None, min_cell: int = 64, pad: int = 2):
    """A labelled grid (PIL RGB image) of (H, W, C) uint8 cells; cells are upscaled (nearest) to ``min_cell``."""
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
