"""Checks for an accelerator: parity with the diffusers pipelines in float16 and bfloat16, CPU-drawn seeds giving
the CPU's images, generation timings for the testbed and a tiny SDXL, and (on CUDA) the testbed UNet's forward
compiled (``compile=True``) against eager in float16 and bfloat16; prints markdown tables.

    python scripts/gpu_check.py                 # --device auto: cuda, then mps; without one it says so and exits 0
    python scripts/gpu_check.py --device cpu    # the same checks on the CPU (to try the script itself)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tiny offline model builders

import seedspace as ss  # noqa: E402
from seedspace.backends.acceleration import CompiledForward, compile_unavailable  # noqa: E402
from seedspace.backends.base import seeds_from_ints  # noqa: E402
from seedspace.backends.loading import resolve_device  # noqa: E402
from seedspace.backends.parity import pipeline_output  # noqa: E402
from tiny_models import write_tiny_flux, write_tiny_sd3, write_tiny_sdxl, write_tiny_stable_diffusion  # noqa: E402

FAMILIES = {"sd": (write_tiny_stable_diffusion, ("ddim", "dpmpp-2m", "euler", "unipc")),
            "sdxl": (write_tiny_sdxl, ("ddim", "dpmpp-2m", "euler", "unipc")),
            "sd3": (write_tiny_sd3, ("flow-euler",)), "flux": (write_tiny_flux, ("flow-euler",))}
PARITY_TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 6e-2}  # max |delta| on [0, 1] images
CPU_TOLERANCE = 1e-3  # float32 images on the device vs on the CPU


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def _timed(device: torch.device, fn, repeats: int = 3) -> float:
    """The best of ``repeats`` wall times of fn() in seconds, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def parity_rows(folders: dict, device: torch.device, steps: int) -> list[tuple]:
    """(family, scheduler, dtype, max |image - pipeline image|, max |device image - CPU image| (float32), ok)."""
    rows = []
    for family, (_, schedulers) in FAMILIES.items():
        cpu = ss.load_model(str(folders[family]))
        seeds = seeds_from_ints([42, 7], cpu.seed_shape)
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            model = ss.load_model(str(folders[family]), device=device, dtype=dtype)
            for scheduler in schedulers:
                images = model.generate(seeds, "a cat", steps, 5.0, scheduler=scheduler)
                parity = float((images - pipeline_output(model, seeds, "a cat", steps, 5.0, scheduler)).abs().max())
                ok = torch.isfinite(images).all() and parity < PARITY_TOLERANCE[dtype]
                vs_cpu = None
                if dtype == torch.float32:
                    vs_cpu = float((images - cpu.generate(seeds, "a cat", steps, 5.0, scheduler=scheduler)).abs().max())
                    ok = ok and vs_cpu < CPU_TOLERANCE
                rows.append((family, scheduler, str(dtype).removeprefix("torch."), parity, vs_cpu, bool(ok)))
    return rows


def timing_rows(folders: dict, device: torch.device, n: int) -> list[tuple]:
    """(model, dtype, images, steps, seconds, images per second) for the shipped testbed and the tiny SDXL."""
    rows = []
    for label, ref, steps, condition in (("testbed (32x32)", None, 50, 0),
                                         ("tiny SDXL (16x16)", str(folders["sdxl"]), 30, "a cat")):
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            model = ss.load_model(ref, device=device, dtype=dtype)
            model.batch_size = n
            seeds = seeds_from_ints(range(n), model.seed_shape)
            seconds = _timed(device, lambda: model.generate(seeds, condition, steps))
            rows.append((label, str(dtype).removeprefix("torch."), n, steps, seconds, n / seconds))
    return rows


def compiled_rows(device: torch.device, n: int) -> tuple[list[tuple], str | None]:
    """(rows, why none): per dtype (float16, bfloat16 where the GPU has it) the testbed UNet's guided forward of
    2n images, eager against compiled (the model's ``compile=True`` path): (dtype, eager ms, compiled ms, speed-up,
    first compiled call s, max |compiled - eager| of the UNet output). CUDA only: inductor's GPU kernels need
    triton; elsewhere (MPS, CPU) the reason instead of rows (the CPU's numbers: benchmarks/bench_generator.py)."""
    if device.type != "cuda":
        return [], f"the compiled forward is timed on CUDA only (this is {device.type})"
    reason = compile_unavailable(device)
    if reason is not None:
        return [], reason
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            continue
        model = ss.load_model(None, device=device, dtype=dtype)
        x = torch.randn(2 * n, *model.seed_shape, generator=torch.Generator().manual_seed(0)).to(device, dtype)
        labels = (torch.arange(2 * n) % (model.num_classes + 1)).to(device)
        t = torch.tensor(500, device=device)
        fwd = CompiledForward(model.unet)
        with torch.inference_mode():
            _sync(device)
            start = time.perf_counter()
            compiled_out = fwd(x, t, labels)
            _sync(device)
            first = time.perf_counter() - start
            if not fwd.active:  # compilation failed: one log line already said why
                rows.append((str(dtype).removeprefix("torch."), None, None, None, first, None))
                continue
            eager_out = model.unet(x, t, class_labels=labels).sample
            eager = _timed(device, lambda: model.unet(x, t, class_labels=labels), repeats=10)
            compiled = _timed(device, lambda: fwd(x, t, labels), repeats=10)
        diff = float((compiled_out.float() - eager_out.float()).abs().max())
        rows.append((str(dtype).removeprefix("torch."), 1000 * eager, 1000 * compiled, eager / compiled, first, diff))
    return rows, None


def _table(header: tuple, rows: list[tuple]) -> str:
    def cell(v):
        return "-" if v is None else f"{v:.2e}" if isinstance(v, float) and v < 0.01 else \
            f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps), cuda, mps or cpu")
    parser.add_argument("--steps", type=int, default=8, help="sampler steps of the parity checks")
    parser.add_argument("--images", type=int, default=64, help="images per timed batch")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    if args.device == "auto" and device.type == "cpu":
        print("gpu_check: no GPU (cuda or mps) on this machine; nothing to check (use --device cpu to run it on the CPU)")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    with tempfile.TemporaryDirectory() as tmp:
        folders = {family: build(Path(tmp) / family) for family, (build, _) in FAMILIES.items()}
        parity = parity_rows(folders, device, args.steps)
        timings = timing_rows(folders, device, args.images)
        compiled, no_compiled = compiled_rows(device, args.images)
    print(f"## seedspace GPU check on {name} (torch {torch.__version__})\n")
    print(_table(("family", "scheduler", "dtype", "max diff vs pipeline", "max diff vs CPU (fp32)", "ok"), parity))
    print()
    print(_table(("model", "dtype", "images", "steps", "seconds", "images/s"), timings))
    print()
    if compiled:
        print(f"testbed UNet forward of {2 * args.images} images (one guided step), eager vs compile=True:\n")
        print(_table(("dtype", "eager ms", "compiled ms", "speed-up", "first compiled call s",
                      "max diff vs eager"), compiled))
    else:
        print(f"compiled forward: skipped ({no_compiled})")
    failed = [row for row in parity if not row[-1]]
    if failed:
        print(f"\n{len(failed)} check(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
