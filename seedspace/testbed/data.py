"""Data for testbeds: Fashion-MNIST or the user's labelled images, their held-out and long-tailed splits, and the
split files a testbed folder carries.

Images are stored as uint8 grey arrays (N, H, W) of 28x28 (MNIST-style, padded by 2 background pixels on each side
in model space) or 32x32; :func:`to_model_space` turns them into float tensors in [-1, 1] of shape (N, 1, 32, 32).

Every testbed folder holds two split files (gzip'd safetensors: uint8 ``images``, int64 ``labels`` and
``source_indices``, the rows of the data set they come from): ``train-longtail`` (the long-tailed training split
of the diffusion model) and ``test-references`` (real images held out from all training: the judge's
references); a folder trained with ``--exposure`` also ``exposure-held-out`` (the exposure-limited classes' images
that the diffusion model never saw; the judge and encoder did). :func:`read_split` reads them from any folder; :func:`shipped_split` from the embedded testbed.
The Debian package ``dataset-fashion-mnist`` stays an option for training (:func:`load_fashion_mnist`).
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load, save

from ..checks import check_name_length
from ..outputs import atomic_path, image_files, read_image

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package `dataset-fashion-mnist`
SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
SPLIT_FILES = {"train-longtail": "train-longtail.safetensors.gz", "test-references": "test-references.safetensors.gz",
               "exposure-held-out": "exposure-held-out.safetensors.gz"}  # the last: only with --exposure
# name -> (file, the Fashion-MNIST split its ``source_indices`` point into)
SHIPPED_SPLITS = {name: (file, source) for (name, file), source in zip(SPLIT_FILES.items(), ("train", "test"))}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IMAGE_SIZE = 32
NATIVE_SIZE = 28  # MNIST-style images keep their size and are padded to IMAGE_SIZE


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


# -- split files --------------------------------------------------------------------------------------------------
def read_split(folder: str | Path, name: str) -> dict[str, torch.Tensor]:
    """A testbed folder's split ``name`` (``train-longtail`` or ``test-references``): uint8 ``images`` (N, H, W),
    int64 ``labels`` and ``source_indices``; ValueError when the folder has no such split."""
    if name not in SPLIT_FILES:
        raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLIT_FILES)}")
    path = Path(folder) / SPLIT_FILES[name]
    if not path.is_file():
        raise ValueError(f"{folder} has no {name} split ({SPLIT_FILES[name]}); a testbed folder ships it for the "
                         "long-tail benchmark and `augment --testbed-split`")
    with gzip.open(path, "rb") as f:
        return load(f.read())


def write_split(path: str | Path, images: np.ndarray, labels: np.ndarray, source_indices: np.ndarray) -> None:
    """A split file: gzip'd safetensors of uint8 images, int64 labels and source indices (fixed gzip header:
    the same arrays always give the same bytes), written atomically."""
    data = save({"images": torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)),
                 "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                 "source_indices": torch.from_numpy(np.asarray(source_indices, dtype=np.int64))})
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def shipped_split(name: str, folder: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A split shipped with a testbed (default: the embedded one): uint8 images (N, H, W) and int64 labels (N,).

    Embedded: ``"train-longtail"``: :func:`long_tail_indices` (imbalance 100, seed 0) of the Fashion-MNIST training
    set, 6,000 down to 60 images per class (14,891), the testbed's diffusion training data. ``"test-references"``:
    the 9,000 test images not in the testbed's few-shot set. Rows are in source order (see
    :func:`shipped_source_indices`). ``folder``: a testbed folder holding its own splits (see :func:`read_split`).
    """
    data = read_split(folder or SHIPPED_DIR, name)
    return data["images"], data["labels"]


def shipped_source_indices(name: str, folder: str | Path | None = None) -> torch.Tensor:
    """int64 indices (N,) of a shipped split's rows in the data they come from (embedded: Fashion-MNIST train or
    test)."""
    return read_split(folder or SHIPPED_DIR, name)["source_indices"]


# -- loading a data set -------------------------------------------------------------------------------------------
@dataclass
class LabelledImages:
    """A data set in testbed form: uint8 grey images (N, H, W) with H = W = 28 or 32, int64 labels, class names;
    ``test`` (images, labels) where the data set has its own test split; ``notes`` say how images were converted.
    ``mirror_symmetric``: whether a horizontally flipped image is still an image of its class (clothes: yes;
    digits: no, a flipped 2 is no 2); trainings flip images only where it holds."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str
    test: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    mirror_symmetric: bool = True

    def fingerprint(self) -> str:
        """SHA-256 of the images, labels, class names, test split and (when false) the mirror symmetry: what a
        resumed training must still get."""
        h = hashlib.sha256()
        for array in (self.images, self.labels, *(self.test or ())):
            h.update(str(array.shape).encode())
            h.update(np.ascontiguousarray(array).tobytes())
        h.update("\n".join(self.classes).encode())
        if not self.mirror_symmetric:  # only then: the fingerprints of earlier trainings stay what they were
            h.update(b"\nnot mirror-symmetric")
        return h.hexdigest()


def load_dataset(data: str | Path | None) -> LabelledImages:
    """Training data: None -> Fashion-MNIST (train and test splits); an ``.npz`` with ``images`` and ``labels``
    (optional ``classes``, ``test_images``, ``test_labels``, and ``mirror_symmetric``, a boolean scalar: false
    for data such as digits, default true); or a folder of class sub-folders of image files.
    Colour images become grey and sizes other than 28x28 are resized to 32x32 (each said in ``notes``)."""
    if data is None:
        images, labels = load_fashion_mnist("train")
        return LabelledImages(images, labels, list(FASHION_MNIST_CLASSES), "fashion-mnist",
                              test=load_fashion_mnist("test"))
    path = Path(data).expanduser()
    if not path.exists():
        raise ValueError(f"--data {data} does not exist")
    if path.is_dir():
        return _load_image_folder(path)
    if path.suffix.lower() == ".npz":
        return _load_npz(path)
    raise ValueError(f"--data must be an .npz file or a folder of class sub-folders, got {data}")


def check_class_names(names, source: str) -> None:
    """Class names become folder names, labels on the command line and keys of ``--class``: each must be
    non-empty, free of path separators, control characters and '.' / '..', and unique ignoring case (folders
    'Bag' and 'bag' are one folder on a case-folding file system). ValueError naming the first offender."""
    seen: dict[str, str] = {}
    for name in names:
        if not name.strip() or name in (".", "..") or any(c in name for c in "/\\") or \
                any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValueError(f"{source}: class name {name!r} cannot name a folder (empty, '.', '..', a path "
                             "separator or a control character)")
        check_name_length(name, f"{source}: class name")
        key = name.casefold()
        if key in seen:
            raise ValueError(f"{source}: class names {seen[key]!r} and {name!r} are the same name")
        seen[key] = name


def _load_image_folder(path: Path) -> LabelledImages:
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{path} has no class sub-folders (one folder of images per class)")
    check_class_names(classes, str(path))
    pictures, labels = [], []
    for label, name in enumerate(classes):
        for file in image_files(path / name):
            pictures.append(read_image(file))
            labels.append(label)
    images, notes = _to_testbed_images(pictures)
    return LabelledImages(images, np.asarray(labels, dtype=np.int64), classes, str(path), notes=notes)


def _load_npz(path: Path) -> LabelledImages:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"cannot read {path} as an .npz of arrays: {' '.join(str(exc).split())}") from None
    missing = {"images", "labels"} - set(arrays)
    if missing:
        raise ValueError(f"{path} has no {' or '.join(sorted(missing))} array (it has: {', '.join(arrays) or 'none'})")
    if ("test_images" in arrays) != ("test_labels" in arrays):
        raise ValueError(f"{path}: give both test_images and test_labels, or neither")
    images, labels = _npz_images(arrays["images"], arrays["labels"], path, "images")
    labels_max = int(labels.max())
    if labels_max >= len(labels):  # checked before a name is made for every index up to it
        raise ValueError(f"{path}: labels go up to {labels_max} for {len(labels)} images; labels are class indices "
                         "0, 1, ... and every class needs images")
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else [str(i) for i in range(labels_max + 1)]
    if labels_max >= len(classes):
        raise ValueError(f"{path}: labels go up to {labels_max} but there are {len(classes)} class names")
    check_class_names(classes, str(path))
    pictures = [Image.fromarray(a) for a in images]
    images, notes = _to_testbed_images(pictures)
    test = None
    if "test_images" in arrays:
        test_images, test_labels = _npz_images(arrays["test_images"], arrays["test_labels"], path, "test_images")
        if int(test_labels.max()) >= len(classes):
            raise ValueError(f"{path}: test_labels go up to {int(test_labels.max())} but there are {len(classes)} classes")
        test = (_to_testbed_images([Image.fromarray(a) for a in test_images])[0], test_labels)
    mirror = arrays.get("mirror_symmetric", np.array(True))
    if mirror.shape != () or mirror.dtype != np.bool_:
        raise ValueError(f"{path}: mirror_symmetric must be a boolean scalar (np.array(False)), got {mirror.dtype} "
                         f"of shape {mirror.shape}")
    return LabelledImages(images, labels, classes, str(path), test=test, notes=notes, mirror_symmetric=bool(mirror))


def _npz_images(images: np.ndarray, labels: np.ndarray, path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated (N, H, W[, C]) uint8 images and int64 labels from an .npz's arrays."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not (np.issubdtype(labels.dtype, np.integer) or (
            np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)))):
        raise ValueError(f"{path}: labels must be a non-empty 1-d array of integer class indices, got "
                         f"{labels.dtype} of shape {labels.shape}")
    if labels.min() < 0:
        raise ValueError(f"{path}: labels must be class indices >= 0, got {labels.min()}")
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3, 4):
        images = images.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (3, 4)):
        raise ValueError(f"{path}: {key} must be (N, H, W) grey or (N, H, W, 3) colour images, got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{path}: {len(images)} {key} but {len(labels)} labels; they must match one to one")
    if images.dtype != np.uint8:
        if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
            raise ValueError(f"{path}: {key} must be numbers, got {images.dtype}")
        low, high = float(images.min()), float(images.max())
        if np.issubdtype(images.dtype, np.floating) and 0 <= low and high <= 1:
            images = np.rint(images * 255.0)
        elif not (np.issubdtype(images.dtype, np.integer) and 0 <= low and high <= 255):
            raise ValueError(f"{path}: {key} must be uint8 (0-255) or floats in [0, 1], got {images.dtype} values "
                             f"in [{low:g}, {high:g}]")
        images = images.astype(np.uint8)
    return images, labels.astype(np.int64)


def _to_testbed_images(pictures: list[Image.Image]) -> tuple[np.ndarray, list[str]]:
    """PIL images -> uint8 grey (N, S, S): S = 28 when every image is 28x28 (MNIST-style), else 32, resized
    bicubically; the notes say what was converted."""
    notes = []
    colour = sum(p.mode not in ("L", "LA", "1", "I", "I;16", "F") for p in pictures)
    if colour:
        notes.append(f"{colour} colour images converted to grey (the testbed is one-channel)")
    sizes = {p.size for p in pictures}
    size = NATIVE_SIZE if sizes == {(NATIVE_SIZE, NATIVE_SIZE)} else IMAGE_SIZE
    resized = sum(p.size != (size, size) for p in pictures)
    if resized:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3]) + (", ..." if len(sizes) > 3 else "")
        notes.append(f"{resized} images of {shown} resized to {size}x{size} (bicubic"
                     f"{'; aspect ratio not kept' if any(w != h for w, h in sizes) else ''})")
    out = np.empty((len(pictures), size, size), dtype=np.uint8)
    for i, p in enumerate(pictures):
        grey = p.convert("L")
        out[i] = np.asarray(grey if grey.size == (size, size) else grey.resize((size, size), Image.BICUBIC))
    return out, notes


# -- splits -------------------------------------------------------------------------------------------------------
def long_tail_indices(labels: np.ndarray, imbalance: float = 100.0, seed: int = 0) -> np.ndarray:
    """Indices of an exponentially long-tailed subset: class c keeps n_max * imbalance^(-c / (C - 1)) images.

    Class 0 is the head (all its images), the last class the tail (n_max / imbalance), as in CIFAR-LT/ImageNet-LT.
    """
    rng = np.random.default_rng(seed)
    num_classes = int(labels.max()) + 1
    n_max = min(int((labels == c).sum()) for c in range(num_classes))
    keep = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.permutation(idx)[:long_tail_count(n_max, c, num_classes, imbalance)])
    return np.sort(np.concatenate(keep))


def long_tail_count(n_max: int, c: int, num_classes: int, imbalance: float) -> int:
    """Images class c keeps in :func:`long_tail_indices`: round(n_max * imbalance^(-c / (C - 1)))."""
    return int(round(n_max * imbalance ** (-c / max(num_classes - 1, 1))))


def fewshot_indices(labels: np.ndarray, per_class: int = 100, seed: int = 0) -> np.ndarray:
    """Sorted indices of the few-shot set: ``per_class`` random images of each class (seeded)."""
    rng = np.random.default_rng(seed)
    classes = range(int(labels.max()) + 1)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]))


def to_model_space(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) in [0, 255] -> float (N, 1, 32, 32) in [-1, 1], padded with background (-1)."""
    x = torch.tensor(np.asarray(images), dtype=torch.float32) / 127.5 - 1.0
    if x.ndim == 3:
        x = x[:, None]
    pad_h, pad_w = IMAGE_SIZE - x.shape[-2], IMAGE_SIZE - x.shape[-1]
    if pad_h > 0 or pad_w > 0:
        x = torch.nn.functional.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=-1.0)
    return x
