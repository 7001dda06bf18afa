"""Purity of 2 NAO clusters on reference sets that mix two classes' inversions (the testbed's few-shot images).

    python benchmarks/bench_cluster_purity.py --pairs 0:9,5:7 --per-class 8 --steps 20

For each class pair: invert ``--per-class`` few-shot images of each class (unconditionally, so the inversion does
not know the class), cluster the seeds with ``ss.cluster(k=2)`` for each metric, and print the purity (the share of
seeds whose cluster's majority class is their own; 0.5 is chance).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import seedspace as ss


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    """sum over clusters of the largest class count, over n."""
    return sum(np.bincount(truth[labels == j]).max() for j in np.unique(labels)) / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="0:9,5:7,8:9", help="class pairs a:b, comma separated")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="DDIM inversion steps")
    parser.add_argument("--dtype", default="bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = ss.load_model(dtype=args.dtype)
    print("| classes | n | nao (chi) | nao (fitted prior) | euclidean | angular |")
    print("|---|---:|---:|---:|---:|---:|")
    for pair in args.pairs.split(","):
        classes = [int(c) for c in pair.split(":")]
        images = torch.cat([model.fewshot(c)[0][:args.per_class] for c in classes])
        truth = np.repeat(np.arange(2), images.shape[0] // 2)
        seeds = model.invert(images, "unconditional", args.steps).double()
        fitted = ss.fit_prior(seeds)
        runs = [("nao", None), ("nao", fitted), ("euclidean", None), ("angular", None)]
        scores = [purity(ss.cluster(seeds, 2, metric, prior=prior).labels, truth) for metric, prior in runs]
        names = getattr(model, "class_names", None) or [str(c) for c in range(10)]
        print(f"| {names[classes[0]]} / {names[classes[1]]} | {len(truth)} | " + " | ".join(f"{s:.2f}" for s in scores)
              + " |")


if __name__ == "__main__":
    main()
