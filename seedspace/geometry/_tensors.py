"""Input handling shared by the geometry modules.

Everything public in :mod:`seedspace.geometry` accepts torch tensors or numpy
arrays of any shape and returns the same kind of object, with the input's
dtype and device.  The heavy lifting (norms, dot products, the final lift of a
2-D solution back to ``R^d``) runs on the input's device in float64 (float32
for the final lift of non-float64 inputs); the low-dimensional solvers run in
float64 numpy on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Tuple

import numpy as np
import torch


@dataclass(frozen=True)
class Spec:
    """What the caller handed us, so results can be returned the same way."""

    numpy: bool
    dtype: torch.dtype
    device: torch.device


def as_tensor(x: Any, name: str) -> Tuple[torch.Tensor, Spec]:
    """Return ``x`` as a floating torch tensor (no copy when possible) and its :class:`Spec`.

    Integer inputs are promoted to float64; bool and complex inputs are rejected.
    """
    if isinstance(x, torch.Tensor):
        t, is_numpy = x, False
    elif isinstance(x, (list, tuple)) and x and all(isinstance(e, torch.Tensor) for e in x):
        shapes = {tuple(e.shape) for e in x}
        if len(shapes) > 1:
            raise ValueError(f"{name} must all have one shape, got {', '.join(map(str, sorted(shapes)))}")
        t, is_numpy = torch.stack(list(x)), False
    else:
        try:
            arr = np.asarray(x)
        except ValueError:  # ragged nested lists
            raise ValueError(f"{name} must all have one shape (a ragged list was given)") from None
        if arr.dtype == object:
            raise ValueError(f"{name} must be a numeric tensor or array, got {type(x).__name__}")
        t, is_numpy = torch.from_numpy(np.ascontiguousarray(arr)), True
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must be real-valued floating point, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t, Spec(numpy=is_numpy, dtype=t.dtype, device=t.device)


def restore(t: torch.Tensor, spec: Spec):
    """Cast a result back to the caller's dtype/device and container type."""
    t = t.to(device=spec.device, dtype=spec.dtype)
    return t.cpu().numpy() if spec.numpy else t


def restore_values(values: np.ndarray, spec: Spec):
    """Return float64 scalar-valued results (distances, energies) as numpy or as a tensor on the input device."""
    values = np.asarray(values, dtype=np.float64)
    return values if spec.numpy else torch.from_numpy(values).to(spec.device)


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype used for the O(steps * d) lift: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")
    return value


MAX_OUTPUT_VALUES = 2 ** 31  # values one path may hold (8 GiB in float32): more is a typo, not a path


def check_steps(steps: int, values_per_step: int = 1) -> int:
    """``steps`` as an int >= 2 whose path of ``values_per_step`` values a step stays within ``MAX_OUTPUT_VALUES``;
    ValueError naming it, before anything is allocated."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or int(steps) != steps or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    if int(steps) * values_per_step > MAX_OUTPUT_VALUES:
        raise ValueError(f"steps={int(steps)} of {values_per_step} values each would hold "
                         f"{int(steps) * values_per_step:.3g} values, over {MAX_OUTPUT_VALUES:.3g}")
    return int(steps)


def check_grid(grid: int) -> int:
    if isinstance(grid, bool) or int(grid) != grid or grid < 2:
        raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
    return int(grid)


def flat_seeds(t: torch.Tensor, name: str, batched: bool) -> torch.Tensor:
    """View seeds as (B, D) in their own dtype (no copy).

    ``batched=False``: the whole tensor is one seed -> (1, D).
    ``batched=True``: the first axis indexes seeds -> (B, D).
    Non-finite entries and zero norms are detected where the (float64) norms are computed
    (:func:`check_norms`), which saves a pass over large batches.
    """
    if batched:
        if t.dim() < 2:
            raise ValueError(f"batched {name} must have shape (B, *seed_shape), got {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"{name} is empty (no seeds)")
        flat = t.reshape(t.shape[0], -1)
    else:
        flat = t.reshape(1, -1)
    if flat.shape[1] == 0:
        raise ValueError(f"{name} has no entries (seed dimension 0)")
    return flat


def check_norms(norms, name: str) -> None:
    """Norms computed in float64 are finite iff all entries are finite."""
    if not bool(torch.isfinite(norms).all()):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    if bool((norms == 0).any()):
        raise ValueError(f"{name} contains a zero-norm seed; the Gaussian prior's weight is infinite at the origin")


def flat_seeds64(t: torch.Tensor, name: str, batched: bool) -> torch.Tensor:
    """:func:`flat_seeds` as a float64 copy with non-zero rows (for small sets of seeds)."""
    flat = flat_seeds(t, name, batched).to(torch.float64)
    check_norms(torch.linalg.vector_norm(flat, dim=1), name)
    return flat


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: str = "a and b") -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
