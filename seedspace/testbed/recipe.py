"""The recipe of a testbed: every setting that decides the bytes of a trained testbed, validated when made."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..checks import GUIDANCE_RANGE, MAX_STEPS, MAX_THREADS, SEED_INT_LIMIT, check_int, check_number
from ..hardware import cpu_has_native_bf16

OBJECTIVES = ("epsilon", "flow")
UNET_CHANNELS = (32, 64, 64)
IMAGE_SIZES = (8, 16, 32)
FULL = "full"  # an exposure that limits nothing: the class's whole long-tailed split


def parse_exposure(text: str):
    """``--exposure``'s text -> the recipe's value: 'N' (every tail class sees N images), 'full', or per-class
    'name=N,name=full' (a tuple of (class name, count) pairs). ValueError naming the flag for anything else."""
    text = str(text).strip()
    if "=" not in text:
        return FULL if text == FULL else _exposure_count(text, "--exposure")
    pairs = []
    for part in text.split(","):
        name, eq, count = part.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"--exposure: {part!r} is not name=count (e.g. 3=0,8=5)")
        pairs.append((name.strip(), FULL if count.strip() == FULL else _exposure_count(count.strip(), "--exposure")))
    return tuple(pairs)


def _exposure_count(text, flag: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be a count of images >= 0 or 'full', got {text!r}") from None
    return check_int(value, flag, 0)


def exposure_text(exposure) -> str:
    """The recipe's exposure as ``--exposure`` takes it."""
    if isinstance(exposure, tuple):
        return ",".join(f"{name}={count}" for name, count in exposure)
    return str(exposure)


@dataclass(frozen=True)
class TestbedRecipe:
    """Everything that decides the bytes of a trained testbed (a resumed training must use the same), the thread
    count included: CPU kernels split their sums by thread, so it can change the last bit of the weights.

    ``fewshot`` and ``test_references`` images per class are held out of the data (seeded by ``seed``) and never
    trained on; the diffusion model sees the long-tailed split of the rest (class c keeps n_max * imbalance^(-c / (C
    - 1)) images; 1 = all), the judge and the encoder all of it. A data set with its own test split (Fashion-MNIST)
    takes the few-shot images from it and keeps the rest of it as test references.

    ``exposure``: how many images of each exposure-limited class the diffusion model sees (the axis of the rare-
    concept study): None (no class limited), a count or ``'full'`` for each tail class of the long-tailed split
    (the ``class_groups`` tail of its counts), or (class name, count or ``'full'``) pairs. A limited class keeps
    the first ``count`` images of its long-tailed split (seeded order); 0 leaves it out of the diffusion training,
    so the model can draw it only with the null condition. Its pool images the model did not see form the
    ``exposure-held-out`` split (real images the generator never saw, for the benchmark's oracle and references).
    """

    __test__ = False  # not a pytest class
    steps: int = 4000
    batch_size: int = 128
    lr: float = 1e-3
    imbalance: float = 100.0
    seed: int = 0
    fewshot: int = 100
    test_references: int = 100
    image_size: int = 32
    channels: tuple[int, ...] = UNET_CHANNELS
    judge: bool = True
    encoder: bool = True
    classifier_epochs: int = 4
    ema_decay: float = 0.999
    cond_drop: float = 0.1
    bf16: bool | None = None  # bf16 autocast; None: where the CPU computes bf16 natively (hardware.py)
    default_steps: int = 50
    default_guidance: float = 2.0
    name: str | None = None
    objective: str = "epsilon"
    calibrate: bool = True  # the finished model's norm prior written into the folder (prior.json)
    threads: int | None = None  # torch CPU threads every stage computes with (None: this process's count, recorded)
    exposure: int | str | tuple | None = None  # images of each exposure-limited class the diffusion model sees

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "exposure", _checked_exposure(self.exposure))
        if self.bf16 is None:
            object.__setattr__(self, "bf16", cpu_has_native_bf16())
        if not isinstance(self.bf16, bool):
            raise ValueError(f"bf16 must be True, False or None (auto), got {self.bf16!r}")
        check_int(self.steps, "steps", 1)
        check_int(self.batch_size, "batch_size", 1, 65536)
        check_number(self.lr, "lr", 0.0, 1.0, low_open=True)
        check_number(self.imbalance, "imbalance", 1.0)
        check_int(self.seed, "seed", 0, SEED_INT_LIMIT - 1)
        if self.threads is not None:
            check_int(self.threads, "threads", 1, MAX_THREADS)
        for flag in ("judge", "encoder", "calibrate"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        check_int(self.fewshot, "fewshot", 1)
        check_int(self.test_references, "test_references", 1)
        check_int(self.classifier_epochs, "classifier_epochs", 1)
        check_number(self.ema_decay, "ema_decay", 0.0, 1.0)
        check_number(self.cond_drop, "cond_drop", 0.0, 1.0, low_open=True)
        check_int(self.default_steps, "default_steps", 1, MAX_STEPS)
        check_number(self.default_guidance, "default_guidance", *GUIDANCE_RANGE)
        if self.name is not None and (not str(self.name).strip() or any(ord(c) < 32 for c in str(self.name))):
            raise ValueError(f"name must be a non-empty line of text, got {self.name!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}, got {self.image_size}")
        if not 1 <= len(self.channels) <= 4 or any(c < 4 or c % 4 for c in self.channels):
            raise ValueError(f"channels must be 1 to 4 multiples of 4 (e.g. 32,64,64), got {self.channels}")
        if self.image_size % 2 ** (len(self.channels) - 1):
            raise ValueError(f"image_size {self.image_size} cannot be halved {len(self.channels) - 1} times "
                             f"for {len(self.channels)} UNet levels")

    def command_options(self) -> list[str]:
        """The ``seedspace testbed train`` options that give this recipe (those that differ from the defaults)."""
        options = []
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), f.default
            if f.name == "bf16":  # always written: its default depends on the machine
                options += ["--dtype", "bfloat16" if value else "float32"]
                continue
            if value == default or f.name in ("ema_decay", "cond_drop"):
                continue
            if f.name in ("judge", "encoder", "calibrate"):
                options.append(f"--skip-{f.name}")
            elif f.name == "exposure":
                options += ["--exposure", exposure_text(value)]
            else:
                shown = ",".join(map(str, value)) if f.name == "channels" else value
                options += [f"--{f.name.replace('_', '-')}", str(shown)]
        return options


def _checked_exposure(exposure):
    """The exposure in its one form (pairs as a tuple of (name, count) tuples: a JSON record gives lists);
    ValueError naming --exposure for a negative or non-integer count, an empty or repeated class name."""
    if exposure is None or exposure == FULL:
        return exposure
    if not isinstance(exposure, (list, tuple)):
        return check_int(exposure, "--exposure", 0)
    if not exposure:
        raise ValueError("--exposure names no class")
    pairs = []
    for pair in exposure:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str) or not pair[0]:
            raise ValueError(f"--exposure: each entry is a class name and a count, got {pair!r}")
        name, count = pair
        pairs.append((name, count if count == FULL else check_int(count, f"--exposure of class {name!r}", 0)))
    names = [name for name, _ in pairs]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise ValueError(f"--exposure names class {twice!r} twice")
    return tuple(pairs)
