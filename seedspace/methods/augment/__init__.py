"""Synthetic training data for rare concepts: ``augment`` turns a few reference images per class into N images per
class from NAO centroids, NAO paths, SeedSelect or random seeds, written as an ImageFolder data set with a
manifest, deterministically, resumably, in-process or on Ray.

Modules: ``settings`` (the options), ``references`` (inputs, conditions, their store), ``inversion`` (the
references' inversions and their round trip), ``strategies`` (seed recipes), ``planning`` (the work plan and its
shards), ``shards`` (running one shard), ``executors`` (local, Ray), ``writing`` (the files), ``run``
(``augment`` itself).
"""

from .executors import EXECUTORS, AugmentError
from .run import AugmentResult, augment
from .settings import CONDITIONS, METHODS, STRATEGIES, AugmentSettings

__all__ = ["CONDITIONS", "EXECUTORS", "METHODS", "STRATEGIES", "AugmentError", "AugmentResult", "AugmentSettings",
           "augment"]
