"""What the machine computes natively: the CPU's model and whether it has bfloat16 arithmetic in hardware.

Read from ``/proc/cpuinfo`` (Linux); elsewhere the CPU counts as one without native bf16.
"""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware: x86 with AMX (``amx_bf16``) or AVX-512 BF16
    (``avx512_bf16``). Without them PyTorch emulates bf16 and is many times slower than float32: the testbed's
    sampling measured 28x slower on an AVX2-only AMD EPYC, against 2.4x faster on an AMX Xeon and 2.8x faster on
    an AMD EPYC with AVX-512 BF16 (64 images x 5 guided steps, 2 threads: 1.57 s against 4.36 s)."""
    flags = next((line.split(":", 1)[1].split() for line in _cpuinfo().splitlines() if line.startswith("flags")), [])
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Compute with ``threads`` torch CPU threads inside the block (None: leave the count as it is), then restore
    the count. CPU kernels split their reductions by thread, so the count can change the last bit of a result:
    whatever promises identical bytes fixes it.

    Inside the block numpy's BLAS runs on one thread, so that the cores belong to torch's: after each call the
    BLAS pool's threads keep spinning for a while, and between the geometry's small numpy solves they took the
    cores from the model (``model.generate`` 26% slower inside ``augment`` than alone; docs/performance.md). The
    geometry's arrays are far below the sizes BLAS would split, so its results do not change."""
    import torch  # the hardware facts above need no torch

    before = torch.get_num_threads()
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        with _single_threaded_blas():
            yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _single_threaded_blas():
    """numpy's BLAS limited to one thread inside the block (threadpoolctl, which knows every BLAS numpy and scipy
    may have loaded); nothing where threadpoolctl is not installed (the geometry-only install)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
