"""The ``parameters`` text chunk of a PNG: a web-UI style summary plus a ``seedspace: {json}`` line that holds
everything needed to make the image again."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from .files import canonical_json


PARAMETERS_KEY = "parameters"
JSON_PREFIX = "seedspace: "


def read_png_parameters(path: str | Path) -> str:
    """The ``parameters`` text of a PNG written by seedspace (or a web UI)."""
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
