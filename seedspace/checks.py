"""The one validator of settings, shared by the API, the command line and the validation of recorded runs: every
value of the right type, finite and in its range, so that bad input fails before any work with one line naming the
setting.

Two layers: ``check_*`` functions for one value, and constraint objects (:class:`Integer`, :class:`Number`,
:class:`OneOf`, :class:`Flag`, :class:`Text`, :class:`Items`, :class:`Rule`) that a settings class declares beside its fields with
:func:`setting`; :func:`validate` applies them (see :class:`seedspace.settings.Settings`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

GUIDANCE_RANGE = (0.0, 100.0)  # classifier-free guidance: 0 = unconditional, 1 = conditional, >1 = extrapolated
MAX_STEPS = 1000  # DDIM steps: never more than a model's training timesteps (1000 for every shipped scheduler)
MAX_BATCH_SIZE = 4096
MAX_FRAMES = 10_000  # frames per path or travel segment
MAX_OPT_STEPS = 10_000  # SeedSelect optimisation steps (seedselect, augment's seedselect strategy)
MAX_LR = 100.0  # SeedSelect's AdamW learning rate
LARGE_JOB_BYTES = 256 * 2 ** 20  # runs that would write more need allow_large (--allow-large)
MAX_PER_CLASS = 1_000_000  # augment's images per class: planning more takes minutes before anything is written
MAX_SEEDS = 100_000  # seeds drawn by --random-seeds, or optimised together
FPS_RANGE = (0.1, 240.0)  # ffmpeg cannot mux frame rates far outside this (it writes broken files)
MAX_UPSCALE = 64
SEED_INT_LIMIT = 2 ** 63  # seed integers (and generator seeds) are in [0, 2^63)
MAX_THREADS = 1024  # torch CPU threads a run computes with
MAX_IMAGE_SIDE = 8192  # pixels of a chosen image height or width (diffusers pipelines)
DTYPE_NAMES = ("float32", "float16", "bfloat16")  # the weights dtypes a run records
DTYPE_CHOICES = ("auto", *DTYPE_NAMES)  # what a user may ask for: auto = bfloat16 where computed natively
# a class name becomes a folder and a file-name part (with an index and temporary suffixes): file systems allow
# 255 bytes per name, so names are bounded well below that, in bytes (a letter outside ASCII takes 2 to 4)
MAX_NAME_BYTES = 100


class RecordError(ValueError):
    """A malformed record (run.json, a PNG's parameters): the message names the file and the record's key, not a
    command-line flag."""


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


def check_write_size(n_bytes: int, allow_large: bool, what: str = "this run") -> None:
    """ValueError when ``what`` would write more than :data:`LARGE_JOB_BYTES` (estimated ``n_bytes``) and
    ``allow_large`` is not set: the one bound on what a run writes (frame runs, norms, inversions, SeedSelect,
    augment)."""
    if n_bytes > LARGE_JOB_BYTES and not allow_large:
        raise ValueError(f"{what} would write about {n_bytes / 2 ** 20:.0f} MB, over {LARGE_JOB_BYTES >> 20} MB; "
                         "pass allow_large to go ahead")


def check_image_size(height, width) -> None:
    """A chosen image height and width (None: the model's own), each an integer in [1, MAX_IMAGE_SIDE]."""
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            check_int(value, name, 1, MAX_IMAGE_SIDE)


def check_seed(value, name: str = "seed") -> int:
    """A seed integer (or generator seed) in [0, SEED_INT_LIMIT)."""
    return check_int(value, name, 0, SEED_INT_LIMIT - 1)


def check_threads(value, name: str = "threads") -> int:
    """A torch CPU thread count in [1, MAX_THREADS]."""
    return check_int(value, name, 1, MAX_THREADS)


def check_dtype(value, name: str = "dtype", auto: bool = True) -> str:
    """A dtype name of ``DTYPE_NAMES`` (and 'auto' with ``auto``): the one vocabulary of every command and record."""
    return OneOf(DTYPE_CHOICES if auto else DTYPE_NAMES)(value, name)


class Constraint:
    """The rule of one setting: ``constraint(value, name)`` is the value in its one form (a tuple for a sequence,
    a float for a number) or a ValueError whose one line names ``name``. ``examples_refused`` are values it
    refuses (the settings contract test tries each)."""

    optional: bool = False

    def __call__(self, value, name: str):
        if value is None and self.optional:
            return None
        return self.check(value, name)

    def check(self, value, name: str):
        raise NotImplementedError

    @property
    def examples_refused(self) -> tuple:
        return () if self.optional else (None,)


@dataclass(frozen=True)
class Integer(Constraint):
    low: int | None = None
    high: int | None = None
    optional: bool = False

    def check(self, value, name):
        return check_int(value, name, self.low, self.high)

    @property
    def examples_refused(self):
        return (*super().examples_refused, "1", 1.5, True, *(b for b in (_below(self.low), _above(self.high)) if b is not None))


@dataclass(frozen=True)
class Number(Constraint):
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    optional: bool = False

    def check(self, value, name):
        return check_number(value, name, self.low, self.high, self.low_open)

    @property
    def examples_refused(self):
        edges = (self.low if self.low_open else _below(self.low), _above(self.high))
        return (*super().examples_refused, "1", float("nan"), True, *(e for e in edges if e is not None))


@dataclass(frozen=True)
class OneOf(Constraint):
    options: tuple = ()
    optional: bool = False

    def check(self, value, name):
        try:
            known = value in self.options
        except TypeError:  # unhashable or not comparable
            known = False
        if not known:
            raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, self.options))}")
        return value

    @property
    def examples_refused(self):
        return (*super().examples_refused, "no-such-choice", 3.5)


@dataclass(frozen=True)
class Flag(Constraint):
    optional: bool = False

    def check(self, value, name):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value

    @property
    def examples_refused(self):
        return (*super().examples_refused, "yes", 1)


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty line of text (names, file paths, sampler names: no control characters)."""

    optional: bool = False

    def check(self, value, name):
        if not isinstance(value, str) or not value.strip() or any(ord(c) < 32 for c in value):
            raise ValueError(f"{name} must be a non-empty line of text, got {value!r}")
        return value

    @property
    def examples_refused(self):
        return (*super().examples_refused, "", "a\nb", 3)


@dataclass(frozen=True)
class Items(Constraint):
    """A sequence (a tuple in its one form), each item checked by ``item``, ``min_len`` items or more, none twice
    unless ``repeats``; ``key`` says when two items are the same (default: equal)."""

    item: Constraint | None = None
    min_len: int = 1
    max_len: int | None = None
    repeats: bool = True
    key: Callable[[Any], Any] | None = None
    optional: bool = False

    def check(self, value, name):
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{name} must be a list, got {value!r}")
        items = tuple(value)
        if not items and self.min_len > 0:
            raise ValueError(f"{name}: none given")
        if len(items) < self.min_len or (self.max_len is not None and len(items) > self.max_len):
            most = "" if self.max_len is None else f" and at most {self.max_len}"
            raise ValueError(f"{name} must have at least {self.min_len}{most} entries, got {len(items)}")
        if self.item is not None:
            items = tuple(self.item(v, name) for v in items)
        if not self.repeats:
            seen = {}
            for item in items:
                key = (self.key or (lambda v: v))(item)
                if key in seen:
                    same = "" if seen[key] == item else f" (the same as {seen[key]!r})"
                    raise ValueError(f"{name} names {item!r} twice{same}")
                seen[key] = item
        return items

    @property
    def examples_refused(self):
        return (*super().examples_refused, "text", *(("x",) if self.item is not None else ()),
                *(((),) if self.min_len > 0 else ()))


@dataclass(frozen=True)
class Rule(Constraint):
    """A rule no other constraint states: ``function(value, name)`` returns the value in its one form or raises
    ValueError naming ``name``; ``refused``: values it refuses (for the contract test)."""

    function: Callable[[Any, str], Any] = None
    refused: tuple = ()
    optional: bool = False

    def check(self, value, name):
        return self.function(value, name)

    @property
    def examples_refused(self):  # None only where the rule says (some rules give None a meaning)
        return self.refused


def setting(default=dataclasses.MISSING, rule: Constraint | None = None) -> Any:
    """A dataclass field whose value ``rule`` checks (and brings to its one form) when the settings are made."""
    return dataclasses.field(default=default, metadata={"rule": rule})


def rule_of(field: dataclasses.Field) -> Constraint | None:
    return field.metadata.get("rule")


def validate(settings, prefix: str = "") -> None:
    """Check every field of a frozen dataclass against its declared rule (:func:`setting`), in field order, and
    store each value in its one form; the ValueError names ``prefix + field name``."""
    for field in dataclasses.fields(settings):
        rule = rule_of(field)
        if rule is not None:
            value = rule(getattr(settings, field.name), prefix + field.name)
            object.__setattr__(settings, field.name, value)


def _below(low):
    return None if low is None else low - 1


def _above(high):
    return None if high is None else high + 1


def _bound(value, unbounded: str) -> str:
    if value is None:
        return unbounded
    return str(value) if isinstance(value, numbers.Integral) else f"{value:g}"
