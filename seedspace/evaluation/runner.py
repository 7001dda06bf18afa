"""Shared machinery of the experiments: cached generation and inversion, seeded randomness, summary statistics."""

from __future__ import annotations

import hashlib
import math
import tempfile
import time
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..backends.base import seeds_from_ints
from ..backends.loading import load_model, resolve_dtype
from ..scoring.judge import EvalJudge, load_references, resize_images
from ..scoring.metrics import bootstrap_ci, group_frechet, group_kid, index_bootstrap_ci, paired_bootstrap_ci
from ..settings import model_sampling
from .config import EvalConfig


def stable_seed(*parts) -> int:
    """A deterministic 32-bit seed from the run seed and names (Python's ``hash`` is salted per process)."""
    return zlib.crc32("/".join(map(str, parts)).encode()) & 0xFFFFFFFF


class Runner:
    """Holds the model, the judge and the caches for one evaluation run."""

    def __init__(self, model, config: EvalConfig, judge: EvalJudge | None = None,
                 workdir: Path | None = None):
        self.model, self.cfg = model, config
        self._workdir = workdir
        self._synthesis_model = None
        self.steps, self.guidance = model_sampling(model, config.steps, config.guidance)
        self.inversion_steps = int(config.inversion_steps or self.steps)
        self.d = int(math.prod(model.seed_shape))
        self.num_classes = len(model.class_names)
        self.counters = {"images": 0, "generate_s": 0.0, "inversions": 0, "invert_s": 0.0, "cache_hits": 0}
        self._images: dict[bytes, torch.Tensor] = {}
        self._inversions: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.reference_psnr: dict[str, list[float]] = {}  # condition -> the synthesis's references' round trips (dB)
        self.round_trips_seen: set[tuple] = set()  # (condition, references' digest): each counted once, not per arm
        t0 = time.perf_counter()
        self.judge = judge or EvalJudge(model, load_references(model, config.references, config.ref_per_class, config.seed))
        self.counters["judge_setup_s"] = time.perf_counter() - t0

    def workdir(self, name: str) -> Path:
        """A folder for the data sets an experiment writes: ``<out>/datasets/<name>`` of the run, or a temporary
        folder (removed when the process ends) without one."""
        if self._workdir is None:
            self._tmp = getattr(self, "_tmp", None) or tempfile.TemporaryDirectory(prefix="seedspace-eval-")
            self._workdir = Path(self._tmp.name)
        return self._workdir / name

    def synthesis_model(self):
        """The model in the long-tail settings' dtype for the benchmark's synthesis (the evaluated model itself when that is its
        dtype or it cannot be reloaded)."""
        dtype = resolve_dtype(self.cfg.longtail.dtype, self.model.device)
        if dtype == getattr(self.model, "dtype", torch.float32) or getattr(self.model, "folder", None) is None:
            return self.model
        if self._synthesis_model is None:
            self._synthesis_model = load_model(self.model.folder, device=self.model.device, dtype=dtype)
        return self._synthesis_model

    # -- class selections ----------------------------------------------------------------------------------
    def classes(self) -> list[int]:
        if self.cfg.classes is not None:
            return [int(c) for c in self.cfg.classes]
        if self.cfg.quick:
            return sorted({0, self.num_classes // 2, self.num_classes - 1})
        return list(range(self.num_classes))

    def groups(self) -> dict[str, list[int]]:
        head = [int(c) for c in (getattr(self.model, "head_classes", None) or [0])]
        tail = [int(c) for c in (getattr(self.model, "tail_classes", None) or [self.num_classes - 1])]
        return {"head": head, "tail": tail}

    def rare_classes(self) -> list[int]:
        if self.cfg.rare.classes is not None:
            return [int(c) for c in self.cfg.rare.classes]
        tail = self.groups()["tail"]
        return tail[-1:] if self.cfg.quick else tail

    # -- randomness ---------------------------------------------------------------------------------------
    def rng(self, *names) -> np.random.Generator:
        return np.random.default_rng([self.cfg.seed, stable_seed(*names)])

    def random_seeds(self, n: int, *names) -> torch.Tensor:
        ints = self.rng("seeds", *names).integers(0, 2 ** 62, size=n)
        return seeds_from_ints(ints.tolist(), self.model.seed_shape)

    # -- generation (cached, batched) ------------------------------------------------------------------------
    def _key(self, seed: torch.Tensor, c: int, steps: int, guidance: float, scheduler: str | None) -> bytes:
        h = hashlib.sha1(seed.detach().to(torch.float32).contiguous().numpy().tobytes())
        h.update(f"|{c}|{steps}|{guidance}".encode())
        if scheduler is not None:  # the model's default sampler keeps the keys it always had
            h.update(f"|{scheduler}".encode())
        return h.digest()

    def generate(self, seeds: torch.Tensor, classes: Sequence[int], steps: int | None = None,
                 scheduler: str | None = None, guidance: float | None = None) -> torch.Tensor:
        """Images for seeds (N, *seed_shape) and classes (N,), in one batched call for the ones not cached; by
        default with the run's steps, guidance and the model's default sampler, else the named ``scheduler``."""
        seeds = seeds.detach().to(torch.float32).cpu()
        classes = [int(c) for c in classes]
        if seeds.shape[0] != len(classes):
            raise ValueError("one class per seed")
        steps = int(steps or self.steps)
        guidance = self.guidance if guidance is None else float(guidance)
        keys = [self._key(s, c, steps, guidance, scheduler) for s, c in zip(seeds, classes)]
        todo, seen = [], set()
        for i, k in enumerate(keys):
            if k not in self._images and k not in seen:
                todo.append(i)
                seen.add(k)
        self.counters["cache_hits"] += len(keys) - len(todo)
        if todo:
            t0 = time.perf_counter()
            sampler = {} if scheduler is None else {"scheduler": scheduler}
            out = self.model.generate(seeds[todo], condition=[classes[i] for i in todo], steps=steps,
                                      guidance=guidance, **sampler)
            self.counters["generate_s"] += time.perf_counter() - t0
            self.counters["images"] += len(todo)
            for i, image in zip(todo, out):
                self._images[keys[i]] = image
        return torch.stack([self._images[k] for k in keys]) if keys else torch.zeros((0,))

    # -- few-shot inversions (each image once) ----------------------------------------------------------------
    def inversions(self, classes: Sequence[int], n: int) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """class -> (seeds (m, *shape), real images (m, C, H, W)) for the first m = min(n, available) few-shot
        images of the class in a seeded order; all missing ones are inverted in one call."""
        need = []
        for c in classes:
            have = self._inversions.get(c)
            if have is None or have[0].shape[0] < n:
                need.append(c)
        if need:
            images, conds, spans = [], [], {}
            for c in need:
                imgs, _ = self.model.fewshot(c)
                order = self.rng("fewshot", c).permutation(imgs.shape[0])[:n]
                spans[c] = (sum(x.shape[0] for x in images), len(order))
                images.append(imgs[torch.as_tensor(order, dtype=torch.long)])
                conds += [c] * len(order)
            batch = resize_images(torch.cat(images), self.model.seed_shape[-2:])  # no-op for the testbed
            t0 = time.perf_counter()
            seeds = self.model.invert(batch, condition=conds, steps=self.inversion_steps).float().cpu()
            self.counters["invert_s"] += time.perf_counter() - t0
            self.counters["inversions"] += batch.shape[0]
            for c, (start, m) in spans.items():
                self._inversions[c] = (seeds[start:start + m], batch[start:start + m])
        return {c: (self._inversions[c][0][:n], self._inversions[c][1][:n]) for c in classes}

    def norms(self, seeds: torch.Tensor) -> np.ndarray:
        """norm / sqrt(d) of each seed in (..., *seed_shape)."""
        flat = seeds.reshape(*seeds.shape[: seeds.dim() - len(self.model.seed_shape)], -1).double()
        return (flat.norm(dim=-1) / math.sqrt(self.d)).numpy()

    # -- statistics -------------------------------------------------------------------------------------------
    def stat(self, values, *names) -> dict:
        """{mean, lo, hi, n}: BCa bootstrap CI of the mean over items."""
        values = np.asarray(values, dtype=np.float64).ravel()
        mean, lo, hi = bootstrap_ci(values, confidence=self.cfg.confidence, n_boot=self.cfg.n_boot,
                                    seed=stable_seed(self.cfg.seed, *names))
        return {"mean": mean, "lo": lo, "hi": hi, "n": int(values.size)}

    def paired(self, a, b, *names) -> dict:
        """{mean, lo, hi, n}: mean of a - b over paired items with a paired BCa bootstrap CI."""
        mean, lo, hi = paired_bootstrap_ci(a, b, confidence=self.cfg.confidence, n_boot=self.cfg.n_boot,
                                           seed=stable_seed(self.cfg.seed, "paired", *names))
        return {"mean": mean, "lo": lo, "hi": hi, "n": int(np.size(a))}

    def feature_stats(self, feat_groups: list[np.ndarray], classes, *names, paired_with: list | None = None) -> dict:
        """{"fid": stat, "kid": stat (from 2 images on)} of the pooled features of ``feat_groups`` against the classes' real
        references (with ``paired_with``: of a - b, the groups of b matched one to one). The CIs resample groups
        (paths, input sets), so correlated images move together. KID: BCa over its duplicate-aware replicates.
        FID-style: the re-centred percentile interval (see :func:`..metrics.index_bootstrap_ci`), since every
        replicate of this upward-biased statistic is inflated by duplicated images."""
        keep = [q for q, g in enumerate(feat_groups) if len(g) and (paired_with is None or len(paired_with[q]))]
        n_images = int(sum(len(feat_groups[q]) for q in keep))
        ref = self.judge.reference(classes)
        out = {}
        for key, make, method in (("fid", group_frechet, "recentred"), ("kid", group_kid, "BCa")):
            if key == "kid" and n_images < 2:
                continue  # KID needs two images
            stat = make(ref, [feat_groups[q] for q in keep])
            if paired_with is not None:
                stat_a, stat_b = stat, make(ref, [paired_with[q] for q in keep])
                stat = lambda idx, a=stat_a, b=stat_b: a(idx) - b(idx)  # noqa: E731
            mean, lo, hi = index_bootstrap_ci(len(keep), stat, confidence=self.cfg.confidence,
                                              n_boot=self.cfg.fid_boot, seed=stable_seed(self.cfg.seed, key, *names),
                                              method=method)
            out[key] = {"mean": mean, "lo": lo, "hi": hi, "n": len(keep) if paired_with is not None else n_images}
        return out
