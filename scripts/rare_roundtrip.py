"""The references' round trip at the long-tail benchmark's generation settings: how close does a reference come back
when it is DDIM-inverted and regenerated at the synthesis's steps and guidance (what a NAO path's endpoint decodes
to)? Measures the inversion settings the benchmark could use against the synthesis's sampling:

  inversion 50 steps, guidance 1   (the benchmark before issue 35: the model's default inversion)
  inversion S steps,  guidance 1   (the synthesis's steps, no guidance: the DDIM inversion every tool uses)
  inversion S steps,  guidance G   (the synthesis's steps and guidance: classifier-free guided inversion)
  fixed-point inversion of the sampler at S steps and guidance G (augment's inversion='fixed-point')

each regenerated at S steps and guidance G with the class label, and (for the unconditional arms) inverted and
regenerated with the null class at S steps. Mean PSNR in dB over the references (the first ``--per-class``
long-tailed training images of each class), per weights dtype (the benchmark synthesises in bf16 where native).

  OMP_NUM_THREADS=1 .venv/bin/python scripts/rare_roundtrip.py [--model testbed] [--steps 20] [--guidance 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import seedspace
from seedspace.backends import sampling
from seedspace.backends.base import UNCONDITIONAL, conditions_list
from seedspace.evaluation.synthesis import _to_model_space
from seedspace.methods.augment.inversion import FIXED_POINT_ITERATIONS, fixed_point_invert
from seedspace.scoring.metrics import image_psnr


def invert(model, images, condition, steps: int, guidance: float, fixed: bool = False) -> torch.Tensor:
    """DDIM inversion at ``guidance`` (the model's ``invert`` runs at guidance 1), or the fixed-point one."""
    if fixed:
        return fixed_point_invert(model, images, condition, steps, guidance)
    with torch.inference_mode():
        x0 = model.encode(images)
        return sampling.invert(model, x0, conditions_list(condition, len(images)), steps, guidance).float().cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="testbed")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(1)
    s, g = args.steps, args.guidance
    for dtype in args.dtypes.split(","):
        model = seedspace.load_model(args.model, dtype=dtype)
        x, y = model.data_split("train-longtail")
        names = model.class_names
        rows = {}
        t0 = time.perf_counter()
        for c in range(len(names)):
            refs = _to_model_space(x[y == c][:args.per_class], tuple(model.image_shape[-2:]))
            fp = f"fixed-point {s} g{g:g} ({FIXED_POINT_ITERATIONS} it.)"
            for label, cond, inv_steps, inv_g, gen_g, fixed in (
                    (f"class: invert 50 g1 -> generate {s} g{g:g}", names[c], 50, 1.0, g, False),
                    (f"class: invert {s} g1 -> generate {s} g{g:g}", names[c], s, 1.0, g, False),
                    (f"class: invert {s} g{g:g} -> generate {s} g{g:g}", names[c], s, g, g, False),
                    (f"class: invert {s} g1 -> generate {s} g1", names[c], s, 1.0, 1.0, False),
                    (f"class: {fp} -> generate {s} g{g:g}", names[c], s, g, g, True),
                    (f"null class: invert 50 -> generate {s}", UNCONDITIONAL, 50, 1.0, g, False),
                    (f"null class: invert {s} -> generate {s}", UNCONDITIONAL, s, 1.0, g, False),
                    (f"null class: {fp} -> generate {s}", UNCONDITIONAL, s, g, g, True)):
                seeds = invert(model, refs, cond, inv_steps, inv_g, fixed)
                images = model.generate(seeds, cond, s, gen_g)
                rows.setdefault(label, []).append(image_psnr(images, refs))
        print(f"{args.model} {dtype}: {len(names)} classes x {args.per_class} references, "
              f"{time.perf_counter() - t0:.0f} s")
        for label, values in rows.items():
            v = np.concatenate(values)
            per_class = ", ".join(f"{float(np.mean(p)):.1f}" for p in values)
            print(f"  {label:<52} mean {v.mean():5.1f} dB (min {v.min():.1f}); per class {per_class}")


if __name__ == "__main__":
    main()
