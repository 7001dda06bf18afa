"""SeedSelect's settings: the optimiser, the loss, the sampler inside the loop and the initialisation."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import torch

from ...backends.loading import resolve_model_prior
from ...geometry import NormPrior, load_prior
from ...runs.records import INIT_METHODS

SEMANTIC_STEP_WEIGHTS = (0.05, 0.25, 0.7)  # last three denoising steps, final step last (published values)


@dataclass(frozen=True)
class SeedSelectSettings:
    """How SeedSelect runs; the defaults are the published ones.

    - ``init``: 'random' | 'nao-centroid' | 'nao-paths' | 'cog-centroid' | a seed tensor (see
      :func:`~seedspace.methods.seedselect.initialisation.initial_seeds`).
    - ``steps``: optimisation steps (updates); a run's history has steps + 1 entries (step 0 = the initial seeds).
    - ``lr``, ``lr_decay``, ``lr_decay_after``, ``weight_decay``: AdamW; the lr is multiplied by ``lr_decay``
      for every update after the first ``lr_decay_after`` (published: 0.1 after 3).
    - ``semantic_weight``, ``appearance_weight``, ``step_weights``: the loss
      semantic_weight * semantic + appearance_weight * appearance, the semantic term weighted over the last
      len(step_weights) denoising steps (published 10, 1, (0.05, 0.25, 0.7)).
    - ``sampler_steps``: DDIM steps of the sampler inside the loop (None: the model's ``default_steps``); fewer
      steps make each optimisation step proportionally cheaper. ``scheduler``: the sampler inside the loop (None: the
      model's default, DDIM; DDIM, Euler and DPM-Solver++ are tested). ``guidance``: classifier-free guidance (None:
      the model's).
    - ``num_seeds``, ``seed``: batch size and seed integers (``seed, seed+1, ...`` or a list) for 'random' (and
      the number of 'nao-paths' candidates kept) when there is one reference set.
    - ``inversion_steps``: DDIM steps of the inversion for the centroid inits (None: the model's).
    - ``path_points``: points per NAO path for 'nao-paths' (endpoints excluded from the candidates).
    - ``prior``: the norm prior of the NAO centroid and paths of 'nao-centroid' / 'nao-paths' (None: chi(d), the
      paper's; anything :func:`seedspace.geometry.load_prior` takes: 'scaled-chi:S', a prior file such as
      ``seedspace calibrate`` writes, a record, a prior object); :meth:`for_model` resolves it to a prior object.
    """

    init: Union[str, torch.Tensor] = "nao-centroid"
    steps: int = 30
    lr: float = 0.1
    lr_decay: float = 0.1
    lr_decay_after: int = 3
    weight_decay: float = 0.01
    semantic_weight: float = 10.0
    appearance_weight: float = 1.0
    step_weights: Sequence[float] = SEMANTIC_STEP_WEIGHTS
    sampler_steps: int | None = None
    guidance: float | None = None
    scheduler: str | None = None
    num_seeds: int = 1
    seed: Union[int, Sequence[int]] = 0
    inversion_steps: int | None = None
    path_points: int = 7
    prior: object = None

    def __post_init__(self):
        if isinstance(self.init, str) and self.init not in INIT_METHODS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {', '.join(INIT_METHODS)} or pass a seed "
                             "tensor")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")
        weights = tuple(self.step_weights)
        if len(weights) < 1 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"step_weights must be non-negative with a positive sum, got {self.step_weights}")
        object.__setattr__(self, "step_weights", weights)
        if self.prior is not None and not isinstance(self.prior, (str, Path, dict, NormPrior)):
            raise ValueError(f"prior must be 'chi', 'scaled-chi:S', a prior file, a record or a prior, got "
                             f"{self.prior!r}")

    def for_model(self, model) -> "SeedSelectSettings":
        """These settings with the model's defaults filled in for ``sampler_steps`` and ``guidance``, and ``prior``
        as a prior object for the model's seed dimension (None, and chi(d) itself, become None)."""
        prior = resolve_model_prior(self.prior, model)
        if prior is not None:
            prior = load_prior(prior, math.prod(model.seed_shape))
            if prior.to_record() == {"family": "chi", "d": prior.d}:
                prior = None  # chi(d), the default
        return dataclasses.replace(
            self, sampler_steps=int(self.sampler_steps or model.default_steps),
            guidance=float(model.default_guidance if self.guidance is None else self.guidance), prior=prior)

    def lr_at(self, step: int) -> float:
        """The learning rate of the update after ``step``: lr, times lr_decay once step >= lr_decay_after."""
        return self.lr * (self.lr_decay if step >= self.lr_decay_after else 1.0)
