"""SeedSelect's settings: the optimiser, the loss, the sampler inside the loop and the initialisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

from ...backends.run_prior import prior_record
from ...checks import MAX_FRAMES, MAX_OPT_STEPS, MAX_SEEDS, Integer, Items, Number, Rule, Text, setting
from ...runs.run_settings import INIT_METHODS
from ...settings import GUIDANCE_OR_DEFAULT, PRIOR_SPEC, SEED, STEPS_OR_DEFAULT, Settings, model_sampling

SEMANTIC_STEP_WEIGHTS = (0.05, 0.25, 0.7)  # last three denoising steps, final step last (published values)


def _checked_init(value, name):
    if isinstance(value, torch.Tensor):
        return value
    if not isinstance(value, str) or value not in INIT_METHODS:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(INIT_METHODS)} or pass a seed tensor")
    return value


def _checked_step_weights(value, name):
    weights = Items(Number(0.0))(value, name)
    if sum(weights) <= 0:
        raise ValueError(f"{name} must be non-negative with a positive sum, got {value}")
    return weights


def _checked_seeds(value, name):
    """One seed integer, or a list of them (one per reference set)."""
    if isinstance(value, (list, tuple)):
        return Items(SEED)(value, name)
    return SEED(value, name)


@dataclass(frozen=True)
class SeedSelectSettings(Settings):
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
      ``seedspace calibrate`` writes, a record, a prior object); :meth:`for_model` resolves it to the prior's record.
    """

    init: Union[str, torch.Tensor] = setting("nao-centroid", Rule(_checked_init, ("no-such-init", 3)))
    steps: int = setting(30, Integer(0, MAX_OPT_STEPS))
    lr: float = setting(0.1, Number(0.0, low_open=True))
    lr_decay: float = setting(0.1, Number(0.0))
    lr_decay_after: int = setting(3, Integer(0))
    weight_decay: float = setting(0.01, Number(0.0))
    semantic_weight: float = setting(10.0, Number(0.0))
    appearance_weight: float = setting(1.0, Number(0.0))
    step_weights: Sequence[float] = setting(SEMANTIC_STEP_WEIGHTS, Rule(_checked_step_weights, ((), (-1.0,), (0.0,))))
    sampler_steps: int | None = setting(None, STEPS_OR_DEFAULT)
    guidance: float | None = setting(None, GUIDANCE_OR_DEFAULT)
    scheduler: str | None = setting(None, Text(optional=True))  # checked against the model when it runs
    num_seeds: int = setting(1, Integer(1, MAX_SEEDS))
    seed: Union[int, Sequence[int]] = setting(0, Rule(_checked_seeds, (-1, "1", (1, -1))))
    inversion_steps: int | None = setting(None, STEPS_OR_DEFAULT)
    path_points: int = setting(7, Integer(2, MAX_FRAMES))
    prior: object = setting(None, PRIOR_SPEC)

    def for_model(self, model) -> "SeedSelectSettings":
        """These settings with the model's defaults filled in for ``sampler_steps`` and ``guidance``, and ``prior``
        as its record for the model's seed dimension (None, and chi(d) itself, become None)."""
        steps, guidance = model_sampling(model, self.sampler_steps, self.guidance)
        return self.replace(sampler_steps=steps, guidance=guidance, prior=prior_record(self.prior, model))

    def lr_at(self, step: int) -> float:
        """The learning rate of the update after ``step``: lr, times lr_decay once step >= lr_decay_after."""
        return self.lr * (self.lr_decay if step >= self.lr_decay_after else 1.0)
