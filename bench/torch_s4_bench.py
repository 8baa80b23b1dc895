# PyTorch reference figure for `wavessm bench s4`: one S4 (DPLR) layer of state-spaces/s4
# `models/s4/s4.py` (FFTConv mode='dplr', GELU, then a 1x1 conv + GLU as in `bench s4d`),
# forward + backward, B=16 H=128 N=64 L=1024, on the CPU. Without the CUDA extension or
# pykeops the reference falls back to its naive Cauchy kernel, which is what a CPU user gets.
#
#   S4_PY=/path/to/state-spaces/s4/models/s4/s4.py THREADS=2 python bench/torch_s4_bench.py 5
#
# Needs torch, einops, scipy, numpy; pytorch_lightning is stubbed (only a logging helper).
import os, statistics, sys, time, types, importlib.util

pl = types.ModuleType("pytorch_lightning")
ut = types.ModuleType("pytorch_lightning.utilities")
ut.rank_zero_only = lambda f: f
pl.utilities = ut
sys.modules["pytorch_lightning"] = pl
sys.modules["pytorch_lightning.utilities"] = ut
import torch

torch.set_num_threads(int(os.environ.get("THREADS", "2")))
spec = importlib.util.spec_from_file_location("s4ref", os.environ["S4_PY"])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

B, H, N, L = 16, 128, 64, 1024
layer = ref.FFTConv(H, d_state=N, l_max=L, mode="dplr", activation="gelu", transposed=True)
lin = torch.nn.Conv1d(H, 2 * H, 1)
u = torch.randn(B, H, L)


def step():
    y, _ = layer(u)
    y = torch.nn.functional.glu(lin(y), dim=1)
    (y**2).mean().backward()


step()
ts = []
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    t0 = time.time()
    step()
    ts.append((time.time() - t0) * 1e3)
ms = statistics.median(ts)
print(f"s4 median_ms={ms:.1f} tokens_per_s={B * L / ms * 1e3:.0f}")
