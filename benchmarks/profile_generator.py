"""Where the testbed UNet's forward spends its time, by operator: torch.profiler over eager forwards of 128 images
(the guided batch of 64) in the default dtype, 2 threads, after warm-up; the share of each operator family.

    .venv/bin/python benchmarks/profile_generator.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.profiler import ProfilerActivity, profile

import seedspace as ss
from seedspace.backends.loading import native_dtype
from seedspace.hardware import cpu_model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    dtype = native_dtype("cpu")
    model = ss.load_model("testbed", dtype=dtype)
    x = torch.randn(128, *model.seed_shape, dtype=dtype)
    t = torch.full((128,), 500, dtype=torch.long)
    labels = torch.arange(128) % model.num_classes
    with torch.inference_mode():
        for _ in range(3):
            model.unet(x, t, class_labels=labels)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                model.unet(x, t, class_labels=labels)
    rows = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in rows)
    print(f"{cpu_model()}, 2 threads, {str(dtype).removeprefix('torch.')}, forward of 128, {args.repeats} forwards; "
          f"torch {torch.__version__}\n")
    print("| operator | self time ms per forward | share |\n|---|---:|---:|")
    for e in sorted(rows, key=lambda e: -e.self_cpu_time_total)[:12]:
        print(f"| {e.key} | {e.self_cpu_time_total / 1000 / args.repeats:.1f} | {e.self_cpu_time_total / total:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
