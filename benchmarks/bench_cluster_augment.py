"""One centroid family vs per-cluster centroids on rare concepts: ``seedspace augment`` with the strategies
``centroid`` (centroids of subsets of all k inversions), ``clusters`` (M NAO clusters of the inversions, centroids
of subsets within each) and ``random``, scored by the testbed judge against real test images of the class.

    python benchmarks/bench_cluster_augment.py --out reports/bench_cluster_augment.md      # defaults (see below)
    python benchmarks/bench_cluster_augment.py --sets 1 --per-set 6 --steps 2 --real 60 --mixed none   # plumbing

For every tail class of the testbed, ``--sets`` disjoint sets of k = ``--k`` real images from its long-tailed
training split (seeded), and for each set ``--per-set`` images per arm, all arms from the same references, seed and
sampler (DDIM ``--steps``, the model's guidance, ``--dtype`` weights). ``--mixed A:B`` adds a reference set with
known modes: k / 2 images of class A and k / 2 of class B, generated unconditionally (the class is given only by
the inversions); there the clusters arms also report the purity of their clustering of the inversions.

``--per-set`` must not exceed what the clusters strategy gives from the worst partition of k references into M
clusters (k = 10, M = 3: clusters of 4, 3, 3 give 11 + 4 + 4 = 19 centroids), so that every arm has the same
number of images (Fréchet distance, recall and coverage depend on it).

Scores (the judge's 128-d features; real = ``--real`` Fashion-MNIST test images of the class not in the few-shot
set, as in ``seedspace evaluate``): judge accuracy; KID (unbiased MMD^2) and the Fréchet distance ("FID-style",
biased upwards at small n: compare within the table only), per class, averaged over classes; precision / recall
and density / coverage (``scoring.metrics.manifold_metrics``, ``--manifold-k`` neighbours), per class on its pooled
images, averaged; diversity (mean pairwise feature distance in units of the class's real spread). 95% bootstrap
intervals: accuracy over the (class, set) groups; KID and Fréchet distance with the sets resampled within each
class (a reference set's images move together; Fréchet intervals recentred for its resampling bias); the manifold
metrics are point estimates (duplicated resampled images would shrink their k-NN balls).

Cost at the defaults (3 tail classes + 1 mixed set, 4 sets each = 16 reference sets, 19 images per set, 4 arms; 20
steps, bfloat16): 1,216 generated images, 912 NAO centroids, 32 clusterings (4 k-means++ starts each), 480
inversions. Measured CPU time on one thread per reference set: sampling 19 images 4.5 s, inverting 10 references
1.2 s, 19 NAO centroids 1.2 s, one clustering 1.9 s, so ~29 s per set for the 4 arms, ~470 s for 16 sets on one
thread; with 2 quiet cores (the UNet uses both) about 6-8 minutes. The printed wall time is the measured one.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from seedspace.methods.augment import augment
from seedspace.methods.augment.strategies import cluster_capacity
from seedspace.scoring.judge import EvalJudge, load_references
from seedspace.scoring.metrics import (
    FeatureReference,
    group_frechet,
    group_kid,
    index_bootstrap_ci,
    manifold_metrics,
    mean_pairwise_distance,
)
from seedspace.backends.loading import load_model
from seedspace.outputs import read_png_pixels
from seedspace.testbed.data import to_model_space

METRICS = ("acc", "kid", "fid", "precision", "recall", "density", "coverage", "diversity")


@dataclass
class Group:
    """One reference set: the classes it stands for (one, or two for the mixed set), its images, its condition."""

    key: str
    classes: tuple
    references: torch.Tensor
    truth: np.ndarray  # the class of each reference
    condition: str
    name: str


@dataclass
class ArmResult:
    images: dict = field(default_factory=dict)  # group key -> (n, C, H, W) in [0, 1]
    seeds: dict = field(default_factory=dict)  # group key -> the manifest's seed records
    seconds: float = 0.0


def parse_arm(arm: str) -> dict:
    """'random', 'centroid' or 'clusters:M' -> augment's keywords."""
    strategy, _, m = arm.partition(":")
    if strategy not in ("random", "centroid", "clusters") or bool(m) != (strategy == "clusters"):
        raise argparse.ArgumentTypeError(f"arms are random, centroid or clusters:M, got {arm!r}")
    return {"strategy": strategy, "clusters": int(m)} if m else {"strategy": strategy}


def worst_capacity(k: int, m: int) -> int:
    """The fewest distinct seeds the clusters strategy can give from k references in m clusters (over every
    partition of k into m non-empty clusters)."""
    def parts(total, count, smallest):
        if count == 1:
            if total >= smallest:
                yield (total,)
            return
        for s in range(smallest, total // count + 1):
            for rest in parts(total - s, count - 1, s):
                yield (s,) + rest
    return min(sum(cluster_capacity(s) for s in p) for p in parts(k, m, 1))


def reference_sets(pool: np.ndarray, k: int, sets: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``sets`` sets of k indices from ``pool``: disjoint when the pool is large enough, else drawn independently."""
    if sets * k <= len(pool):
        order = rng.permutation(pool)
        return [np.sort(order[r * k:(r + 1) * k]) for r in range(sets)]
    return [np.sort(rng.choice(pool, k, replace=False)) for _ in range(sets)]


def make_groups(model, args) -> list[Group]:
    x, y = model.data_split("train-longtail")
    y = y.numpy()

    def images(idx):
        return (to_model_space(x[torch.from_numpy(idx)]) + 1) / 2

    groups = []
    for c in model.tail_classes:
        rng = np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(c,)))
        for r, idx in enumerate(reference_sets(np.flatnonzero(y == c), args.k, args.sets, rng)):
            groups.append(Group(f"{c}/{r}", (c,), images(idx), np.full(args.k, c), "class", model.class_names[c]))
    if args.mixed:
        a, b = args.mixed
        half = args.k // 2
        rng = [np.random.default_rng(np.random.SeedSequence(args.seed, spawn_key=(100 + c,))) for c in (a, b)]
        sets_a = reference_sets(np.flatnonzero(y == a), half, args.sets, rng[0])
        sets_b = reference_sets(np.flatnonzero(y == b), args.k - half, args.sets, rng[1])
        for r, (ia, ib) in enumerate(zip(sets_a, sets_b)):
            truth = np.r_[np.full(len(ia), a), np.full(len(ib), b)]
            groups.append(Group(f"{a}+{b}/{r}", (a, b), images(np.r_[ia, ib]), truth, "unconditional",
                                f"mixed {a}+{b}"))
    return groups


def generate(model, groups: list[Group], arm: str, args, root: Path) -> ArmResult:
    """``--per-set`` images of every group with one arm (an ``augment`` data set per group, read back)."""
    out = ArmResult()
    for g in groups:
        folder = root / f"{arm.replace(':', '-')}-{g.key.replace('/', '-')}"
        result = augment(model, {g.name: g.references}, folder, per_class=args.per_set, method="nao",
                         condition=g.condition, seed=args.seed, steps=args.steps, dtype=args.dtype,
                         shard_size=args.per_set, batch_size=64, **parse_arm(arm))
        entries = result.entries()
        pixels = [read_png_pixels(folder / e["file"]) for e in entries]
        out.images[g.key] = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255.0
        out.seeds[g.key] = [e["seed"] for e in entries]
        out.seconds += result.seconds
    return out


def interval(point, lo, hi, spec=".3f") -> str:
    return f"{point:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def score_classes(judge: EvalJudge, groups: list[Group], res: ArmResult, args) -> dict:
    """The metrics of one arm over the single-class groups (per class, then averaged over classes)."""
    classes = sorted({g.classes[0] for g in groups})
    by_class = {c: [g for g in groups if g.classes == (c,)] for c in classes}
    correct, feats = {}, {}
    for g in groups:
        s = judge.score(res.images[g.key], [g.classes[0]] * len(res.images[g.key]))
        correct[g.key], feats[g.key] = s["correct"], s["feats"]
    keys = [g.key for g in groups]
    acc = index_bootstrap_ci(len(keys), lambda idx: np.concatenate([correct[keys[i]] for i in idx]).mean(),
                             n_boot=args.boot, seed=args.seed)
    refs = {c: FeatureReference(judge.ref_feats[c]) for c in classes}
    strata = [[feats[g.key] for g in by_class[c]] for c in classes]
    kid_stats = [group_kid(refs[c], strata[i]) for i, c in enumerate(classes)]
    fid_stats = [group_frechet(refs[c], strata[i]) for i, c in enumerate(classes)]
    sizes = [len(s) for s in strata]
    kid = index_bootstrap_ci(sizes, lambda idx: np.mean([f(i) for f, i in zip(kid_stats, idx)]), n_boot=args.boot,
                             seed=args.seed)
    fid = index_bootstrap_ci(sizes, lambda idx: np.mean([f(i) for f, i in zip(fid_stats, idx)]), n_boot=args.boot,
                             seed=args.seed, method="recentred")
    manifold = [manifold_metrics(judge.ref_feats[c], np.concatenate(strata[i]), args.manifold_k)
                for i, c in enumerate(classes)]
    row = {"acc": interval(*acc), "kid": interval(*kid, spec=".4g"), "fid": interval(*fid, spec=".1f")}
    for m in ("precision", "recall", "density", "coverage"):
        row[m] = f"{np.mean([d[m] for d in manifold]):.3f}"
    row["diversity"] = f"{np.mean([judge.diversity(np.concatenate(s), c) for s, c in zip(strata, classes)]):.3f}"
    return row


def score_mixed(judge: EvalJudge, groups: list[Group], res: ArmResult, args) -> dict:
    """The mixed sets: the share judged as A or B, the share of A among those, the scores against A and B's real
    images pooled (equal counts), and the purity of the clusters arms' clustering of the inversions."""
    a, b = groups[0].classes
    real = np.concatenate([judge.ref_feats[a], judge.ref_feats[b]])
    ref = FeatureReference(real)
    feats, in_pair, is_a = [], [], []
    for g in groups:
        pred = judge.classify(res.images[g.key]).argmax(1)
        in_pair.append(np.isin(pred, (a, b)).astype(float))
        is_a.append((pred[np.isin(pred, (a, b))] == a).astype(float))
        feats.append(judge.features(res.images[g.key]))
    n = len(groups)
    acc = index_bootstrap_ci(n, lambda idx: np.concatenate([in_pair[i] for i in idx]).mean(), n_boot=args.boot,
                             seed=args.seed)
    balance = np.concatenate(is_a).mean() if sum(len(v) for v in is_a) else float("nan")
    kid = index_bootstrap_ci(n, group_kid(ref, feats), n_boot=args.boot, seed=args.seed)
    fid = index_bootstrap_ci(n, group_frechet(ref, feats), n_boot=args.boot, seed=args.seed, method="recentred")
    pooled = np.concatenate(feats)
    row = {"acc": interval(*acc), "share A": f"{balance:.2f}", "kid": interval(*kid, spec=".4g"),
           "fid": interval(*fid, spec=".1f"), **{m: f"{v:.3f}" for m, v in
                                               manifold_metrics(real, pooled, args.manifold_k).items()},
           "diversity": f"{mean_pairwise_distance(pooled) / np.mean([judge.scale[a], judge.scale[b]]):.3f}"}
    purity = []
    for g in groups:
        clusters = {tuple(s["members"]) for s in res.seeds[g.key] if "members" in s}
        if clusters:
            purity.append(sum(np.bincount(g.truth[list(m)]).max() for m in clusters) / len(g.truth))
    row["purity"] = f"{np.mean(purity):.2f}" if purity else "-"
    return row


def table(title: str, columns: list[str], rows: dict) -> list[str]:
    lines = [f"#### {title}", "", "| arm | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {arm} | " + " | ".join(row[c] for c in columns) + " |" for arm, row in rows.items()]
    return lines + [""]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="testbed")
    p.add_argument("--arms", default="centroid,clusters:2,clusters:3,random",
                   help="comma-separated arms: random, centroid, clusters:M")
    p.add_argument("--k", type=int, default=10, help="reference images per set")
    p.add_argument("--sets", type=int, default=4, help="reference sets per class (disjoint where the class allows)")
    p.add_argument("--per-set", type=int, default=19, help="images per set and arm")
    p.add_argument("--mixed", default="0:9", help="A:B, a mixed reference set of classes A and B, or 'none'")
    p.add_argument("--steps", type=int, default=20, help="DDIM steps of generation and inversion")
    p.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--real", type=int, default=500, help="real test images per class (the judge's references)")
    p.add_argument("--manifold-k", type=int, default=5, help="neighbours of precision / recall / density / coverage")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--keep", default=None, metavar="DIR", help="keep the generated data sets here (default: a temp dir)")
    p.add_argument("--out", default=None, help="also write the Markdown here")
    args = p.parse_args(argv)
    try:
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        options = [parse_arm(a) for a in arms]
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    args.arms = arms
    for o in options:
        if o["strategy"] == "clusters":
            if not 1 <= o["clusters"] <= args.k:
                p.error(f"clusters:{o['clusters']} needs 1 <= M <= k = {args.k}")
            if args.per_set > worst_capacity(args.k, o["clusters"]):
                p.error(f"--per-set {args.per_set} is more than clusters:{o['clusters']} gives from the worst partition "
                        f"of k = {args.k} references ({worst_capacity(args.k, o['clusters'])})")
        if o["strategy"] != "random" and (args.k < 2 or args.per_set > 2 ** args.k - args.k - 1):
            p.error(f"k = {args.k} references give fewer than --per-set {args.per_set} centroids")
    if args.mixed in (None, "", "none"):
        args.mixed = None
    else:
        try:
            args.mixed = tuple(int(c) for c in args.mixed.split(":"))
            assert len(args.mixed) == 2 and args.mixed[0] != args.mixed[1]
        except (ValueError, AssertionError):
            p.error(f"--mixed must be A:B with two different class indices, got {args.mixed!r}")
    if args.per_set <= args.manifold_k:
        p.error(f"--per-set must be more than --manifold-k ({args.manifold_k})")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu", dtype=args.dtype)
    judge = EvalJudge(model, load_references(model, "auto", per_class=args.real, seed=args.seed))
    groups = make_groups(model, args)
    single = [g for g in groups if len(g.classes) == 1]
    mixed = [g for g in groups if len(g.classes) == 2]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_cluster_augment_") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for arm in args.arms:
            results[arm] = generate(model, groups, arm, args, root)
            print(f"{arm}: {sum(len(v) for v in results[arm].images.values())} images in "
                  f"{results[arm].seconds:.0f} s", file=sys.stderr)
    class_rows = {arm: score_classes(judge, single, res, args) for arm, res in results.items()}
    mixed_rows = {arm: score_mixed(judge, mixed, res, args) for arm, res in results.items()} if mixed else {}
    wall = time.perf_counter() - t0

    names = model.class_names
    command = shlex.join(["python", "benchmarks/bench_cluster_augment.py", *(sys.argv[1:] if argv is None else argv)])
    machine = (f"{platform.processor() or platform.machine()}, os.cpu_count() = {os.cpu_count()}, "
               f"{platform.system()}; torch {torch.__version__}, {args.threads} torch thread(s); wall time {wall:.0f} s")
    sampler = (f"{model.name}, {args.dtype}, DDIM {args.steps} steps (inversion too), guidance "
               f"{model.default_guidance}; method nao, chi(d) prior; seed {args.seed}")
    inputs = (f"{args.sets} set(s) of k = {args.k} images per class from the long-tailed training split; "
              f"{args.per_set} images per set and arm; real: {judge.per_class} Fashion-MNIST test images per class "
              f"(not the few-shot set); {args.boot} bootstrap resamples")
    seconds = ", ".join(f"{a} {r.seconds:.0f}" for a, r in results.items())
    lines = ["### augment: one centroid family vs per-cluster centroids on rare concepts", "",
             f"- command: `{command}`", f"- machine: {machine}", f"- model: {sampler}", f"- references: {inputs}",
             f"- generation seconds per arm (augment calls: inversions, clustering, centroids, sampling): {seconds}", ""]
    tail = ", ".join(f"{c} ({names[c]})" for c in sorted({g.classes[0] for g in single}))
    lines += table(f"Tail classes {tail}, class-conditional: per class, averaged over classes",
                   list(METRICS), class_rows)
    if mixed_rows:
        a, b = args.mixed
        title = (f"Mixed set {a} ({names[a]}) + {b} ({names[b]}), {args.k // 2} + {args.k - args.k // 2} references, "
                 "unconditional: acc = judged as A or B, share A among those (0.5 = balanced), scores against A and "
                 "B's real images pooled, purity of the clusters of the inversions")
        lines += table(title,
                       ["acc", "share A", "kid", "fid", "precision", "recall", "density", "coverage", "diversity",
                        "purity"], mixed_rows)
    lines.append("Intervals: 95% bootstrap (accuracy: (class, set) groups; KID and Fréchet distance: sets resampled "
                 "within each class, Fréchet recentred). Precision / recall / density / coverage and diversity: point "
                 "estimates on each class's pooled images.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
