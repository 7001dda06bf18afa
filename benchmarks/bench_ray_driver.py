"""Is the ``augment`` driver a bottleneck at 1,000 classes? A simulated multi-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: a head and worker nodes, each a separate raylet with its own CPUs), a 1,000-class
job on a tiny model whose images cost almost nothing, and the driver's own CPU time against the wall time.

    python benchmarks/bench_ray_driver.py                         # 1,000 classes x 64 images, 3 nodes x 1 CPU
    python benchmarks/bench_ray_driver.py --classes 100 --out reports/bench_ray_driver.md

The model is the tests' tiny testbed (an 8x8 UNet with random weights, 2 DDIM steps), so the time of a shard is
almost all fixed cost: handing the shard to an actor, writing its PNGs and manifest part, returning. The driver
plans, dispatches through a fixed-size actor pool and assembles the manifest; its CPU time (``time.process_time``
of this process, Ray's own driver threads included; the raylets and the GCS are processes of their own and not counted) is what a larger cluster would have to share. The shard rate
the driver sustains, divided by its CPU share, bounds how many GPUs it can feed (see the cost model printed at the
end): with N GPUs making r images/s each and shards of S images, the driver must hand out N r / S shards per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from seedspace.methods.augment import augment
from seedspace.hardware import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tiny_models import write_tiny_testbed  # noqa: E402  (the tests' tiny model, random weights)


def reference_folders(root: Path, classes: int) -> Path:
    """``classes`` class folders of one random 8x8 reference image each (the random strategy needs one)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"concept{c:04d}"
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / "ref.png")
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--per-class", type=int, default=64, help="images per class (one shard per class)")
    p.add_argument("--nodes", type=int, default=3, help="simulated nodes: the head and nodes - 1 workers")
    p.add_argument("--cpus-per-node", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the Markdown here")
    args = p.parse_args()
    torch.set_num_threads(1)

    from ray.cluster_utils import Cluster  # the ray extra: pip install seedspace[ray]

    root = Path(tempfile.mkdtemp(prefix="bench_ray_driver_"))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node})
    try:
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=args.cpus_per_node)
        cluster.wait_for_nodes()
        model = write_tiny_testbed(root / "model")
        refs = reference_folders(root / "refs", args.classes)
        workers = args.nodes * args.cpus_per_node
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = augment(str(model), refs, root / "out", per_class=args.per_class, strategy="random",
                         condition="unconditional", steps=2, shard_size=args.per_class, batch_size=args.per_class,
                         executor="ray", workers=workers, ray_address=cluster.address, device="cpu", dtype="float32",
                         threads=1)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        cluster.shutdown()
        shutil.rmtree(root, ignore_errors=True)

    shards = result.shards
    lines = [
        "### augment's driver at 1,000 classes: a simulated multi-node Ray cluster",
        "",
        f"- machine: {cpu_model()}, os.cpu_count() = {os.cpu_count()}, {platform.system()}; torch {torch.__version__}",
        f"- cluster: `ray.cluster_utils.Cluster`, {args.nodes} nodes x {args.cpus_per_node} CPU on this machine, "
        f"{workers} actors (one per CPU), 1 torch thread each",
        f"- job: {args.classes} classes x {args.per_class} images = {result.images} images in {shards} shards "
        "(strategy random, unconditional, tiny 8x8 testbed with random weights, 2 DDIM steps)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| wall time of the `augment` call (actor start, model loads, planning, dispatch, writing, manifest) | "
        f"{wall:.1f} s |",
        f"| driver CPU time (this process) | {cpu:.1f} s ({100 * cpu / wall:.0f}% of one core) |",
        f"| shards per second sustained | {shards / wall:.1f} |",
        f"| driver CPU per shard | {1000 * cpu / shards:.1f} ms |",
        f"| images per second | {result.images / wall:.0f} |",
        "",
        f"Cost model: the driver spends about {1000 * cpu / shards:.1f} ms of CPU per shard, so one driver core hands "
        f"out at most {shards / cpu:.0f} shards/s. N GPUs making r images/s each with shards of S images need N r / S "
        f"shards/s: with S = {args.per_class}, one driver feeds N_max = {shards / cpu:.0f} x {args.per_class} / r = "
        f"{shards / cpu * args.per_class:.0f} / r GPUs (r in images/s per GPU). Wall time for C classes x n images "
        f"on N GPUs: C n / (N r) plus a fixed start (actors and one model load per worker) and the planning "
        f"(seconds for 1,000 x 1,000, see bench_augment).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
