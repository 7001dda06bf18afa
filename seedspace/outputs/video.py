"""Videos: H.264 MP4 through imageio's ffmpeg plugin and looping GIFs through Pillow."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from .files import atomic_path
from .images import pil_image


def save_mp4(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """(N, H, W, C) uint8 -> H.264 / yuv420p MP4 through imageio's ffmpeg plugin (even sizes required)."""
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
