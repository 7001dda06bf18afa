"""The recipe of a testbed: every setting that decides the bytes of a trained testbed, validated when made."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..checks import GUIDANCE_RANGE, MAX_STEPS, Flag, Integer, Items, Number, OneOf, Rule, Text, check_int, setting
from ..hardware import cpu_has_native_bf16
from ..settings import SEED, THREADS_OR_CURRENT, Settings

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
class TestbedRecipe(Settings):
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
    steps: int = setting(4000, Integer(1))
    batch_size: int = setting(128, Integer(1, 65536))
    lr: float = setting(1e-3, Number(0.0, 1.0, low_open=True))
    imbalance: float = setting(100.0, Number(1.0))
    seed: int = setting(0, SEED)
    fewshot: int = setting(100, Integer(1))
    test_references: int = setting(100, Integer(1))
    image_size: int = setting(32, OneOf(IMAGE_SIZES))
    channels: tuple[int, ...] = setting(UNET_CHANNELS, Items(Integer(4), min_len=1, max_len=4))
    judge: bool = setting(True, Flag())
    encoder: bool = setting(True, Flag())
    classifier_epochs: int = setting(4, Integer(1))
    ema_decay: float = setting(0.999, Number(0.0, 1.0))
    cond_drop: float = setting(0.1, Number(0.0, 1.0, low_open=True))
    # bf16 autocast; None: where the CPU computes bf16 natively (hardware.py)
    bf16: bool | None = setting(None, Rule(lambda v, name: Flag()(cpu_has_native_bf16() if v is None else v, name),
                                           ("yes", 1)))
    default_steps: int = setting(50, Integer(1, MAX_STEPS))
    default_guidance: float = setting(2.0, Number(*GUIDANCE_RANGE))
    name: str | None = setting(None, Text(optional=True))
    objective: str = setting("epsilon", OneOf(OBJECTIVES))
    calibrate: bool = setting(True, Flag())  # the finished model's norm prior written into the folder (prior.json)
    # torch CPU threads every stage computes with (None: this process's count, recorded)
    threads: int | None = setting(None, THREADS_OR_CURRENT)
    # images of each exposure-limited class the diffusion model sees
    exposure: int | str | tuple | None = setting(None, Rule(lambda v, name: _checked_exposure(v), (-1, "half", ()),
                                                            optional=True))

    def check_together(self):
        if any(c % 4 for c in self.channels):
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
