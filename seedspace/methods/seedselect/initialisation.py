"""SeedSelect's starting seeds: random noise, centroids of the references' inversions, or the best point on the
NAO paths from the centroid to each inversion."""

from __future__ import annotations

import torch

from ...backends.base import seeds_from_ints
from ...geometry import centroid
from .features import FeatureFn
from .objective import SeedSelectTarget, seedselect_loss
from .settings import SeedSelectSettings


def _centroid(inverted: torch.Tensor, method: str, **kwargs):
    out = centroid(inverted.double(), method=method, **kwargs)  # float64: the geometry's exact solvers
    if isinstance(out, tuple):
        return tuple(torch.as_tensor(o).float() for o in out)
    return torch.as_tensor(out).float()


def initial_seeds(model, settings: SeedSelectSettings, sets: list[torch.Tensor], conditions: list,
                  target: SeedSelectTarget | None = None, feature_fn: FeatureFn | None = None) -> torch.Tensor:
    """Starting seeds (N, *seed_shape): N = number of reference sets, or ``settings.num_seeds`` with one set.

    - a tensor ``settings.init``: used as is ((*seed_shape) or (N, *seed_shape)).
    - 'random': N(0, I) from the seed integers ``seed, seed+1, ...`` (or the list given).
    - 'nao-centroid' / 'cog-centroid': each set is DDIM-inverted (``model.invert``, guidance 1,
      ``inversion_steps``) and the centroid of its inversions taken (``ss.centroid(method='nao'|'cog')``, the NAO
      one under ``settings.prior``).
    - 'nao-paths': the NAO centroid plus the interior points of the NAO paths from the centroid to each
      inversion (``path_points`` points per path, endpoints excluded), all scored by the SeedSelect loss
      (``target``, ``feature_fn``; ``settings`` as from ``for_model``) without gradients; the lowest-loss
      candidate starts (the ``num_seeds`` lowest with one set). The scoring costs one batched forward pass over
      1 + k (path_points - 2) candidates, included in the initialisation time.
    """
    init, shape = settings.init, tuple(model.seed_shape)
    n = len(sets) if len(sets) > 1 else settings.num_seeds
    if isinstance(init, torch.Tensor):
        return _given_seeds(init, shape, len(sets))
    if init == "random":
        seed = settings.seed
        ints = [int(seed) + i for i in range(n)] if isinstance(seed, int) else [int(s) for s in seed]
        if len(ints) != n:
            raise ValueError(f"got {len(ints)} seed integers for {n} seeds")
        return seeds_from_ints(ints, shape)
    if init in ("nao-centroid", "cog-centroid") and len(sets) == 1 and settings.num_seeds > 1:
        raise ValueError(f"init={init!r} gives one seed per reference set; use num_seeds=1, several reference "
                         "sets, or init='nao-paths'/'random'")
    out = []
    for j, refs in enumerate(sets):
        cond = conditions[j] if len(sets) > 1 else conditions[0]
        inverted = model.invert(refs, cond, settings.inversion_steps).float().cpu()
        if init in ("nao-centroid", "cog-centroid"):
            out.append(_centroid(inverted, init.split("-")[0], prior=settings.prior).reshape(1, *shape))
            continue
        candidates = _path_candidates(inverted, settings.path_points, shape, settings.prior)
        scores = _score(model, candidates, target.repeat_row(j, candidates.shape[0]), cond, feature_fn, settings)
        if len(sets) == 1 and n > candidates.shape[0]:
            raise ValueError(f"num_seeds={n} but 'nao-paths' has only {candidates.shape[0]} candidates; raise "
                             "path_points or lower num_seeds")
        out.append(candidates[scores.argsort()[:n if len(sets) == 1 else 1]])
    return torch.cat(out)


def _given_seeds(init: torch.Tensor, shape: tuple[int, ...], num_sets: int) -> torch.Tensor:
    seeds = init.detach().float().cpu()
    if tuple(seeds.shape) == shape:
        seeds = seeds[None]
    if tuple(seeds.shape[1:]) != shape:
        raise ValueError(f"init seeds must have shape (N, {', '.join(map(str, shape))}), got {tuple(init.shape)}")
    if num_sets > 1 and seeds.shape[0] != num_sets:
        raise ValueError(f"got {seeds.shape[0]} init seeds for {num_sets} reference sets")
    if not torch.isfinite(seeds).all():
        raise ValueError("init seeds contain NaN or infinite values")
    return seeds


def _path_candidates(inverted: torch.Tensor, path_points: int, shape: tuple[int, ...], prior=None) -> torch.Tensor:
    """The NAO centroid of the inversions, then the interior points of the NAO path to each inversion (under
    ``prior``; None: chi(d))."""
    if path_points < 3:
        raise ValueError("path_points must be >= 3 (the path endpoints are not candidates)")
    centre, paths = _centroid(inverted, "nao", return_paths=True, steps=path_points, prior=prior)
    paths = torch.as_tensor(paths).float().reshape(inverted.shape[0], path_points, *shape)
    return torch.cat([torch.as_tensor(centre).float().reshape(1, *shape), paths[:, 1:-1].reshape(-1, *shape)])


@torch.no_grad()
def _score(model, candidates: torch.Tensor, target: SeedSelectTarget, cond, feature_fn: FeatureFn,
           settings: SeedSelectSettings) -> torch.Tensor:
    """The SeedSelect loss of every candidate, in batches of the model's ``batch_size``."""
    bs, scores = model.batch_size, []
    for i in range(0, candidates.shape[0], bs):
        chunk = candidates[i:i + bs]
        rows = SeedSelectTarget(target.features[i:i + chunk.shape[0]], target.latent[i:i + chunk.shape[0]])
        scores.append(seedselect_loss(model, chunk, rows, cond, feature_fn, settings, checkpoint=False)[0].cpu())
    return torch.cat(scores)
