"""64 images x 5 guided DDIM steps of the embedded testbed, float32 against bfloat16, 2 threads, interleaved,
median of 3: what --dtype auto gains where the CPU computes bf16 natively.

    python benchmarks/bench_dtype.py
"""
import statistics, time, torch
import seedspace as ss
from seedspace.hardware import cpu_model
torch.set_num_threads(2)
models = {d: ss.load_model("testbed", dtype=d) for d in ("float32", "bfloat16")}
for m in models.values():
    m.batch_size = 64
seeds = ss.seeds_from_ints(range(64), models["float32"].seed_shape)
times = {d: [] for d in models}
for name, m in models.items():
    m.generate(seeds[:8], 0, 2)
for _ in range(3):
    for name, m in models.items():
        t0 = time.perf_counter(); m.generate(seeds, [i % 10 for i in range(64)], 5); times[name].append(time.perf_counter() - t0)
med = {k: statistics.median(v) for k, v in times.items()}
print(f"{cpu_model()}: float32 {med['float32']:.2f} s, bfloat16 {med['bfloat16']:.2f} s, speed-up {med['float32'] / med['bfloat16']:.1f}x (runs {times})")
