"""Data for the embedded testbed: Fashion-MNIST (or any small labelled image set), long-tailed splits.

Images are handled as float tensors in [-1, 1] of shape (N, 1, 32, 32): 28x28 digits/garments are padded
by 2 background pixels on each side so the UNet sees a power-of-two size.

Two Fashion-MNIST splits ship inside the package (gzip'd safetensors, uint8), so the evaluation needs no system
package: :func:`shipped_split` ``"train-longtail"`` (the long-tailed training split the testbed was trained on)
and ``"test-references"`` (the test set without the shipped few-shot images: the judge's real references).
The Debian package ``dataset-fashion-mnist`` stays an option for training (:func:`load_fashion_mnist`).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package `dataset-fashion-mnist`
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
# name -> (file, the Fashion-MNIST split its ``source_indices`` point into)
SHIPPED_SPLITS = {"train-longtail": ("train-longtail.safetensors.gz", "train"),
                  "test-references": ("test-references.safetensors.gz", "test")}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IMAGE_SIZE = 32


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) as a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | Path = FASHION_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST as uint8 images (N, 28, 28) and int64 labels (N,). split: 'train' or 't10k'/'test'."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}[split]
    root = Path(root)
    images_path = root / f"{prefix}-images-idx3-ubyte.gz"
    if not images_path.exists():
        raise FileNotFoundError(
            f"Fashion-MNIST not found at {root}; install it with `apt-get install dataset-fashion-mnist` "
            "or pass --data PATH (an .npz with 'images' and 'labels', or a folder of class sub-folders)"
        )
    images = _read_idx(images_path)
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def _shipped_tensors(name: str, folder: str | Path | None = None) -> dict:
    if name not in SHIPPED_SPLITS:
        raise ValueError(f"unknown shipped split {name!r}; choose from {', '.join(SHIPPED_SPLITS)}")
    path = Path(folder or SHIPPED_DIR) / SHIPPED_SPLITS[name][0]
    if not path.is_file():
        raise ValueError(f"{path.parent} has no {name} split ({path.name}); a testbed folder ships it for the "
                         "long-tail benchmark and `augment --testbed-split`")
    with gzip.open(path, "rb") as f:
        return load(f.read())


def shipped_split(name: str, folder: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A Fashion-MNIST split shipped in the package: uint8 images (N, 28, 28) and int64 labels (N,).

    ``"train-longtail"``: :func:`long_tail_indices` (imbalance 100, seed 0) of the training set, 6,000 down to 60
    images per class (14,891), the testbed's diffusion training data. ``"test-references"``: the 9,000 test images
    not in the testbed's few-shot set. Rows are in source order (see :func:`shipped_source_indices`). ``folder``: a
    testbed folder holding its own splits (default: the embedded testbed's).
    """
    data = _shipped_tensors(name, folder)
    return data["images"], data["labels"]


def shipped_source_indices(name: str) -> torch.Tensor:
    """int64 indices (N,) of a shipped split's rows in the Fashion-MNIST split they come from (train or test)."""
    return _shipped_tensors(name)["source_indices"]


def load_image_folder(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A folder of class sub-folders of images -> uint8 grey images (N, H, W), labels, class names."""
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{path} has no class sub-folders")
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((path / name).iterdir()):
            if file.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"}:
                images.append(np.asarray(Image.open(file).convert("L").resize((28, 28))))
                labels.append(label)
    if not images:
        raise ValueError(f"no images found under {path}")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def load_dataset(data: str | Path | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Training data: None -> Fashion-MNIST train set; an .npz (images, labels[, classes]); or a class folder."""
    if data is None:
        images, labels = load_fashion_mnist("train")
        return images, labels, list(FASHION_MNIST_CLASSES)
    path = Path(data)
    if path.is_dir():
        return load_image_folder(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"].astype(np.int64)
            classes = [str(c) for c in npz["classes"]] if "classes" in npz else [str(i) for i in range(labels.max() + 1)]
        if images.ndim == 4:  # (N, H, W, C) or (N, C, H, W) colour -> grey
            images = images.mean(axis=-1 if images.shape[-1] in (1, 3) else 1)
        return images.astype(np.uint8), labels, classes
    raise ValueError(f"--data must be an .npz file or a folder of class sub-folders, got {path}")


def long_tail_indices(labels: np.ndarray, imbalance: float = 100.0, seed: int = 0) -> np.ndarray:
    """Indices of an exponentially long-tailed subset: class c keeps n_max * imbalance^(-c / (C - 1)) images.

    Class 0 is the head (all its images), the last class the tail (n_max / imbalance), as in CIFAR-LT/ImageNet-LT.
    """
    rng = np.random.default_rng(seed)
    num_classes = int(labels.max()) + 1
    n_max = min(int((labels == c).sum()) for c in range(num_classes))
    keep = []
    for c in range(num_classes):
        count = int(round(n_max * imbalance ** (-c / max(num_classes - 1, 1))))
        idx = np.flatnonzero(labels == c)
        keep.append(rng.permutation(idx)[:count])
    return np.sort(np.concatenate(keep))


def to_model_space(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) in [0, 255] -> float (N, 1, 32, 32) in [-1, 1], padded with background (-1)."""
    x = torch.tensor(np.asarray(images), dtype=torch.float32) / 127.5 - 1.0
    if x.ndim == 3:
        x = x[:, None]
    pad_h, pad_w = IMAGE_SIZE - x.shape[-2], IMAGE_SIZE - x.shape[-1]
    if pad_h > 0 or pad_w > 0:
        x = torch.nn.functional.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-1.0)
    return x
