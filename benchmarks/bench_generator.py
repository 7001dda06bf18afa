"""The generator's limit and its levers: FLOPs per image and step of the UNets, achieved FLOP/s against the CPU's
peak in the default dtype, and the testbed's 64 images x 50 guided DDIM steps eager ("before": today's forward)
against compiled ("after": ``compile=True``), arms interleaved in one process, medians and ratios.

    .venv/bin/python benchmarks/bench_generator.py              # the full measurement (about 5 minutes on 2 idle cores)
    .venv/bin/python benchmarks/bench_generator.py --quick      # 16 images x 10 steps, 1 pair: the script itself

Peak FLOP/s per core and cycle (multiply-add = 2 FLOP), by the dtype and the CPU's flags (/proc/cpuinfo):
bfloat16 with AMX (``amx_bf16``): one TDPBF16PS tile multiply is 16x16x32 multiply-adds every 16 cycles = 1024;
bfloat16 with AVX-512 BF16 only: VDPBF16PS, 16 lanes x 2 pairs x 2 FLOP x 2 FMA ports = 128; float32 with AVX-512:
16 lanes x 2 FLOP x 2 FMA ports = 64; float32 with AVX2/FMA: 32. AMD's Zen 4 (family 25 with AVX-512) executes a
512-bit instruction on its two 256-bit FMA pipes together ("double-pumped"), so it has half those two AVX-512 rates
(64 and 32). Times the clock (``cpu MHz`` of /proc/cpuinfo, the nominal clock a VM reports; turbo is not counted) and
the threads used. Beside that nominal peak, the rate of one large matrix product in the same dtype and threads
(2048^3, best of 5) is measured: the ceiling the CPU's own GEMM library reaches here.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tiny offline model builders

import seedspace as ss  # noqa: E402
from seedspace.backends.acceleration import CompiledForward, compile_unavailable  # noqa: E402
from seedspace.backends.base import seeds_from_ints  # noqa: E402
from seedspace.backends.loading import native_dtype  # noqa: E402
from seedspace.hardware import _cpuinfo, cpu_model  # noqa: E402

THREADS = 2


def cpu_flags() -> set[str]:
    return set(next((line.split(":", 1)[1].split() for line in _cpuinfo().splitlines() if line.startswith("flags")),
                    []))


def clock_ghz() -> float:
    mhz = [float(line.split(":", 1)[1]) for line in _cpuinfo().splitlines() if line.startswith("cpu MHz")]
    return max(mhz) / 1000 if mhz else float("nan")


def amd_zen4() -> bool:
    """Whether this is AMD family 25 (Zen 3 / Zen 4; only Zen 4 has AVX-512), whose FMA pipes are 256 bits wide."""
    info = _cpuinfo()
    return "AuthenticAMD" in info and any(line.split(":", 1)[1].strip() == "25" for line in info.splitlines()
                                          if line.startswith("cpu family"))


def peak_flops_per_cycle(dtype: torch.dtype, flags: set[str], half_width: bool = False) -> tuple[int, str]:
    """(FLOP per cycle and core, how) for dtype on a CPU with these flags; ``half_width``: AVX-512 runs on 256-bit
    pipes (Zen 4)."""
    if dtype == torch.bfloat16 and "amx_bf16" in flags:
        return 1024, "AMX bf16 TDPBF16PS: 16x16x32 MAC / 16 cycles x 2"
    lanes, pipes = (8, "256-bit pipes (Zen 4)") if half_width else (16, "ports")
    if dtype == torch.bfloat16 and "avx512_bf16" in flags:
        return lanes * 8, f"AVX-512 BF16 VDPBF16PS: {lanes} lanes x 2 pairs x 2 FLOP x 2 {pipes}"
    if "avx512f" in flags:
        return lanes * 4, f"AVX-512 fp32 FMA: {lanes} lanes x 2 FLOP x 2 {pipes}"
    return 32, "AVX2 fp32 FMA: 8 lanes x 2 FLOP x 2 ports"


def peak_flops(dtype: torch.dtype) -> tuple[float, str]:
    """(nominal peak FLOP/s of THREADS cores in dtype, how it is derived)."""
    flags, clock = cpu_flags(), clock_ghz()
    per_cycle, how = peak_flops_per_cycle(dtype, flags, half_width=amd_zen4())
    return per_cycle * clock * 1e9 * THREADS, (f"{per_cycle} FLOP/cycle/core ({how}) x {clock:.2f} GHz x "
                                                f"{THREADS} cores")


def gemm_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the fastest of ``repeats`` n x n x n matrix products in dtype (after one warm-up)."""
    a, b = (torch.randn(n, n, generator=torch.Generator().manual_seed(i)).to(dtype) for i in (0, 1))
    torch.mm(a, b)
    return 2 * n**3 / min(timed_once(lambda: torch.mm(a, b)) for _ in range(repeats))


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def interleaved(arms: dict, repeats: int, best: bool = False, raw: bool = False) -> dict:
    """Median wall seconds of each arm (``best``: the fastest, the run least disturbed by other work; ``raw``: all
    times), the arms run in turn (ABAB...) so that load on the shared machine hits all of them alike."""
    times = {name: [] for name in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    if raw:
        return times
    return {name: min(ts) if best else statistics.median(ts) for name, ts in times.items()}


def timed_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def unet_rows(n: int, repeats: int, peak: float, gemm: float) -> list[str]:
    """Per UNet: FLOPs per image and forward, per image and guided step, achieved FLOP/s, share of the nominal peak
    and of the large matrix product's rate."""
    rows = []
    dtype = native_dtype("cpu")
    nets = {}
    for name in ("testbed", "testbed-flow"):
        model = ss.load_model(name, dtype=dtype)
        x = torch.randn(2 * n, *model.seed_shape, generator=torch.Generator().manual_seed(0)).to(dtype)
        labels = torch.arange(2 * n) % (model.num_classes + 1)
        nets[name] = (model.unet, x, dict(class_labels=labels), torch.tensor(500))
    with tempfile.TemporaryDirectory() as tmp:
        from diffusers import UNet2DConditionModel
        from tiny_models import write_tiny_stable_diffusion

        folder = write_tiny_stable_diffusion(Path(tmp) / "sd")
        unet = UNet2DConditionModel.from_pretrained(folder / "unet").to(dtype).eval().requires_grad_(False)
    c = unet.config
    x = torch.randn(2 * n, c.in_channels, c.sample_size, c.sample_size, generator=torch.Generator().manual_seed(0))
    text = torch.randn(2 * n, 77, c.cross_attention_dim, generator=torch.Generator().manual_seed(1))
    nets["tiny SD UNet (tests/tiny_models.py)"] = (unet, x.to(dtype), dict(encoder_hidden_states=text.to(dtype)),
                                                    torch.tensor(500))
    dname = str(dtype).removeprefix("torch.")
    rows.append(f"| UNet | input | GFLOP / image / forward | GFLOP / image / guided step | batch | {dname} eager "
                f"s / forward (best of {repeats}) | achieved GFLOP/s | share of peak | share of GEMM rate |")
    rows.append("|---|---|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for name, (net, x, kwargs, t) in nets.items():
            total = flops(lambda: net(x, t, **kwargs))
            net(x, t, **kwargs)  # warm-up
            seconds = interleaved({"f": lambda: net(x, t, **kwargs)}, repeats, best=True)["f"]
            rows.append(f"| {name} | {tuple(x.shape[1:])} | {total / x.shape[0] / 1e9:.3f} | "
                        f"{2 * total / x.shape[0] / 1e9:.3f} | {x.shape[0]} | {seconds:.3f} | "
                        f"{rate_cells(total, seconds, peak)} | {100 * total / seconds / gemm:.1f}% |")
    return rows


def rate_cells(flop: float, seconds: float, peak: float) -> str:
    """'achieved GFLOP/s | share of peak' of ``flop`` in ``seconds`` (two table cells)."""
    return f"{flop / seconds / 1e9:.1f} | {100 * flop / seconds / peak:.2f}%"


def forward_levers(n: int, repeats: int, peak: float) -> list[str]:
    """The testbed UNet's guided-batch forward under each lever, interleaved; bytes against the eager forward."""
    dtype = native_dtype("cpu")
    model = ss.load_model("testbed", dtype=dtype)
    unet = model.unet
    x = torch.randn(2 * n, *model.seed_shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    labels = torch.arange(2 * n) % (model.num_classes + 1)
    t = torch.tensor(500)
    with torch.inference_mode():
        total = flops(lambda: unet(x, t, class_labels=labels))
        eager_cl = copy.deepcopy(unet).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        arms = {"eager (today)": lambda: unet(x, t, class_labels=labels).sample,
                "eager, channels-last": lambda: eager_cl(x_cl, t, class_labels=labels).sample}
        compile_s = {}
        if compile_unavailable("cpu") is None:
            for label, cl in (("compiled, contiguous", False), ("compiled, channels-last (compile=True)", True)):
                fwd = CompiledForward(unet, channels_last=cl)
                compile_s[label] = timed_once(lambda fwd=fwd: fwd(x, t, labels))
                arms[label] = lambda fwd=fwd: fwd(x, t, labels)
        ref = arms["eager (today)"]()
        same = {name: torch.equal(fn(), ref) for name, fn in arms.items()}
        times = interleaved(arms, repeats, raw=True)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    fastest = {name: min(ts) for name, ts in times.items()}
    base = medians["eager (today)"]
    rows = [f"| forward of {2 * n} ({str(dtype).removeprefix('torch.')}) | median s ({repeats} interleaved) | "
            "speed-up (medians) | best s | GFLOP/s (best) | share of peak (best) | same bytes as eager | "
            "first call (compile) s |", "|---|---|---|---|---|---|---|---|"]
    for name, seconds in medians.items():
        first = f"{compile_s[name]:.0f}" if name in compile_s else "-"
        rows.append(f"| {name} | {seconds:.3f} | {base / seconds:.2f}x | {fastest[name]:.3f} | "
                    f"{rate_cells(total, fastest[name], peak)} | {'yes' if same[name] else 'no'} | {first} |")
    return rows


def end_to_end(images: int, steps: int, repeats: int) -> list[str]:
    """64 images x 50 guided DDIM steps: eager against compiled, interleaved; what holds across the lever."""
    dtype = native_dtype("cpu")
    before = ss.load_model("testbed", dtype=dtype)
    after = ss.load_model("testbed", dtype=dtype, compile=True)
    seeds = seeds_from_ints(range(images), before.seed_shape)
    labels = [i % before.num_classes for i in range(images)]
    out = {}

    def run(model, key):
        out[key] = model.generate(seeds, labels, steps, 2.0)

    first = timed_once(lambda: run(after, "after"))  # compiles (inductor's disk cache may make this faster)
    medians = interleaved({"before": lambda: run(before, "before"), "after": lambda: run(after, "after")}, repeats)
    grey = (out["after"] - out["before"]).abs() * 255
    judge_before = before.classify(out["before"]).argmax(1)
    judge_after = before.classify(out["after"]).argmax(1)
    fp32 = ss.load_model("testbed", dtype=torch.float32).generate(seeds[:16], labels[:16], steps, 2.0)
    grey_fp32 = (out["before"][:16] - fp32).abs() * 255
    ratio = medians["before"] / medians["after"]
    return [f"| {images} images x {steps} guided DDIM steps ({str(dtype).removeprefix('torch.')}, batch 64) | "
            "median s | images/s |", "|---|---|---|",
            f"| before: eager forward (today) | {medians['before']:.2f} | {images / medians['before']:.2f} |",
            f"| after: compile=True | {medians['after']:.2f} | {images / medians['after']:.2f} |",
            "",
            f"after / before speed-up: **{ratio:.2f}x** (median of {repeats} interleaved pairs); the first compiled "
            f"call, compilation included: {first:.1f} s; load average at the end "
            f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}.",
            "",
            f"Bytes: compiled images {'equal' if torch.equal(out['after'], out['before']) else 'differ from'} the "
            f"eager ones: mean |diff| {float(grey.mean()):.2f} grey levels, 99th percentile "
            f"{float(grey.flatten().quantile(0.99)):.1f}, max {float(grey.max()):.1f} (of 255). For scale, eager "
            f"{str(dtype).removeprefix('torch.')} against eager float32 (first 16 images): mean "
            f"{float(grey_fp32.mean()):.2f}, max {float(grey_fp32.max()):.1f}. The judge gives the same class to "
            f"{int((judge_before == judge_after).sum())} of {images} image pairs; the images keep their seed's "
            "content, shape and class, not their bytes."]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 images x 10 steps, 1 pair (a smoke run)")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    dtype = native_dtype("cpu")
    peak, how = peak_flops(dtype)
    gemm = gemm_rate(dtype)
    images, steps, repeats, fwd_repeats = (16, 10, 1, 3) if args.quick else (64, 50, 3, 7)
    print(f"CPU: {cpu_model()}, {THREADS} threads, clock {clock_ghz():.2f} GHz (/proc/cpuinfo); "
          f"torch {torch.__version__}")
    print(f"default dtype: {str(dtype).removeprefix('torch.')}; peak {how} = {peak / 1e12:.2f} TFLOP/s; a 2048^3 "
          f"matrix product reaches {gemm / 1e9:.0f} GFLOP/s ({100 * gemm / peak:.0f}% of that peak)")
    reason = compile_unavailable("cpu")
    print(f"torch.compile: {'available' if reason is None else reason}")
    print(f"load average at the start (a shared machine): {' '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    print("\n".join(unet_rows(64, fwd_repeats, peak, gemm)), end="\n\n", flush=True)
    print("\n".join(forward_levers(64, fwd_repeats, peak)), end="\n\n", flush=True)
    print("\n".join(end_to_end(images, steps, repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
