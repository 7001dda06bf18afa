"""What added images look like to the judge: accuracy, precision / recall against real images of the class
(k-nearest-neighbour balls, Kynkaanniemi et al. 2019), KID, diversity (mean pairwise judge-feature distance) and
the distance of each image to its nearest reference, the last two in units of the real images' spread (their mean
feature distance to their mean). The real images must have gone through the same resolution as the added ones:
a generator at 16x16 blurs what the judge sees, and against sharper real images every arm's precision and recall
fall to about zero. A classifier gains from images that are right (accuracy, precision) and cover the class
(recall, diversity); images close to the k references they were made from (a small nearest-reference distance) add
little that oversampling the references does not. Used by the few-shot curve and, per arm, by the long-tail benchmark.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ..scoring.metrics import (feature_spread, kernel_inception_distance, manifold_metrics, mean_pairwise_distance,
                               t_interval)
from .experiment import row
from .runner import Runner

IMAGE_SCORES = ["acc", "kid", "precision", "recall", "diversity"]
NEAREST = "nearest_ref"
ARM_IMAGE_SCORES = ["acc", "precision", "recall", "diversity", NEAREST]  # the long-tail benchmark's table
MANIFOLD_K = 5  # neighbours of the long-tail benchmark's precision / recall (the few-shot curve's default)


def image_scores(runner: Runner, added: dict, manifold_k: int, references: dict | None = None,
                 real: dict | None = None) -> dict:
    """The judge's accuracy, KID, precision / recall and diversity of the added images ({class: (n, C, H, W) in
    [0, 1]}), averaged over classes; with ``references`` ({class: judge features of the references}) also the mean
    distance of an added image to its nearest reference (``nearest_ref``). The real images they are measured against: ``real`` ({class: judge
    features}, :func:`real_features`: real images that went through the added images' resolution), else the
    judge's own references."""
    per_class = []
    for c, images in added.items():
        scores = runner.judge.score(images, [c] * images.shape[0])
        feats = scores["feats"]
        real_c = runner.judge.ref_feats[c] if real is None else real[c]
        spread = feature_spread(real_c)  # the judge's scale where real_c is its references
        manifold = manifold_metrics(real_c, feats, manifold_k)
        cell = {"acc": float(np.mean(scores["correct"])), "kid": kernel_inception_distance(real_c, feats),
                "precision": manifold["precision"], "recall": manifold["recall"],
                "diversity": mean_pairwise_distance(feats) / spread}
        if references is not None:
            nearest = cdist(feats, references[c]).min(axis=1)
            cell[NEAREST] = float(nearest.mean() / spread)
        per_class.append(cell)
    return {m: float(np.mean([p[m] for p in per_class])) for m in per_class[0]}


def real_features(runner: Runner, images: dict, classes) -> dict:
    """{class: judge features} of the real ``images`` ({class: (n, C, H, W)}) of each of ``classes``."""
    return {c: runner.judge.features(images[c]) for c in classes}


def arm_images_table(measured: dict, confidence: float = 0.95) -> dict:
    """{arm: [per replicate image_scores]} as a table: each score's mean over replicates with its t interval."""
    rows = [row({"arm": arm}, {m: t_interval([r[m] for r in reps], confidence) for m in ARM_IMAGE_SCORES},
                n_items=len(reps)) for arm, reps in measured.items()]
    return {"name": "longtail-images", "title": "The images each arm adds to the few-shot classes (fill dose), as "
            "the judge sees them", "metrics": ARM_IMAGE_SCORES, "rows": rows}
