"""Loading a model by name: the embedded testbed, a testbed-format folder, or a diffusers model."""

from __future__ import annotations

import importlib
import inspect
import logging
import math
from pathlib import Path

import torch

from ..checks import DTYPE_NAMES, MAX_STEPS, check_dtype, check_image_size
from ..hardware import cpu_has_native_bf16
from ..outputs import read_json_object
from .base import SeedModel
from .diffusers_backend import load_diffusers_model
from .testbed import EMBEDDED_MODELS, TestbedModel

log = logging.getLogger("seedspace.backends")
DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}


def available_devices() -> list[str]:
    """The devices this machine has: 'cpu', then 'cuda:0', 'cuda:1', ... and 'mps' where present."""
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None -> cuda if available, else mps, else cpu; anything else as given, after checking that this
    machine has it (ValueError naming the devices it has)."""
    available = available_devices()
    if device in (None, "auto"):
        return torch.device(next((d for d in available if d.startswith(("cuda", "mps"))), "cpu").split(":")[0])
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; this machine has {', '.join(available)}") from None
    index = resolved.index or 0
    if resolved.type != "cpu" and f"{resolved.type}:{index}" not in available and resolved.type not in available:
        raise ValueError(f"device {device!r} is not available; this machine has {', '.join(available)}")
    return resolved


def native_dtype(device: str | torch.device | None = "cpu") -> torch.dtype:
    """The fast dtype of ``device``: bfloat16 where the hardware computes it natively (a CUDA GPU that supports
    it; a CPU with AMX or AVX-512 BF16), else float32 (other CPUs, MPS)."""
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return torch.float32


def resolve_dtype(dtype: str | torch.dtype | None, device: str | torch.device | None = "cpu") -> torch.dtype:
    """None -> float32; 'auto' -> :func:`native_dtype` of ``device``; a torch dtype as given; a name of
    ``checks.DTYPE_NAMES``; ValueError for anything else."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if check_dtype(dtype) == "auto":
        return native_dtype(device)
    return DTYPES[dtype]


def dtype_name(dtype: str | torch.dtype | None, device: str | torch.device | None = "cpu") -> str:
    """The record name ('float32', 'float16', 'bfloat16') of a dtype, 'auto' resolved for ``device``: what run
    records keep, so that a run regenerates with the dtype it ran in on any machine."""
    return str(resolve_dtype(dtype, device)).removeprefix("torch.")


def load_model(name: str | Path | None = None, device: str | torch.device | None = "cpu",
               dtype: str | torch.dtype | None = None, compile: bool = False, *, height: int | None = None,
               width: int | None = None, fit: str | None = None, batch_size: int | None = None,
               negative_prompt: str | None = None, **kwargs) -> SeedModel:
    """Load a model: None or 'testbed' -> the embedded testbed, 'testbed-flow' -> the embedded flow-matching
    testbed; a testbed-format folder (one with a ``testbed.json``, e.g. from `seedspace testbed train`); any other
    local folder or hub id -> diffusers.

    ``compile=True`` runs a testbed's UNet through ``torch.compile`` for inference (other bytes than the eager
    forward: a recorded setting, see :mod:`~seedspace.backends.acceleration`); other models run eagerly, after one
    log line. Hub ids are only read from the local Hugging Face cache (no network at run time).

    The options a run records, None leaving the model's own: ``height`` x ``width`` (:func:`set_image_size`),
    ``fit`` (how images of another aspect ratio are fitted: 'crop' or 'pad'), ``batch_size`` and, for text
    pipelines, ``negative_prompt``.
    """
    if not isinstance(compile, bool):
        raise ValueError(f"compile must be True or False, got {compile!r}")
    check_image_size(height, width)  # before the model loads
    dtype = resolve_dtype(dtype, device)
    device = resolve_device(device)
    name = "testbed" if name is None else name
    folder = None if name in EMBEDDED_MODELS else Path(name).expanduser()
    if folder is not None and folder.is_dir():
        check_model_folder(folder)
    try:
        if folder is None:
            model = TestbedModel.from_package(name, device=device, dtype=dtype, compile=compile, **kwargs)
        elif (folder / "testbed.json").is_file():
            model = TestbedModel.from_folder(folder, device=device, dtype=dtype, compile=compile, **kwargs)
        else:
            if compile:
                log.warning("torch.compile is off (%s is not a testbed-format model); it runs eagerly",
                            name)
            model = load_diffusers_model(str(name), device=device, dtype=dtype, **kwargs)
    except RuntimeError as exc:  # torch: the weights do not fit the network the config describes
        raise ValueError(f"cannot load model {name}: its weights do not match its config.json "
                         f"({str(exc).splitlines()[0]})") from None
    return with_options(model, height, width, fit, batch_size, negative_prompt)


def with_options(model: SeedModel, height: int | None = None, width: int | None = None, fit: str | None = None,
                 batch_size: int | None = None, negative_prompt: str | None = None) -> SeedModel:
    """``model`` with the run options :func:`load_model` takes (None: as it is), for a model loaded before."""
    set_image_size(model, height, width)
    if fit is not None:
        model.image_fit = fit
    if batch_size:
        model.batch_size = batch_size
    if negative_prompt and hasattr(model, "negative_prompt"):
        model.negative_prompt = negative_prompt
    return model


def set_image_size(model, height: int | None, width: int | None) -> None:
    """Render at ``height`` x ``width`` (None: the model's own side): a diffusers pipeline takes any multiple of
    its ``size_multiple``; a fixed-size model (testbeds, pixel UNets) only its own size. ValueError otherwise."""
    if height is None and width is None:
        return
    check_image_size(height, width)
    if not hasattr(model, "set_size"):
        h, w = model.image_shape[1:]
        if (height or h, width or w) != (h, w):
            raise ValueError(f"height/width: {model.name} makes {w}x{h} images only (its size is fixed); height/width "
                             "are for diffusers text-to-image pipelines")
        return
    try:
        model.set_size(height, width)
    except ValueError:
        raise ValueError(f"height/width must be positive multiples of {model.size_multiple} for {model.name}, got "
                         f"{height or model.default_size[0]} x {width or model.default_size[1]}") from None


CONFIG_NAMES = ("testbed.json", "model_index.json", "config.json", "scheduler_config.json")
DEFAULT_CLASSES = {("scheduler", "scheduler_config.json"): "DDPMScheduler", ("unet", "config.json"): "UNet2DModel"}
TESTBED_KEYS = {"classes": list, "name": str, "default_steps": int, "default_guidance": float, "head_classes": list,
                "tail_classes": list}


def check_model_folder(folder: str | Path) -> None:
    """ValueError naming the file when a config of a model folder (``testbed.json``, ``model_index.json``, the
    components' ``config.json`` / ``scheduler_config.json``) is not a JSON object of the expected keys and types:
    the loaders would otherwise fail deep inside with a message about something else."""
    folder = Path(folder)
    for path in sorted(p for pattern in ("*", "*/*") for p in folder.glob(pattern) if p.name in CONFIG_NAMES):
        config = read_json_object(path)
        if path.name == "testbed.json":
            _check_testbed_config(path, config)
        elif path.name != "model_index.json":
            _check_component_config(path, config)


def _check_testbed_config(path: Path, config: dict) -> None:
    if "classes" not in config:
        raise ValueError(f"{path} has no 'classes' list")
    for key, kind in TESTBED_KEYS.items():
        if key in config and not _json_type_matches(config[key], kind):
            raise ValueError(f"{path}: '{key}' must be {_json_name(kind)}, got {config[key]!r}")
    classes = config["classes"]
    if not classes or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path}: 'classes' must be a non-empty list of class names")
    folded = [c.casefold() for c in classes]
    twice = next((c for i, c in enumerate(classes) if folded[i] in folded[:i]), None)
    if twice is not None:  # a class is looked up by name, case-insensitively: a second one could never be asked for
        raise ValueError(f"{path}: class name {twice!r} appears twice in 'classes' (case-insensitively)")
    if not 1 <= config.get("default_steps", 1) <= MAX_STEPS or not math.isfinite(config.get("default_guidance", 0)):
        raise ValueError(f"{path}: 'default_steps' must be in [1, {MAX_STEPS}] and 'default_guidance' finite")
    for key in ("head_classes", "tail_classes"):
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(classes) for c in config.get(key, [])):
            raise ValueError(f"{path}: '{key}' must list class indices in [0, {len(classes)})")


def _check_component_config(path: Path, config: dict) -> None:
    """Each key that the component's class (``_class_name``, looked up in diffusers; the class the testbed loader
    uses when it is missing) takes with a non-None default must hold a value of that default's JSON type."""
    class_name = config.get("_class_name", DEFAULT_CLASSES.get((path.parent.name, path.name)))
    if not isinstance(class_name, str):
        return
    diffusers = importlib.import_module("diffusers")  # lazy: diffusers takes seconds to import
    cls = getattr(diffusers, class_name, None)
    if cls is None:
        return
    for key, param in inspect.signature(cls.__init__).parameters.items():
        default = param.default
        if key in config and default not in (None, inspect.Parameter.empty) and \
                not _json_type_matches(config[key], type(default)):
            raise ValueError(f"{path}: '{key}' must be {_json_name(type(default))}, got {config[key]!r}")


def _json_type_matches(value, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or value == int(value))
    if kind in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)


def _json_name(kind: type) -> str:
    return {list: "a list", tuple: "a list", float: "a number", int: "an integer", bool: "a boolean",
            str: "a string"}.get(kind, f"a {kind.__name__}")
