"""NAO interpolation time as a ratio to SLERP's, in one run: the solver before (uniform grid of 128 with adaptation
rounds) and now (Chebyshev-Lobatto grid of 192, adaptation only for very uneven grids), median of 31 calls.

    python benchmarks/bench_solver_ratio.py
"""
import torch, time, statistics, math
from seedspace.geometry import interpolate, planar
from seedspace.hardware import cpu_model
torch.set_num_threads(2)
def med(f, n=31):
    ts=[]
    for _ in range(n):
        t0=time.perf_counter(); f(); ts.append(time.perf_counter()-t0)
    return statistics.median(ts)*1e3
new_grid, new_uneven = planar.lobatto_grid, planar._UNEVEN
def old():
    planar.lobatto_grid, planar._UNEVEN = planar.uniform_grid, 3.0
def new():
    planar.lobatto_grid, planar._UNEVEN = new_grid, new_uneven
print(cpu_model())
for d in (16384, 65536):
    g=torch.Generator().manual_seed(0); a,b=torch.randn(2,d,generator=g)
    a2=a/a.norm()*0.9*math.sqrt(d); b2=b/b.norm()*1.1*math.sqrt(d)
    for kind,(x,y) in (("typical",(a,b)),("atypical",(a2,b2))):
        s=med(lambda: interpolate(x,y,50,"slerp"))
        old(); o=med(lambda: interpolate(x,y,50,"nao",grid=128)); new(); n=med(lambda: interpolate(x,y,50,"nao"))
        print(f"d={d} {kind}: slerp {s:.2f} ms, nao before {o:.2f} ms ({o/s:.2f}x), nao now {n:.2f} ms ({n/s:.2f}x)")
A,B=torch.randn(2,1000,16384,generator=g)
s=med(lambda: interpolate(A,B,50,"slerp",batched=True),3); old(); o=med(lambda: interpolate(A,B,50,"nao",batched=True,grid=128),3); new(); n=med(lambda: interpolate(A,B,50,"nao",batched=True),3)
print(f"1000 pairs d=16384: slerp {s:.0f} ms, nao before {o:.0f} ms ({o/s:.2f}x), now {n:.0f} ms ({n/s:.2f}x)")
