"""Range checks of numeric settings (guidance, steps, frames, fps, batch sizes, counts), shared by the API, the
command line and the validation of recorded runs: every value of the right type, finite and in its range, so that
bad input fails before any work with one line naming the setting."""

from __future__ import annotations

import math
import numbers

GUIDANCE_RANGE = (0.0, 100.0)  # classifier-free guidance: 0 = unconditional, 1 = conditional, >1 = extrapolated
MAX_STEPS = 1000  # DDIM steps: never more than a model's training timesteps (1000 for every shipped scheduler)
MAX_BATCH_SIZE = 4096
MAX_FRAMES = 10_000  # frames per path or travel segment
MAX_OPT_STEPS = 10_000  # SeedSelect optimisation steps (seedselect, augment's seedselect strategy)
LARGE_JOB_BYTES = 256 * 2 ** 20  # runs that would write more need allow_large (--allow-large)
MAX_PER_CLASS = 1_000_000  # augment's images per class: planning more takes minutes before anything is written
MAX_SEEDS = 100_000  # seeds drawn by --random-seeds, or optimised together
FPS_RANGE = (0.1, 240.0)  # ffmpeg cannot mux frame rates far outside this (it writes broken files)
MAX_UPSCALE = 64
SEED_INT_LIMIT = 2 ** 63  # seed integers (and generator seeds) are in [0, 2^63)
MAX_THREADS = 1024  # torch CPU threads a run computes with
# a class name becomes a folder and a file-name part (with an index and temporary suffixes): file systems allow
# 255 bytes per name, so names are bounded well below that, in bytes (a letter outside ASCII takes 2 to 4)
MAX_NAME_BYTES = 100


def check_name_length(name: str, what: str) -> None:
    """ValueError when ``name`` takes more than ``MAX_NAME_BYTES`` bytes in UTF-8 (it would not fit in file names)."""
    size = len(str(name).encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ValueError(f"{what} {str(name)[:40]!r}... takes {size} bytes, over {MAX_NAME_BYTES}: it names folders "
                         "and files; shorten it")


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; ValueError naming ``name`` for anything else (bools and floats too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in [{_bound(low, '-inf')}, {_bound(high, 'inf')}], got {value}")
    return value


def check_number(value, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """``value`` as a finite float in [low, high] (``(low, high]`` with ``low_open``); ValueError naming ``name``
    for NaN, infinities, non-numbers and values out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if not math.isfinite(value) or too_low or (high is not None and value > high):
        interval = f"{'(' if low_open else '['}{_bound(low, '-inf')}, {_bound(high, 'inf')}]"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value}")
    return value


def check_guidance(value, name: str = "guidance") -> float:
    """A classifier-free guidance scale, finite and in ``GUIDANCE_RANGE``."""
    return check_number(value, name, *GUIDANCE_RANGE)


def check_steps(value, name: str = "steps") -> int:
    """A number of DDIM steps in [1, MAX_STEPS]."""
    return check_int(value, name, 1, MAX_STEPS)


def check_batch_size(value, name: str = "batch_size") -> int:
    """Images per model call, in [1, MAX_BATCH_SIZE]."""
    return check_int(value, name, 1, MAX_BATCH_SIZE)


def check_frames(value, name: str = "frames") -> int:
    """Frames of one path or travel segment, both ends counted: in [2, MAX_FRAMES]."""
    return check_int(value, name, 2, MAX_FRAMES)


def check_fps(value, name: str = "fps") -> float:
    """A video frame rate in ``FPS_RANGE``."""
    return check_number(value, name, *FPS_RANGE)


def _bound(value, unbounded: str) -> str:
    return unbounded if value is None else f"{value:g}"
