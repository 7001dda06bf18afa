"""The inputs of an augmentation run: reference images per class (a folder of class sub-folders, tensors, or the
testbed's long-tailed training split), the model condition of each class, and the references with their
inversions (:mod:`.inversion`) stored once in the run folder as safetensors."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from ... import outputs
from ...backends.base import UNCONDITIONAL
from ...checks import check_name_length
from . import strategies

REFERENCES_FILE = "references.safetensors"


@dataclass
class ClassReferences:
    """One class: its name (as the model knows it, or the prompt), its ImageFolder sub-folder, its reference
    images (k, C, H, W) in [0, 1], where they came from, and the model condition it is generated with."""

    name: str
    folder: str
    images: torch.Tensor
    sources: list = field(default_factory=list)
    condition: object = None

    def digest(self) -> str:
        """A content hash of the reference images (what a resumed run must still be given)."""
        return hashlib.sha256(self.images.float().contiguous().numpy().tobytes()).hexdigest()[:16]

    def record(self) -> dict:
        return {"name": self.name, "folder": self.folder, "condition": self.condition,
                "references": len(self.images), "sha256": self.digest(), "sources": self.sources}


def folder_name(name: str) -> str:
    """A class name as a single safe folder / file-name part ("T-shirt/top" -> "T-shirt_top")."""
    safe = re.sub(r"[^\w.\- ]+", "_", str(name)).strip(" .")
    return safe or "class"


def from_folder(model, folder: str | Path) -> list[ClassReferences]:
    """One class per sub-folder of ``folder`` (sorted by name), its images the references (read at the model's
    size); ValueError for a missing folder, no sub-folders, a sub-folder without images or an unreadable image."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"references folder {folder} does not exist or is not a folder")
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise ValueError(f"references folder {folder} has no class sub-folders (expected {folder}/<class>/*.png)")
    classes = []
    for sub in subs:
        files = outputs.image_files(sub)  # ValueError: no images
        sources = [{"file": str(p.resolve()), "sha256": outputs.file_sha256(p)[:16]} for p in files]
        classes.append(ClassReferences(sub.name, folder_name(sub.name), model.load_images([str(p) for p in files]),
                                       sources))
    return classes


def from_tensors(model, references: Mapping[str, torch.Tensor]) -> list[ClassReferences]:
    """Classes from ``{class name: images (k, C, H, W) in [0, 1]}`` (in the mapping's order)."""
    if not references:
        raise ValueError("no classes given")
    classes = []
    for name, images in references.items():
        images = torch.as_tensor(images).float().cpu()
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(f"class {name!r}: references must be images (k, C, H, W) with k >= 1, got "
                             f"{tuple(images.shape)}")
        if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise ValueError(f"class {name!r}: reference images must be finite and in [0, 1]")
        classes.append(ClassReferences(str(name), folder_name(name), images,
                                       [{"tensor": i} for i in range(images.shape[0])]))
    return classes


def testbed_split(model, per_class: int, seed: int, split: str = "train-longtail") -> dict[str, torch.Tensor]:
    """``per_class`` reference images of every class, drawn (seeded) from a split of the testbed model's own data
    (by default the long-tailed split its UNet was trained on)."""
    if per_class < 1:
        raise ValueError(f"--testbed-split needs at least 1 reference per class, got {per_class}")
    names = getattr(model, "class_names", None)
    if not names or not hasattr(model, "data_split"):
        raise ValueError(f"{model.name} has no class names or data splits; --testbed-split needs a testbed model")
    images, labels = model.data_split(split)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    out = {}
    for index, name in enumerate(names):
        pool = np.flatnonzero(labels.numpy() == index)
        if len(pool) < per_class:
            raise ValueError(f"the {split} split has {len(pool)} images of {name!r}, fewer than {per_class}")
        pick = np.sort(rng.choice(pool, per_class, replace=False))
        # prepare_image: the model's own conversion of an image file (28x28 garments are padded like in training)
        out[name] = torch.from_numpy(np.stack([model.prepare_image(Image.fromarray(images[i].numpy()))
                                               for i in pick]))
    return out


def resolve_classes(model, references, settings) -> list[ClassReferences]:
    """Validated classes with their model condition (``settings.condition``): references are a folder or a mapping
    of tensors, each class with enough of them for ``settings``' strategy to give ``per_class`` distinct seeds."""
    condition = settings.condition
    classes = from_tensors(model, references) if isinstance(references, Mapping) else from_folder(model, references)
    folders = [c.folder for c in classes]
    if len(set(f.lower() for f in folders)) != len(folders):
        raise ValueError(f"two classes map to the same folder name: {folders}")
    for c in classes:
        check_name_length(c.folder, "class folder")
        if tuple(c.images.shape[1:]) != tuple(image_shape(model)):
            raise ValueError(f"class {c.name!r}: references have size {tuple(c.images.shape[1:])}, the model makes "
                             f"{tuple(image_shape(model))}")
        if len(c.images) < settings.min_references:
            raise ValueError(f"class {c.name!r} has {len(c.images)} reference image(s); this strategy needs at least "
                             f"{settings.min_references} (a centroid or a geodesic needs two inversions)")
        c.condition = model_condition(model, c.name, condition)
        try:
            strategies.check_capacity(settings.strategy, settings.per_class, len(c.images), settings.clusters)
        except ValueError as exc:
            raise ValueError(f"class {c.name!r}: {exc}") from None
    if condition != UNCONDITIONAL and model.conditioning == "class":
        by_index = {}
        for c in classes:  # "8" and "Bag" are one class of Fashion-MNIST: two folders would mix into one label
            index = model.class_index(c.name)
            if index in by_index:
                raise ValueError(f"class folders {by_index[index]!r} and {c.name!r} both name class {index} of "
                                 f"{model.name}; merge them or rename one")
            by_index[index] = c.name
    return classes


def image_shape(model):
    """The shape of one image the model makes (its seed shape for pixel models without one)."""
    shape = getattr(model, "image_shape", None)
    return tuple(shape) if shape is not None else tuple(model.seed_shape)


def model_condition(model, name: str, mode: str):
    """What ``model.generate`` gets for a class: the class itself (class models: name or index; text models: the
    name as prompt), or with ``mode='unconditional'`` the null class / empty prompt."""
    if model.conditioning == "prompt":
        return "" if mode == UNCONDITIONAL else name
    if model.conditioning == "none":
        if mode != UNCONDITIONAL:
            raise ValueError(f"{model.name} is unconditional: use condition 'unconditional'")
        return None
    if mode == UNCONDITIONAL:
        model.class_index(UNCONDITIONAL)  # ValueError without a null class
        return UNCONDITIONAL
    try:
        model.class_index(name)
    except ValueError as exc:
        raise ValueError(f"class folder {name!r} is not a class of {model.name} ({exc}); name the folders after the "
                         "model's classes (or indices), or use condition 'unconditional'") from None
    return name


def save_references(path: Path, classes: list[ClassReferences], inversions: dict | None) -> None:
    """References (and inversions) of every class in one safetensors file, atomically."""
    tensors = {f"images/{c.folder}": c.images for c in classes}
    for folder, seeds in (inversions or {}).items():
        tensors[f"inversions/{folder}"] = seeds
    outputs.save_seeds(path, tensors, {"classes": [c.folder for c in classes]})


def load_references(path: Path) -> tuple[dict, dict]:
    """({folder: reference images}, {folder: inversions}) from :func:`save_references`'s file."""
    tensors = load_file(str(path))
    split = {"images": {}, "inversions": {}}
    for key, value in tensors.items():
        kind, folder = key.split("/", 1)
        split[kind][folder] = value
    return split["images"], split["inversions"]
