"""SeedSelect's reference images: read and check one set, or one set per seed."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch

from ...outputs import image_files

ImageSet = Union[str, Path, torch.Tensor, Sequence[torch.Tensor], Sequence[Union[str, Path]]]


def reference_sets(model, reference_images: ImageSet | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Validate references: one set (a (K, C, H, W) tensor, a list of (C, H, W) tensors or of image files, a
    folder of images) or several (a list of (K, C, H, W) tensors, one set per seed). ValueError on no images, a
    single image, mismatched sizes, a size the model does not make, or values outside [0, 1]."""
    if reference_images is None:
        raise ValueError("no reference images given")
    if isinstance(reference_images, (list, tuple)) and reference_images and all(
            isinstance(t, torch.Tensor) and t.ndim == 4 for t in reference_images):
        return [_check_image_set(model, t, f"reference set {i}") for i, t in enumerate(reference_images)]
    return [_check_image_set(model, reference_images, "reference images")]


def _as_tensor(model, images, what: str) -> torch.Tensor:
    """A folder, a list of files or a list of (C, H, W) tensors -> one (K, C, H, W) tensor."""
    if isinstance(images, (str, Path)):
        images = image_files(images)  # a folder of reference images
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"{what}: no reference images given")
        if all(isinstance(p, (str, Path)) for p in images):
            return model.load_images(list(images))
        if not all(isinstance(t, torch.Tensor) for t in images):
            raise ValueError(f"{what}: mix of paths and tensors")
        shapes = {tuple(t.shape[-3:]) if t.ndim >= 3 else tuple(t.shape) for t in images}
        if len(shapes) > 1:
            raise ValueError(f"{what}: reference images have mismatched sizes {sorted(shapes)}; resize them to "
                             f"{'x'.join(map(str, model.image_shape))} (model.load_images does this for files)")
        return torch.stack([t if t.ndim == 3 else t.reshape(t.shape[-3:]) for t in images])
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{what}: reference images must be a tensor (K, C, H, W) or a list, got {type(images).__name__}")
    return images


def _check_image_set(model, images, what: str) -> torch.Tensor:
    images = _as_tensor(model, images, what)
    if images.ndim == 3:
        images = images[None]
    if images.ndim == 4 and images.shape[0] == 0:
        raise ValueError(f"{what}: no reference images given")
    if images.ndim != 4 or images.numel() == 0:
        raise ValueError(f"{what}: reference images must have shape (K, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] < 2:
        raise ValueError(f"{what}: SeedSelect needs at least 2 reference images, got 1 (the targets are means over "
                         "the references and the centroid initialisations need several inversions)")
    expected = tuple(model.image_shape)
    if tuple(images.shape[1:]) != expected:
        raise ValueError(f"{what}: reference images have size {'x'.join(map(str, images.shape[1:]))} but the model "
                         f"makes {'x'.join(map(str, expected))} images; resize them (model.load_images does this for files)")
    images = images.float()
    if not torch.isfinite(images).all():
        raise ValueError(f"{what}: reference images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{what}: reference images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return images.clamp(0, 1)
