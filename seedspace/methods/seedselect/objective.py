"""SeedSelect's objective: targets from the references, and the loss through the whole DDIM sampler.

    loss = semantic_weight * semantic + appearance_weight * appearance
    semantic = sum_j w_j (1 - cos(f(decode(x0_hat_j)), mean_i f(ref_i)))   over the last len(w) sampler steps j
    appearance = mean squared error between x_0 and mean_i encode(ref_i)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .features import FeatureFn
from .settings import SeedSelectSettings


@dataclass
class SeedSelectTarget:
    """Per-seed optimisation targets: mean reference features (N, D) and mean encoded reference (N, *shape)."""

    features: torch.Tensor
    latent: torch.Tensor

    def checksum(self) -> float:
        """sum |features| + sum |latent| in float64: tells apart the references of a saved run."""
        return float(self.features.double().abs().sum() + self.latent.double().abs().sum())

    def repeat_row(self, row: int, n: int) -> "SeedSelectTarget":
        """Row ``row`` of this target, repeated for n seeds."""
        return SeedSelectTarget(self.features[row:row + 1].expand(n, -1).clone(),
                                self.latent[row:row + 1].expand(n, *self.latent.shape[1:]).clone())


@torch.no_grad()
def make_target(model, sets: list[torch.Tensor], feature_fn: FeatureFn) -> SeedSelectTarget:
    """Mean reference features and mean encoded reference of each set (one row per set)."""
    feats, lats = [], []
    for refs in sets:
        feats.append(feature_fn(refs).float().mean(0))
        lats.append(model.encode(refs).float().mean(0).cpu())
    return SeedSelectTarget(torch.stack(feats).cpu(), torch.stack(lats))


def x0_predictions(model, seeds: torch.Tensor, conditions, settings: SeedSelectSettings,
                   checkpoint: bool = True) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """x_0 and the sampler's clean-image predictions x0_hat = (x - sqrt(1 - abar) eps) / sqrt(abar) of its last
    len(step_weights) steps (oldest first; the last equals x_0), differentiable w.r.t. the seeds."""
    preds: list[torch.Tensor] = []

    def keep_last(i: int, x: torch.Tensor, x0_hat: torch.Tensor) -> None:
        preds.append(x0_hat)
        if len(preds) > len(settings.step_weights):
            preds.pop(0)

    x0 = model.generate_x0(seeds, conditions, settings.sampler_steps, settings.guidance, checkpoint=checkpoint,
                           callback=keep_last, scheduler=settings.scheduler)
    return x0, preds


def seedselect_loss(model, seeds: torch.Tensor, target: SeedSelectTarget, conditions, feature_fn: FeatureFn,
                    settings: SeedSelectSettings, checkpoint: bool = True):
    """Per-seed (loss, semantic, appearance), each (N,), and the final x_0 (differentiable w.r.t. seeds).

    ``settings`` must have ``sampler_steps`` and ``guidance`` set (see ``SeedSelectSettings.for_model``).
    """
    x0, preds = x0_predictions(model, seeds, conditions, settings, checkpoint)
    w = torch.tensor(list(settings.step_weights)[-len(preds):], dtype=torch.float32)
    w = w / w.sum()
    n = seeds.shape[0]
    feats = feature_fn(model.decode_differentiable(torch.cat(preds))).float()
    feats = feats.reshape(len(preds), n, -1)
    cos = F.cosine_similarity(feats, target.features.to(feats.device)[None], dim=-1)  # (J, N)
    semantic = ((1 - cos) * w.to(cos.device)[:, None]).sum(0)
    appearance = (x0.float() - target.latent.to(x0.device)).pow(2).flatten(1).mean(1)
    semantic = semantic.to(appearance.device)
    loss = settings.semantic_weight * semantic + settings.appearance_weight * appearance
    return loss, semantic, appearance, x0
