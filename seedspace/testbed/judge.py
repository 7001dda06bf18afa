"""The judge: a small CNN classifier of testbed images; its penultimate layer is the feature space used for
FID-style scores and as the semantic feature extractor where CLIP is unavailable."""

from __future__ import annotations

import torch
from torch import nn

FEATURE_DIM = 128


class Judge(nn.Module):
    """Conv(32)-Conv(64)-Conv(128), each with BatchNorm, ReLU and 2x2 pooling, then a 128-d feature layer."""

    def __init__(self, num_classes: int = 10):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.body = nn.Sequential(block(1, 32), block(32, 64), block(64, 128), nn.Flatten(),
                                  nn.Dropout(0.3), nn.Linear(128 * 4 * 4, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features of images in [-1, 1], shape (N, 1, 32, 32) -> (N, 128)."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
