"""Loading a model by name: the embedded testbed, a testbed-format folder, or a diffusers model."""

from __future__ import annotations

from pathlib import Path

import torch

from .base import SeedModel
from .diffusers_backend import load_diffusers_model
from .testbed import TestbedModel

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None -> cuda if available, else mps, else cpu; anything else as given."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """None -> float32; a torch dtype as given; a name from ``DTYPES``; ValueError for anything else."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_model(name: str | Path | None = None, device: str | torch.device | None = "cpu",
               dtype: str | torch.dtype | None = None, **kwargs) -> SeedModel:
    """Load a model: None or 'testbed' -> the embedded testbed; a testbed-format folder (one with a
    ``testbed.json``, e.g. from `seedspace testbed train`); any other local folder or hub id -> diffusers.

    Hub ids are only read from the local Hugging Face cache (no network at run time).
    """
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    if name in (None, "testbed"):
        return TestbedModel.from_package(device=device, dtype=dtype, **kwargs)
    if (Path(name) / "testbed.json").is_file():
        return TestbedModel.from_folder(name, device=device, dtype=dtype, **kwargs)
    return load_diffusers_model(str(name), device=device, dtype=dtype, **kwargs)
