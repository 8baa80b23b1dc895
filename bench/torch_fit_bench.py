"""PyTorch replica of `wavessm bench fit`, for side-by-side timing.

The same fit: sequential MNIST (L=784, pixels / 255), an S4D classifier (d_model 64, 2 layers,
N=64, GELU, dropout 0.1, GLU output, residual, post-LayerNorm, mean pool), AdamW (lr 0.01,
weight decay 0.01), batch 64, one epoch over 512 training images, then the first 512 test
images in eval mode without autograd.

Usage: THREADS=2 python torch_fit_bench.py [MNIST_DIR]   (default: $DATA_PATH/mnist)
Prints: fit train_samples_per_s=<x> eval_samples_per_s=<y> total_s=<z> train=<n> eval=<m>
"""
import gzip, math, os, resource, struct, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

N_TRAIN, N_TEST, BATCH, D_MODEL, N_LAYERS = 512, 512, 64, 64, 2


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def load(folder, prefix, n):
    find = lambda stem: next(os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(stem))
    x = read_idx(find(f"{prefix}-images-idx3-ubyte"))[:n].reshape(n, 784, 1).float() / 255.0
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte"))[:n].long()
    return x, y


class S4DKernel(nn.Module):
    def __init__(self, h, n=64, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        self.log_dt = nn.Parameter(torch.rand(h) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.C = nn.Parameter(torch.randn(h, n // 2, 2) * 0.5**0.5)
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(h, n // 2)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(n // 2).float().repeat(h, 1))

    def forward(self, length):
        dt = self.log_dt.exp()
        c = torch.view_as_complex(self.C)
        a = -self.log_A_real.exp() + 1j * self.A_imag
        dta = a * dt[:, None]
        k = dta[..., None] * torch.arange(length)
        c = c * (dta.exp() - 1.0) / a
        return 2 * torch.einsum("hn,hnl->hl", c, k.exp()).real


class S4D(nn.Module):
    def __init__(self, h, dropout):
        super().__init__()
        self.D = nn.Parameter(torch.randn(h))
        self.kernel = S4DKernel(h)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Conv1d(h, 2 * h, 1)

    def forward(self, u):  # (B, H, L)
        length = u.size(-1)
        k = self.kernel(length)
        n = 2 * length
        y = torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(k, n=n), n=n)[..., :length]
        y = self.drop(F.gelu(y + u * self.D[:, None]))
        return F.glu(self.out(y), dim=-2)


class Model(nn.Module):
    def __init__(self, dropout=0.1):
        super().__init__()
        self.enc = nn.Linear(1, D_MODEL)
        self.layers = nn.ModuleList([S4D(D_MODEL, dropout) for _ in range(N_LAYERS)])
        self.norms = nn.ModuleList([nn.LayerNorm(D_MODEL) for _ in range(N_LAYERS)])
        self.dec = nn.Linear(D_MODEL, 10)

    def forward(self, x):  # (B, L, 1)
        x = self.enc(x).transpose(-1, -2)
        for layer, norm in zip(self.layers, self.norms):
            x = norm((layer(x) + x).transpose(-1, -2)).transpose(-1, -2)
        return self.dec(x.mean(-1))


def main():
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("DATA_PATH", "data"), "mnist")
    xtr, ytr = load(folder, "train", N_TRAIN)
    xte, yte = load(folder, "t10k", N_TEST)
    model = Model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    perm = torch.randperm(N_TRAIN)
    cpu0, t0 = time.process_time(), time.perf_counter()
    model.train()
    for i in range(0, N_TRAIN, BATCH):
        idx = perm[i : i + BATCH]
        out = model(xtr[idx])
        loss = F.cross_entropy(out, ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    cpu1, t1 = time.process_time(), time.perf_counter()
    model.eval()
    with torch.no_grad():
        for i in range(0, N_TEST, BATCH):
            out = model(xte[i : i + BATCH])
            F.cross_entropy(out, yte[i : i + BATCH]).item()
    cpu2, t2 = time.process_time(), time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"fit train_samples_per_s={N_TRAIN / (t1 - t0):.1f} eval_samples_per_s={N_TEST / (t2 - t1):.1f} "
        f"total_s={t2 - t0:.1f} train={N_TRAIN} eval={N_TEST} train_cpu_s={cpu1 - cpu0:.1f} eval_cpu_s={cpu2 - cpu1:.1f} "
        f"train_cores={(cpu1 - cpu0) / (t1 - t0):.2f} "
        f"eval_cores={(cpu2 - cpu1) / (t2 - t1):.2f} rss_mb={rss:.0f}"
    )


if __name__ == "__main__":
    main()
