"""The downstream classifier of the long-tail and few-shot benchmark: one fixed recipe (a small CNN trained from
scratch) applied to every arm, so that the only thing that differs between arms is the training data.

    recipe = ClassifierRecipe()
    net = train_classifier(images, labels, num_classes=10, recipe=recipe, seed=0, balanced=False)
    accuracy = per_class_accuracy(net, test_images, test_labels, num_classes=10)

Images are float tensors (N, 1, 32, 32) in [0, 1]. Training is deterministic on the CPU for a given seed: the
initialisation, the data order (uniform or class-balanced resampling) and the augmentation all come from CPU
generators seeded from ``seed``.

The long-tail treatments: class-balanced resampling (``balanced=True``), balanced softmax (``recipe.loss =
"balanced-softmax"``: the training loss sees logits + log pi_c, pi the class prior, so the network's own logits
estimate the balanced posterior; Ren et al. 2020) and post-hoc logit adjustment (``adjust=log pi`` at prediction:
argmax of logits - log pi_c; Menon et al. 2021), both with pi from the *real* class counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


LOSSES = ("ce", "balanced-softmax")


@dataclass(frozen=True)
class ClassifierRecipe:
    """Epochs, optimiser and augmentation shared by every arm (AdamW with a one-cycle learning rate, random
    2-pixel shifts and horizontal flips)."""

    epochs: int = 6
    steps: int | None = None  # optimiser steps; None: epochs x ceil(N / batch_size). Set: the same for every data size
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    width: int = 16
    shift: int = 2
    flip: bool = True
    loss: str = "ce"  # "ce" or "balanced-softmax"

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.width < 1 or self.shift < 0:
            raise ValueError(f"classifier recipe values must be positive: {self}")
        if not (self.lr > 0 and self.weight_decay >= 0):
            raise ValueError(f"classifier recipe needs lr > 0 and weight_decay >= 0: {self}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"classifier recipe steps must be positive: {self}")
        if self.loss not in LOSSES:
            raise ValueError(f"classifier loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    def as_dict(self) -> dict:
        return asdict(self)


class SmallCNN(nn.Module):
    """Three conv blocks (w, 2w, 4w channels; BatchNorm, ReLU, 2x2 max-pooling), global average pooling and a
    linear head: about 25k parameters at w = 16, a few seconds per epoch on two CPU cores."""

    def __init__(self, num_classes: int, width: int = 16):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.MaxPool2d(2))

        self.body = nn.Sequential(block(1, width), block(width, 2 * width), block(2 * width, 4 * width),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(images * 2 - 1))


def _augment(batch: torch.Tensor, recipe: ClassifierRecipe, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and integer shifts of up to ``recipe.shift`` pixels (zero padding), one draw per
    image, applied as one nearest-neighbour resampling of the batch."""
    n, _, h, w = batch.shape
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if recipe.flip else 1.0
    theta[:, 1, 1] = 1.0
    shifts = torch.randint(-recipe.shift, recipe.shift + 1, (n, 2), generator=gen).float()
    theta[:, 0, 2] = 2 * shifts[:, 0] / w
    theta[:, 1, 2] = 2 * shifts[:, 1] / h
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Images per class, (num_classes,) int64."""
    return torch.bincount(labels, minlength=num_classes)


def epoch_order(labels: torch.Tensor, num_classes: int, balanced: bool, gen: torch.Generator) -> torch.Tensor:
    """Indices of one epoch (N of them): a permutation, or with ``balanced`` a draw with replacement where every
    class is equally likely (probability of image i = 1 / (K n_{c(i)}), the class-balanced resampling baseline)."""
    n = labels.shape[0]
    if not balanced:
        return torch.randperm(n, generator=gen)
    counts = class_counts(labels, num_classes).double()
    weights = 1.0 / counts[labels]
    return torch.multinomial(weights, n, replacement=True, generator=gen)


def log_prior(counts: torch.Tensor) -> torch.Tensor:
    """log pi_c of class counts (num_classes,): the offset of balanced softmax and logit adjustment."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if (counts <= 0).any():
        raise ValueError("every class needs at least one real image for its prior")
    return (counts / counts.sum()).log().float()


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     recipe: ClassifierRecipe = ClassifierRecipe(), seed: int = 0, balanced: bool = False,
                     prior_counts: torch.Tensor | None = None) -> nn.Module:
    """Train :class:`SmallCNN` on (images (N, 1, H, W) in [0, 1], labels (N,)); returns it in eval mode.
    ``balanced``: class-balanced resampling; ``prior_counts``: the class counts whose prior balanced softmax uses
    (default: the labels' own counts). Deterministic on the CPU for a given seed."""
    if images.dim() != 4 or images.shape[0] != labels.shape[0] or images.shape[0] == 0:
        raise ValueError(f"need images (N, C, H, W) and N labels, got {tuple(images.shape)} and {tuple(labels.shape)}")
    labels = labels.long()
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    offset = None
    if recipe.loss == "balanced-softmax":
        offset = log_prior(class_counts(labels, num_classes) if prior_counts is None else prior_counts)
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))  # the layers' initialisation draws from the global CPU generator
    net = SmallCNN(num_classes, recipe.width)
    steps = recipe.steps or recipe.epochs * -(-images.shape[0] // recipe.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps)
    net.train()
    for idx in batches(labels, num_classes, balanced, recipe.batch_size, steps, gen):
        batch = _augment(images[idx].float(), recipe, gen)
        logits = net(batch)
        loss = F.cross_entropy(logits if offset is None else logits + offset, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    return net.eval()


def batches(labels: torch.Tensor, num_classes: int, balanced: bool, batch_size: int, steps: int,
            gen: torch.Generator):
    """``steps`` index batches: epochs of :func:`epoch_order` one after another, each cut into batches (an
    epoch's last, shorter batch included)."""
    done = 0
    while done < steps:
        order = epoch_order(labels, num_classes, balanced, gen)
        for start in range(0, order.shape[0], batch_size):
            yield order[start:start + batch_size]
            done += 1
            if done == steps:
                return


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, batch_size: int = 1000, adjust: torch.Tensor | None = None) -> torch.Tensor:
    """Predicted class of each image, (N,) int64; ``adjust`` (num_classes,) is subtracted from the logits first
    (post-hoc logit adjustment with ``adjust = log pi``)."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        logits = net(images[i:i + batch_size].float())
        out.append((logits if adjust is None else logits - adjust).argmax(1))
    return torch.cat(out)


def per_class_accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                       adjust: torch.Tensor | None = None) -> torch.Tensor:
    """Accuracy on each class's test images, (num_classes,) float64 (NaN for a class without test images)."""
    correct = (predict(net, images, adjust=adjust) == labels).double()
    totals = class_counts(labels, num_classes).double()
    hits = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, labels, correct)
    return torch.where(totals > 0, hits / totals.clamp(min=1), torch.full_like(hits, float("nan")))
