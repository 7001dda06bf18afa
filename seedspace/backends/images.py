"""How an image file becomes a model input: its colour and its size, each conversion said and recorded.

- **Colour** is kept where the model has colour (RGB pipelines); a grey model (the testbeds, 1-channel pixel
  UNets) takes the image's luminance (ITU-R 601, Pillow's ``convert("L")``). A grey image given to a colour model
  is repeated in the three channels; an alpha channel is dropped (the colour values are kept as they are).
- **Size**: an image of the model's aspect ratio is resized (bicubic). Any other is fitted by ``fit``:
  ``crop`` (the default) cuts the centred region of the model's aspect ratio and resizes it, so nothing is
  distorted and the borders of the longer side are lost; ``pad`` resizes the whole image into the model's frame
  and fills the rest with black (the testbeds' background), so nothing is lost.

Every conversion is one log line (logger ``seedspace.images``; the command line prints it as a note) and, given a
list, one record ``{"image", "from": [w, h, mode], "to": [w, h, mode], "fit", "steps"}`` that run.json keeps.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

FITS = ("crop", "pad")
DEFAULT_FIT = "crop"
log = logging.getLogger("seedspace.images")

_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def check_fit(fit) -> str:
    """``fit`` as given when it is one of ``FITS``; ValueError otherwise."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    return fit


def _has_colour(image: Image.Image) -> bool:
    if image.mode == "P":
        return "A" in image.palette.mode if image.palette else True
    return image.mode not in _GREY_MODES


def fit_image(image: Image.Image, channels: int, height: int, width: int, fit: str = DEFAULT_FIT,
              notes: list | None = None) -> np.ndarray:
    """A PIL image -> float32 array (channels, height, width) in [0, 1]: grey (channels == 1) or RGB, fitted to
    height x width by ``fit`` ('crop' or 'pad'); each conversion made is appended to ``notes`` as a short phrase."""
    check_fit(fit)
    notes = [] if notes is None else notes
    target = "L" if channels == 1 else "RGB"
    if target == "L" and _has_colour(image):
        notes.append("colour to grey (the model is grey)")
    elif target == "RGB" and not _has_colour(image):
        notes.append("grey to RGB")
    if "A" in image.mode or image.mode == "P" and "transparency" in image.info:
        notes.append("alpha dropped")
    image = image.convert(target)
    w0, h0 = image.size
    if (w0, h0) != (width, height):
        if w0 * height == h0 * width:
            notes.append(f"resized {w0}x{h0} to {width}x{height}")
            image = image.resize((width, height), Image.BICUBIC)
        elif fit == "crop":
            scale = max(width / w0, height / h0)
            cw, ch = width / scale, height / scale
            box = ((w0 - cw) / 2, (h0 - ch) / 2, (w0 + cw) / 2, (h0 + ch) / 2)
            notes.append(f"centre-cropped {w0}x{h0} to {round(cw)}x{round(ch)} (the model's aspect ratio) and resized "
                         f"to {width}x{height}")
            image = image.resize((width, height), Image.BICUBIC, box=box)
        else:
            scale = min(width / w0, height / h0)
            nw, nh = max(1, round(w0 * scale)), max(1, round(h0 * scale))
            notes.append(f"resized {w0}x{h0} to {nw}x{nh} and padded with black to {width}x{height}")
            canvas = Image.new(target, (width, height), 0)
            canvas.paste(image.resize((nw, nh), Image.BICUBIC), ((width - nw) // 2, (height - nh) // 2))
            image = canvas
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def report_conversion(path, size: tuple[int, int], mode: str, shape: tuple[int, ...], fit: str, notes: list,
                      records: list | None = None) -> dict:
    """Log one line for the conversion of image ``path`` (``size`` (w, h) and ``mode`` as read) to ``shape``
    (C, H, W) and append its record to ``records``; returns the record."""
    to_mode = "L" if shape[0] == 1 else "RGB"
    record = {"image": str(path), "from": [int(size[0]), int(size[1]), mode], "to": [int(shape[2]), int(shape[1]),
              to_mode], "fit": fit, "steps": list(notes)}
    log.debug(conversion_line(record))  # the commands note it once per run
    if records is not None:
        records.append(record)
    return record


def conversion_line(record: dict) -> str:
    """The one line that says how an image was converted."""
    (w0, h0, m0), (w1, h1, m1) = record["from"], record["to"]
    return f"image {Path(record['image']).name}: {w0}x{h0} {m0} -> {w1}x{h1} {m1}: {'; '.join(record['steps'])}"
