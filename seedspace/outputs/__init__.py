"""Everything seedspace writes: run folders and atomic files, PNGs with a ``parameters`` text chunk, grids, seed
files (safetensors, never pickles) and videos (the ``run.json`` record of a run lives in :mod:`seedspace.runs`).

Every file is written under a temporary name in its final folder and renamed into place (``os.replace``), so a
crash or Ctrl-C never leaves a half-written file under the final name.
"""

from .files import (
    allocate_run_dir, atomic_path, canonical_json, check_out_available, file_sha256, follow_umask, new_run_dir,
    read_json_object, write_json, write_text,
)
from .images import (
    IMAGE_SUFFIXES, NOT_FINITE, auto_upscale, degenerate, first_degenerate, image_files, make_grid, pil_image, read_image, read_png_pixels, save_png, to_uint8, upscale,
)
from .metadata import JSON_PREFIX, PARAMETERS_KEY, format_parameters, parse_parameters, read_png_parameters
from .seed_files import load_seed_file, save_seeds, seed_file_metadata
from .video import save_gif, save_mp4

__all__ = [
    "IMAGE_SUFFIXES", "JSON_PREFIX", "PARAMETERS_KEY", "allocate_run_dir", "atomic_path", "auto_upscale",
    "NOT_FINITE", "canonical_json", "check_out_available", "degenerate", "first_degenerate", "file_sha256", "follow_umask", "format_parameters", "image_files", "load_seed_file",
    "make_grid", "new_run_dir", "parse_parameters", "pil_image", "read_image", "read_json_object", "read_png_parameters", "read_png_pixels", "save_gif", "save_mp4",
    "save_png", "save_seeds", "seed_file_metadata", "to_uint8", "upscale", "write_json", "write_text",
]
