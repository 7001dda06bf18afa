"""Two small CNNs on testbed images, trained separately (different architectures and seeds):

- the judge, the evaluator: its class probabilities give accuracies, its penultimate layer the FID-style scores;
- the encoder, the testbed's stand-in for CLIP: its features drive SeedSelect's semantic loss, so an optimisation
  never sees the network that grades it (as in the paper: CLIP features in the loss, a separate classifier for
  the evaluation), and gradient steps cannot simply fool the judge.
"""

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


class Encoder(nn.Module):
    """Strided 5x5 conv (48) - 3x3 conv (96) - 3x3 conv (192), GELU, GroupNorm, global average pooling, then a
    128-d feature layer: a different architecture from the judge, so adversarial directions transfer poorly."""

    def __init__(self, num_classes: int = 10):
        super().__init__()

        def block(cin, cout, kernel):
            return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=2, padding=kernel // 2), nn.GroupNorm(8, cout),
                                 nn.GELU())

        self.body = nn.Sequential(block(1, 48, 5), block(48, 96, 3), block(96, 192, 3), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(192, FEATURE_DIM), nn.GELU())
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features of images in [-1, 1], shape (N, 1, 32, 32) -> (N, 128)."""
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
