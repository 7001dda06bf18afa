"""The fixed judge of every evaluation: the testbed classifier, its 128-d feature space and real reference images.

It is built before any method is run and is the same for all of them:

- ``correct``: the judge's arg-max class equals the class the image was generated for;
- ``conf``: the judge's probability of that class;
- ``fdist``: Euclidean distance in judge-feature space to the mean feature of the class's real reference images,
  divided by the mean such distance of the real reference images themselves (so ~1 is "as typical as a real
  image", larger is less typical);
- FID-style score: the Fréchet distance between Gaussians fitted to the judge features of generated images and
  of real reference images of the same classes (equal numbers per class). With ~100 generated images in 128
  dimensions it is biased upwards and noisy: compare it only within one table, where cells have equal n;
- KID: the unbiased squared MMD (cubic polynomial kernel) between the same feature sets; unbiased at any n.

The real references of a Fashion-MNIST testbed ship with the package (:func:`~seedspace.testbed.data.shipped_split`
``"test-references"``), so the evaluation needs no system package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from safetensors import safe_open
from safetensors.torch import load_file

from ..testbed.data import FASHION_MNIST_CLASSES, shipped_source_indices, shipped_split, to_model_space
from .metrics import FeatureReference, feature_spread, mean_pairwise_distance

JUDGE_SIZE = 32  # the testbed judge's input size (Fashion-MNIST padded to 32x32)


def resize_images(images: torch.Tensor, size) -> torch.Tensor:
    """Images (N, C, H, W) resized to ``size`` (H, W) with area/bilinear resampling; unchanged when equal.
    (A no-op for the 32x32 testbed; it lets small test models with other sizes use the same judge.)"""
    size = tuple(int(s) for s in size)
    if tuple(images.shape[-2:]) == size:
        return images
    mode = "area" if images.shape[-1] > size[-1] else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return torch.nn.functional.interpolate(images.float(), size=size, mode=mode, **kwargs).clamp(0, 1)


@dataclass
class References:
    """Real reference images per class (in [0, 1], the model's image shape) and where they came from."""

    images: dict  # class index -> tensor (M, C, H, W)
    source: str

    @property
    def per_class(self) -> int:
        return min(v.shape[0] for v in self.images.values())


def fewshot_references(model) -> References:
    """The model's shipped few-shot images as references (for small test models; they are also the inputs of
    the interpolation and centroid experiments, so the scores are optimistic)."""
    images, labels = model.fewshot()
    per = {c: images[labels == c] for c in range(len(model.class_names)) if bool((labels == c).any())}
    return References(per, "few-shot images shipped with the model (also the experiments' inputs)")


def fashion_mnist_references(model, per_class: int = 500, seed: int = 0) -> References:
    """Fashion-MNIST test images shipped with the package, excluding the model's few-shot set (``test_indices``),
    ``per_class`` per class in a seeded random order (rows in test-set order, so the choice is the same as from
    the full test set)."""
    images, labels = (t.numpy() for t in shipped_split("test-references"))
    data = load_file(str(model.data_file("fewshot.safetensors")))
    exclude = np.zeros(len(labels), dtype=bool)
    if "test_indices" in data:
        exclude = np.isin(shipped_source_indices("test-references").numpy(), data["test_indices"].numpy())
    rng = np.random.default_rng(seed)
    per = {}
    for c in range(len(model.class_names)):
        idx = rng.permutation(np.flatnonzero((labels == c) & ~exclude))[:per_class]
        per[c] = (to_model_space(images[np.sort(idx)]) + 1) / 2
    return References(per, f"Fashion-MNIST test images not in the few-shot set ({per_class} per class, seeded)")


def held_out_references(model, per_class: int = 500, seed: int = 0) -> References:
    """The test references a trained testbed folder holds out of all training (``model.data_split``),
    ``per_class`` per class in a seeded random order."""
    images, labels = (t.numpy() for t in model.data_split("test-references"))
    rng = np.random.default_rng(seed)
    per = {c: (to_model_space(images[np.sort(rng.permutation(np.flatnonzero(labels == c))[:per_class])]) + 1) / 2
           for c in range(len(model.class_names)) if (labels == c).any()}
    return References(per, f"the model's held-out test references ({per_class} per class at most, seeded)")


def load_references(model, kind: str = "auto", per_class: int = 500, seed: int = 0) -> References:
    """'auto': Fashion-MNIST for a Fashion-MNIST testbed (its few-shot file records ``test_indices``), else the
    folder's own held-out test references when it has them, else the few-shot images; 'fashion-mnist',
    'held-out' or 'fewshot' to choose."""
    if not model.has_judge:
        raise ValueError(f"{getattr(model, 'name', model)} has no judge: `seedspace evaluate` needs a testbed-format "
                         "model (classifier, features and few-shot images)")
    if kind == "auto":
        with safe_open(str(model.data_file("fewshot.safetensors")), "pt") as f:
            has_indices = "test_indices" in f.keys()
        kind = ("fashion-mnist" if has_indices and tuple(model.class_names) == FASHION_MNIST_CLASSES else
                "held-out" if model.data_file("test-references.safetensors.gz").is_file() else "fewshot")
    if kind == "held-out":
        return held_out_references(model, per_class, seed)
    if kind == "fashion-mnist":
        return fashion_mnist_references(model, per_class, seed)
    if kind == "fewshot":
        return fewshot_references(model)
    raise ValueError(f"references must be 'auto', 'fashion-mnist', 'held-out' or 'fewshot', got {kind!r}")


class EvalJudge:
    """Scores images against the fixed references; feature references are cached per set of classes."""

    def __init__(self, model, references: References):
        self.model = model
        self.references = references
        self.per_class = references.per_class
        self.ref_feats, self.mu, self.scale = {}, {}, {}
        self.ref_correct, self.ref_conf = {}, {}
        for c, images in references.images.items():
            images = images[: self.per_class]
            feats = self.features(images)
            self.ref_feats[c] = feats
            self.mu[c] = feats.mean(0)
            self.scale[c] = feature_spread(feats)
            probs = self.classify(images)
            self.ref_correct[c] = probs.argmax(1) == c
            self.ref_conf[c] = probs[:, c]
        self._references = {}

    def features(self, images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return torch.cat([self.model.judge_features(self._judge_input(images[i:i + 512]))
                              for i in range(0, images.shape[0], 512)]).double().numpy()

    def _judge_input(self, images: torch.Tensor) -> torch.Tensor:
        return resize_images(images, (JUDGE_SIZE, JUDGE_SIZE))

    def classify(self, images: torch.Tensor) -> np.ndarray:
        return self.model.classify(self._judge_input(images)).numpy()

    def score(self, images: torch.Tensor, classes) -> dict:
        """Per-image arrays: correct (0/1), conf, fdist (relative) and the features (N, D)."""
        classes = np.asarray(classes, dtype=np.int64)
        missing = set(classes.tolist()) - set(self.mu)
        if missing:
            raise ValueError(f"no reference images for classes {sorted(missing)}")
        probs = self.classify(images)
        feats = self.features(images)
        mu = np.stack([self.mu[c] for c in classes]) if len(classes) else np.zeros((0, feats.shape[1]))
        scale = np.array([self.scale[c] for c in classes])
        return {"correct": (probs.argmax(1) == classes).astype(np.float64),
                "conf": probs[np.arange(len(classes)), classes].astype(np.float64),
                "fdist": np.linalg.norm(feats - mu, axis=1) / scale, "feats": feats}

    def reference(self, classes) -> FeatureReference:
        """The real features of these classes pooled (equal numbers per class), for Fréchet distances and KID."""
        key = tuple(sorted(set(int(c) for c in classes)))
        if key not in self._references:
            self._references[key] = FeatureReference(np.concatenate([self.ref_feats[c] for c in key]))
        return self._references[key]

    def relative_distance(self, a: np.ndarray, b: np.ndarray, c: int) -> np.ndarray:
        """Row-wise feature distances between a and b in units of class c's real spread."""
        return np.linalg.norm(a - b, axis=-1) / self.scale[c]

    def diversity(self, feats: np.ndarray, c: int) -> float:
        """Mean pairwise feature distance, in units of class c's real spread."""
        return mean_pairwise_distance(feats) / self.scale[c]

    def calibration(self) -> list[dict]:
        """The judge on the real reference images: per class accuracy, confidence, diversity."""
        names = getattr(self.model, "class_names", None) or []
        return [{"class": c, "name": names[c] if c < len(names) else str(c), "n": int(self.ref_correct[c].size),
                 "accuracy": float(self.ref_correct[c].mean()), "conf": float(self.ref_conf[c].mean()),
                 "diversity": self.diversity(self.ref_feats[c][:200], c)} for c in sorted(self.ref_feats)]
