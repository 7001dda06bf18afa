"""The settings of every command that writes a run folder with a model (interpolate, centroid, travel, seedselect,
norms, invert, cluster): one frozen class each, whose record is run.json's ``parameters`` and the ``params`` of every
frame PNG, so that ``--resume`` and ``regenerate`` rebuild the settings from the record and a damaged record fails
with one line naming the key. :class:`ModelSettings` is the part every such run shares (model, condition, steps,
dtype, batch size, image size and fit), :class:`RunSettings` adds what a generating run shares (guidance, sampler,
compiled forward, prior).

    settings = InterpolateSettings(model=model_record(model, "testbed"), condition={"class": 0},
                                   seeds=[{"int": 11}, {"int": 42}], steps=50, guidance=2.0, methods=["slerp", "nao"])
    record = settings.to_record()            # run.json's parameters
    InterpolateSettings.from_record(record) == settings

The command line and the explorer build the record through these classes, so they write the same run.json.
A setting at its "unset" value (None, and ``compile`` off) is left out of the record, as records made before that
setting existed have it, and reads back as unset.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from ..backends.images import FITS
from ..checks import (DTYPE_NAMES, FPS_RANGE, GUIDANCE_RANGE, MAX_FRAMES, MAX_IMAGE_SIDE, MAX_LR, MAX_OPT_STEPS,
                      MAX_SEEDS, MAX_STEPS, MAX_UPSCALE, Flag, Integer, Items, Number, OneOf, Rule, Text, check_number,
                      check_seed, setting)
from ..geometry import CENTROID_METHODS, CLUSTER_METRICS, INTERPOLATION_METHODS, prior_from_record
from ..settings import BATCH_SIZE, SEED, Settings, nested
from .frames import EASINGS, FRAME_METHODS, frame_counts

VIDEO_FORMATS = ("mp4", "gif")
INIT_METHODS = ("random", "nao-centroid", "nao-paths", "cog-centroid")  # SeedSelect's initialisations


def _model_record(value, name):
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise ValueError(f"{name} must be an object with an 'id' string, got {value!r}")
    return value


def _condition(value, name):
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object, got {value!r}")
    if "prompt" in value:
        prompt = value["prompt"]
        if not (isinstance(prompt, str) or isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt)):
            raise ValueError(f"{name}.prompt must be a string or a list of strings, got {prompt!r}")
        if not isinstance(value.get("negative_prompt", ""), str):
            raise ValueError(f"{name}.negative_prompt must be a string")
        return value
    classes = value.get("class")
    classes = classes if isinstance(classes, list) else [classes]
    if not classes or not all(v is None or isinstance(v, str) or isinstance(v, int) and not isinstance(v, bool)
                              for v in classes):
        raise ValueError(f"{name}.class must be a class index, a class name or a list of them, got {value.get('class')!r}")
    return value


def _seed_item(item, name):
    """One seed entry: ``{"int": N}``, ``{"file": path, ...}``, ``{"image": path, ...}`` or a weighted blend
    ``{"blend": [entries], "weights": [w, ...]}`` (weights non-negative, not all zero)."""
    if not isinstance(item, dict):
        raise ValueError(f"{name}: a seed entry must be an object, got {item!r}")
    if "blend" in item:
        SEED_ITEMS(item["blend"], f"{name} blend")
        weights = item.get("weights")
        if not isinstance(weights, list) or len(weights) != len(item["blend"]):
            raise ValueError(f"{name}: a blend needs one weight per entry")
        total = sum(check_number(w, f"{name} blend weight", 0.0) for w in weights)
        check_number(total, f"{name} sum of blend weights", 0.0, low_open=True)
    elif "int" in item:
        check_seed(item["int"], f"{name} seed integer")
    elif not any(isinstance(item.get(k), str) and item[k] for k in ("file", "image")):
        raise ValueError(f"{name}: a seed entry needs 'int', 'file', 'image' or 'blend', got {item!r}")
    return item


def _prior_record(value, name):
    try:
        prior_from_record(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{name}: {exc}") from None
    return value


def _travel_frames(value, name):
    """Frames per travel segment as the record keeps them (text; an integer becomes its text)."""
    frame_counts(value, name)
    return str(value)


def _object(value, name):
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object, got {value!r}")
    return value


SEED_ITEMS = Items(Rule(_seed_item, (3, {"int": -1}, {"blend": [{"int": 1}], "weights": [0.0]})))
FRAMES = Integer(2, MAX_FRAMES)


@dataclass(frozen=True, kw_only=True)
class ModelSettings(Settings):
    """What every run that uses a model records: the model (its record), the condition, the sampler's steps, the
    dtype and batch size it ran with, the image size of pipelines, and how each image it read was fitted and
    converted."""

    command: ClassVar[str] = ""

    model: dict = setting(rule=Rule(_model_record, ({}, {"id": ""}, "testbed")))
    condition: dict = setting(rule=Rule(_condition, ([], {"class": True}, {"prompt": 3})))
    steps: int = setting(rule=Integer(1, MAX_STEPS))
    dtype: str = setting("float32", OneOf(DTYPE_NAMES))
    batch_size: int = setting(1, BATCH_SIZE)
    height: int | None = setting(None, Integer(1, MAX_IMAGE_SIDE, optional=True))  # None: the model's own size
    width: int | None = setting(None, Integer(1, MAX_IMAGE_SIDE, optional=True))
    fit: str | None = setting(None, OneOf(FITS, optional=True))  # how images were fitted (runs that read images)
    image_conversions: tuple | None = setting(None, Items(Rule(_object, (3,)), min_len=0, optional=True))

    def to_record(self) -> dict:
        record = super().to_record()
        unset = {f.name for f in dataclasses.fields(self) if f.name in _OMITTED_WHEN_DEFAULT
                 and getattr(self, f.name) == f.default}
        return {key: value for key, value in record.items() if key not in unset}


# left out of a record at their default: records made before these settings existed lack them
_OMITTED_WHEN_DEFAULT = frozenset({"scheduler", "height", "width", "fit", "image_conversions", "compile", "prior"})


@dataclass(frozen=True, kw_only=True)
class RunSettings(ModelSettings):
    """What every generating run records besides: the guidance, the sampler, the compiled forward, and the norm
    prior of NAO (None: chi(d))."""

    guidance: float = setting(rule=Number(*GUIDANCE_RANGE))
    scheduler: str | None = setting(None, Text(optional=True))  # None: the model's own sampler
    compile: bool = setting(False, Flag())  # the compiled forward (its bytes are not the eager ones)
    prior: dict | None = setting(None, Rule(_prior_record, (3, {"family": "no-such-family"}), optional=True))

    def check_together(self) -> None:
        shape = self.model.get("seed_shape")
        if self.prior is not None and isinstance(shape, list) and shape and all(isinstance(v, int) for v in shape):
            d = prior_from_record(self.prior).d
            if math.prod(shape) != d:
                raise ValueError(f"prior is for d={d}, not for the model's seed shape {shape}")


@dataclass(frozen=True, kw_only=True)
class FrameSettings(RunSettings):
    """A frame run: the seeds (seed entries; images are inverted) it plans its frames from."""

    seeds: tuple = setting(rule=SEED_ITEMS)


@dataclass(frozen=True, kw_only=True)
class InterpolateSettings(FrameSettings):
    """``seedspace interpolate``: ``frames`` frames along the path between two endpoints, one row per method."""

    command: ClassVar[str] = "interpolate"
    methods: tuple = setting(("nao",), Items(OneOf(FRAME_METHODS), repeats=False))
    frames: int = setting(9, FRAMES)


@dataclass(frozen=True, kw_only=True)
class CentroidSettings(FrameSettings):
    """``seedspace centroid``: the centroid of the seeds and ``frames`` frames along the path to each."""

    command: ClassVar[str] = "centroid"
    method: str = setting("nao", OneOf(CENTROID_METHODS))
    frames: int = setting(5, FRAMES)


@dataclass(frozen=True)
class VideoSettings(Settings):
    """A travel's videos: the formats written, frames per second, the nearest-neighbour upscale (0: automatic)."""

    field_prefix: ClassVar[str] = "video."
    formats: tuple = setting(VIDEO_FORMATS, Items(OneOf(VIDEO_FORMATS), min_len=0, repeats=False))
    fps: float = setting(12.0, Number(*FPS_RANGE))
    upscale: int = setting(0, Integer(0, MAX_UPSCALE))


@dataclass(frozen=True, kw_only=True)
class TravelSettings(FrameSettings):
    """``seedspace travel``: a path per segment between keyframes (``frames``: one count or one per segment),
    eased, optionally back to the first keyframe, with videos."""

    command: ClassVar[str] = "travel"
    method: str = setting("nao", OneOf(INTERPOLATION_METHODS))
    frames: str = setting("12", Rule(_travel_frames, (1, "2,x", True)))
    loop: bool = setting(False, Flag())
    easing: str = setting("linear", OneOf(EASINGS))
    video: VideoSettings = setting(VideoSettings(), nested(VideoSettings, ({"fps": 0}, 3)))


def _open_unit(value, name):
    value = check_number(value, name, 0.0, 1.0, low_open=True)
    if value >= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1), got {value}")
    return value


def _image_entry(value, name):
    if not isinstance(value, dict) or not isinstance(value.get("image"), str) or not value["image"]:
        raise ValueError(f"{name} must list {{\"image\": path}} entries, got {value!r}")
    return value


IMAGE_ENTRY = Rule(_image_entry, (3, {"image": ""}))  # an image a run read: {"image": path, "sha256": ...}


@dataclass(frozen=True, kw_only=True)
class SeedSelectRunSettings(RunSettings):
    """``seedspace seedselect``: ``num_seeds`` seeds optimised for ``opt_steps`` AdamW steps (learning rate ``lr``)
    from the initialisation ``init`` towards the reference ``images``, with CLIP or a ``features`` folder's
    network as the semantic judge (None: the model's own)."""

    command: ClassVar[str] = "seedselect"
    images: tuple = setting(rule=Items(IMAGE_ENTRY, min_len=2))
    init: str = setting("nao-centroid", OneOf(INIT_METHODS))
    opt_steps: int = setting(30, Integer(0, MAX_OPT_STEPS))
    lr: float = setting(0.1, Number(0.0, MAX_LR, low_open=True))
    seed: int = setting(0, SEED)
    num_seeds: int = setting(1, BATCH_SIZE)
    features: str | None = setting(None, Text(optional=True))


@dataclass(frozen=True, kw_only=True)
class NormsSettings(ModelSettings):
    """``seedspace norms``: the norm diagnosis of ``seeds`` (images inverted with ``steps``); a seed outside the
    central ``typical`` interval of chi(d) is flagged."""

    command: ClassVar[str] = "norms"
    seeds: tuple = setting(rule=SEED_ITEMS)
    typical: float = setting(0.999, Rule(_open_unit, (0, 1, 1.5, "0.9")))


@dataclass(frozen=True, kw_only=True)
class InvertSettings(ModelSettings):
    """``seedspace invert``: DDIM inversion of ``images`` with ``steps`` at guidance 1, each regenerated."""

    command: ClassVar[str] = "invert"
    images: tuple = setting(rule=Items(IMAGE_ENTRY))
    guidance: float = setting(1.0, OneOf((1.0,)))  # inversions are made and checked unguided-conditional


@dataclass(frozen=True, kw_only=True)
class ClusterSettings(FrameSettings):
    """``seedspace cluster``: k-means of the seeds in the ``method`` metric (k-means++ from ``seed``)."""

    command: ClassVar[str] = "cluster"
    k: int = setting(rule=Integer(1, MAX_SEEDS))
    method: str = setting("nao", OneOf(CLUSTER_METRICS))
    seed: int = setting(0, SEED)


FRAME_SETTINGS = {cls.command: cls for cls in (InterpolateSettings, CentroidSettings, TravelSettings)}
RUN_SETTINGS = {**FRAME_SETTINGS, **{cls.command: cls for cls in (SeedSelectRunSettings, NormsSettings, InvertSettings,
                                                                   ClusterSettings)}}
