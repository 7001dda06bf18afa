"""SeedSelect: optimise generation seeds so that a diffusion model renders a concept it renders badly.

Following Samuel et al., "Generating images of rare concepts using pre-trained diffusion models" (SeedSelect,
AAAI 2024, arXiv 2304.14530) and its use in the NAO paper ("Norm-guided latent space exploration for
text-to-image generation", arXiv 2306.08687): given a handful (>= 2) of real reference images of a concept,
the seed x_T is optimised by gradient descent *through the whole DDIM sampler*
(per-step gradient checkpointing, so memory stays flat in the number of sampler steps) to minimise

    loss = semantic_weight * semantic + appearance_weight * appearance          (published: 10 and 1)

- ``semantic`` = sum_j w_j (1 - cos(f(decode(x0_hat_j)), mean_i f(ref_i))) over the last three denoising
  steps j, with w = (0.05, 0.25, 0.7) as published. x0_hat_j is the DDIM clean-image prediction the sampler
  makes at step j (:func:`seedspace.backends.ddim.predict_x0`), so the last term is the final image.
  f is a pluggable image feature extractor: the published method uses CLIP ViT-H-14 image features; here
  ``feature_fn`` is any differentiable callable, a local CLIP folder (:func:`clip_feature_fn`), or by default
  the model's own ``features`` (the testbed's encoder, a CNN trained apart from the judge that grades the
  results, so the optimisation cannot simply fool its evaluator).
- ``appearance`` = mean squared error between the final x_0 and the mean of ``model.encode(references)``
  (VAE latents for latent models, [-1, 1] pixels for pixel models).

The optimiser is AdamW (lr 0.1 by default, tenfold decay after 3 updates, as in the published code).

Initialisations (``SeedSelectSettings.init``): ``'random'`` (N(0, I) from a seed integer), ``'nao-centroid'``
(the NAO centroid of the DDIM inversions of the references), ``'cog-centroid'`` (their centre of gravity, the
plain mean), ``'nao-paths'`` (candidates on the NAO paths from that centroid to each inversion, see
:func:`~.initialisation.initial_seeds`), or an explicit seed tensor.

Several independent seeds can be optimised in one batch (the loss is a sum of per-seed losses and AdamW is
element-wise, so each seed follows exactly the trajectory it would follow alone); each seed may have its
own reference set and condition.

With ``out_dir`` every step's seeds, losses, AdamW moments and images are written (``step_XXXX.safetensors``,
``step_XXXX.png``, ``history.json``, atomically), and ``resume=True`` continues a run exactly.

Modules: :mod:`.settings` (``SeedSelectSettings``), :mod:`.references`, :mod:`.features`, :mod:`.objective`,
:mod:`.initialisation`, :mod:`.checkpoints` (the run folder) and :mod:`.loop` (``seedselect``).
"""

from .checkpoints import load_step
from .features import clip_feature_fn
from .initialisation import initial_seeds
from .loop import SeedSelectResult, seedselect
from .objective import SeedSelectTarget, make_target, seedselect_loss, x0_predictions
from .references import reference_sets
from .settings import INIT_METHODS, SeedSelectSettings

__all__ = [
    "INIT_METHODS", "SeedSelectResult", "SeedSelectSettings", "SeedSelectTarget", "clip_feature_fn", "initial_seeds",
    "load_step", "make_target", "reference_sets", "seedselect", "seedselect_loss", "x0_predictions",
]
